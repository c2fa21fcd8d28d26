// The servers this page can talk to: its own first, then, in a cluster, the other nodes
// (from an offer's `nodes` answer or GET /cluster). When the node in use cannot be reached
// the next is tried at once, so a page whose node died goes on through a live one; the
// nodes accept each other's pages (docs/protocol.md, "Where to reconnect").

let servers = [location.origin];
const REQUEST_TIMEOUT_MS = 15000; // a machine that is gone answers nothing at all

export function knownServers() { return [...servers]; }

// `path` on the server in use (absolute: after a failover that is another node).
export function serverUrl(path) { return `${servers[0]}${path}`; }

// Adds a cluster's node addresses (after the ones known first, the server in use first).
export function learnServers(urls) {
  if (!Array.isArray(urls)) return;
  const found = urls.filter((url) => typeof url === 'string' && /^https?:\/\/[^/]+/.test(url))
    .map((url) => url.replace(/\/+$/, ''));
  servers = [...new Set([servers[0], ...found, ...servers])];
}

// The node list of GET /cluster (monitor or admin; empty without a cluster).
export async function learnClusterNodes(headers) {
  try {
    const response = await fetchFromNodes('/cluster', { headers, cache: 'no-store' });
    if (!response.ok) return;
    const answer = await response.json();
    learnServers((answer.nodes || []).map((node) => node && node.url));
  } catch (error) { /* no node answers: the page's own retries come back here */ }
}

// A signal that aborts after `ms` (AbortSignal.timeout is missing before Chrome 103 and
// Safari 16).
function timeoutSignal(ms) {
  if (typeof AbortSignal.timeout === 'function') return AbortSignal.timeout(ms);
  const controller = new AbortController();
  setTimeout(() => controller.abort(), ms);
  return controller.signal;
}

// fetch(path) from the first server that answers, which is then the one in use:
// { response, server }. Throws (as fetch does) when none can be reached; any HTTP answer
// is returned as it is. `timeoutMs`: how long one server may take to answer.
export async function fetchThroughNodes(path, options = {}, timeoutMs = REQUEST_TIMEOUT_MS) {
  let failure = null;
  for (const server of [...servers]) {
    try {
      const response = await fetch(`${server}${path}`, {
        ...options,
        signal: options.signal || timeoutSignal(timeoutMs),
      });
      if (server !== servers[0]) {
        console.warn(`${servers[0]} unreachable, going on through ${server}`);
        servers = [server, ...servers.filter((url) => url !== server)];
      }
      return { response, server };
    } catch (error) {
      failure = error;
    }
  }
  throw failure;
}

// fetchThroughNodes' response alone.
export async function fetchFromNodes(path, options = {}, timeoutMs = REQUEST_TIMEOUT_MS) {
  return (await fetchThroughNodes(path, options, timeoutMs)).response;
}

// Access: the token this page presents to the server, and the plain words a person reads
// when the page has none or the server refuses it (design: "Access control").
//
// A link carries the token as `?token=`. On load the page keeps it in sessionStorage (this
// tab only; a reload still has it) and takes it out of the address bar, so it is not
// bookmarked, copied with the address or read over a shoulder. Requests present it as
// `Authorization: Bearer`; WebSockets, which cannot set headers, as `?token=`.

import { t } from './i18n.js';
import { fetchFromNodes, serverUrl } from './nodes.js';

const STORAGE_KEY = 'komi.token';
let memoryToken = null; // when sessionStorage is unavailable (some private modes)

function keepLinkToken() {
  const url = new URL(location.href);
  if (!url.searchParams.has('token')) return;
  const token = url.searchParams.get('token').trim();
  url.searchParams.delete('token'); // every other parameter (camera_id, autostart) stays
  history.replaceState(history.state, '', `${url.pathname}${url.search}${url.hash}`);
  if (!token) return;
  memoryToken = token;
  try { sessionStorage.setItem(STORAGE_KEY, token); } catch (error) { /* kept in memory */ }
}
keepLinkToken();

// The token this page presents, or null when it has none.
export function accessToken() {
  try { return sessionStorage.getItem(STORAGE_KEY) || memoryToken; } catch (error) { return memoryToken; }
}

// `headers` plus the token's Authorization header, for fetch().
export function authHeaders(headers = {}) {
  const token = accessToken();
  return token ? { ...headers, Authorization: `Bearer ${token}` } : { ...headers };
}

// The ws:// (or wss://) address of `path` on this server, with the token as `?token=`.
export function webSocketUrl(path) {
  const url = new URL(serverUrl(path));
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  const token = accessToken();
  if (token) url.searchParams.set('token', token);
  return url.href;
}

// 401 (no, bad, expired or revoked token) and 403 (a token without the right): asking
// again will not help, only a new link will.
export function isRefusal(status) { return status === 401 || status === 403; }

// What a refusal means for a person: 'needed' (no token), 'expired' (a token the server no
// longer takes) or 'forbidden' (a token for something else).
export function refusalKind(status) {
  if (status === 403) return 'forbidden';
  return accessToken() ? 'expired' : 'needed';
}

// Shows the refusal in `element`, in the page's language (and again after a switch: the
// text follows its data-i18n key). `forbiddenKey`: the words for a 403 on this page.
export function showRefusal(element, status, forbiddenKey) {
  const kind = refusalKind(status);
  const key = kind === 'forbidden' ? forbiddenKey : `access_${kind}`;
  element.dataset.i18n = key;
  element.textContent = t(key);
  element.hidden = false;
  return kind;
}

// Asks the server whether this page's token may GET `path`: the refusal's status, or null
// when it may (or the server cannot be reached: the page's own retries handle that).
export async function refusalFor(path) {
  try {
    const response = await fetchFromNodes(path, { headers: authHeaders(), cache: 'no-store' });
    return isRefusal(response.status) ? response.status : null;
  } catch (error) {
    return null;
  }
}

// Whether this page's link may read people's history (GET /whoami: a monitor's or the
// admin's; a camera link may not). False when the server cannot be asked.
export async function linkReadsHistory() {
  try {
    const response = await fetchFromNodes('/whoami', { headers: authHeaders(), cache: 'no-store' });
    if (!response.ok) return false;
    const me = await response.json();
    return me.role === 'admin' || me.role === 'monitor';
  } catch (error) {
    return false;
  }
}

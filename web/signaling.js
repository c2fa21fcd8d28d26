// Signaling: POST /offer with a complete (non-trickle) offer, as docs/protocol.md describes.

import { accessToken, authHeaders, isRefusal } from './access.js';
import { fetchFromNodes, fetchThroughNodes, learnServers } from './nodes.js';

// The client config; throws a SignalingError when the server refuses this page's token.
export async function fetchConfig() {
  let response;
  try {
    response = await fetchFromNodes('/config.json', { headers: authHeaders() });
  } catch (error) {
    response = null; // unreachable: the defaults below work on a LAN
  }
  if (response && isRefusal(response.status)) {
    const answer = await response.json().catch(() => ({}));
    throw new SignalingError(response.status, answer.error || `HTTP ${response.status}`);
  }
  if (response && response.ok) {
    try { return await response.json(); } catch (error) { /* the defaults */ }
  }
  return { ice_servers: [], data_channel: 'komi' };
}

function iceGatheringComplete(pc, timeoutMs = 3000) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { pc.removeEventListener('icegatheringstatechange', check); resolve(); };
    const check = () => { if (pc.iceGatheringState === 'complete') done(); };
    pc.addEventListener('icegatheringstatechange', check);
    setTimeout(done, timeoutMs); // host candidates are enough on a LAN
  });
}

// A node answers an offer within about 15 s (ICE), plus up to 30 s when it passes it to
// another node: only a node silent for longer counts as down (its offer would run twice).
const OFFER_TIMEOUT_MS = 50000;

// Where offers go: the server in use, else the next node that answers (nodes.js).
function postOffer(body) {
  return fetchThroughNodes('/offer', {
    method: 'POST',
    headers: authHeaders({ 'Content-Type': 'application/json' }),
    body: JSON.stringify(body),
  }, OFFER_TIMEOUT_MS);
}

export class SignalingError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// Creates the peer connection and the "komi" channel, posts the offer, applies the answer.
// `setup(pc)` adds tracks or transceivers before the offer is made.
export async function connectPeer({ role, cameraId, person, station, iceServers, setup, onMessage, onState }) {
  const pc = new RTCPeerConnection({ iceServers: iceServers || [] });
  const channel = pc.createDataChannel('komi');
  channel.onmessage = (event) => {
    let message;
    try { message = JSON.parse(event.data); } catch (error) { return; }
    onMessage && onMessage(message);
  };
  pc.addEventListener('connectionstatechange', () => onState && onState(pc.connectionState));
  setup(pc);
  await pc.setLocalDescription(await pc.createOffer());
  await iceGatheringComplete(pc);
  const body = { sdp: pc.localDescription.sdp, type: 'offer', role };
  if (cameraId) body.camera_id = cameraId;
  if (person) body.person = person;
  if (station) body.station = station;
  if (accessToken()) body.token = accessToken(); // the header says it too
  let response;
  let server;
  try {
    ({ response, server } = await postOffer(body));
  } catch (error) {
    pc.close();
    throw new SignalingError(0, 'server unreachable');
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    pc.close();
    throw new SignalingError(response.status, answer.error || `HTTP ${response.status}`);
  }
  learnServers(answer.nodes);
  await pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type });
  return { pc, channel, cameraId: answer.camera_id, server };
}

// Clock offset and round-trip time from ping/pong on the "komi" channel, so the page can
// turn server timestamps into its own clock.
export class ServerClock {
  constructor() { this.offsetMs = null; this.rttMs = null; }

  ping(channel) {
    if (channel.readyState === 'open') {
      channel.send(JSON.stringify({ type: 'ping', t: Date.now() }));
    }
  }

  onPong(message) {
    const now = Date.now();
    const rtt = now - message.t;
    if (!(rtt >= 0) || typeof message.server_time !== 'number') return;
    const offset = message.server_time * 1000 - (message.t + rtt / 2);
    // keep the sample with the smallest round trip: its offset is the most accurate
    if (this.rttMs === null || rtt <= this.rttMs * 1.5) {
      this.offsetMs = this.offsetMs === null ? offset : 0.8 * this.offsetMs + 0.2 * offset;
      this.rttMs = this.rttMs === null ? rtt : 0.8 * this.rttMs + 0.2 * rtt;
    }
  }

  // Milliseconds from the server receiving the frame to now, plus the uplink (RTT / 2).
  latencyMs(message) {
    if (this.offsetMs === null || !message.timing) return null;
    const receivedLocal = message.timing.receive * 1000 - this.offsetMs;
    return Date.now() - receivedLocal + this.rttMs / 2;
  }
}

export class RateMeter {
  constructor(windowMs = 3000) { this.windowMs = windowMs; this.times = []; }
  tick(now = performance.now()) {
    this.times.push(now);
    while (this.times.length && now - this.times[0] > this.windowMs) this.times.shift();
  }
  perSecond(now = performance.now()) {
    while (this.times.length && now - this.times[0] > this.windowMs) this.times.shift();
    return this.times.length / (this.windowMs / 1000);
  }
}

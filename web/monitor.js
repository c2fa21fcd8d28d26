// The monitor wall: a live tile per camera with its relayed video and the skeleton drawn on
// the very frame it was computed from (matched by RTP timestamp, see docs/protocol.md).
// When the server refuses the page's access link it says so and stops watching. Each tile
// shows the person its camera is tied to, ties another, and links to their history.
// The cameras of a station (several cameras on one person) share a station tile: their
// videos side by side, the fused count and analysis, calibration and the 3-D skeleton.

import { accessToken, authHeaders, isRefusal, refusalFor, showRefusal, webSocketUrl } from './access.js';
import { AnalysisPanel } from './analysis_panel.js';
import { missingForMonitor, showUnsupported } from './browser_support.js';
import { ExercisePicker } from './exercise_picker.js';
import { applyLanguage, format, t, toggleLanguage } from './i18n.js';
import { near, NEAR_TICKS, PTS_WRAP, sameFrame } from './frame_keys.js';
import { drawPoses } from './overlay.js';
import { fetchFromNodes, learnClusterNodes, serverUrl } from './nodes.js';
import { connectPeer, fetchConfig, RateMeter, ServerClock } from './signaling.js';
import { showAnalysedRate } from './server_load.js';
import { StationTile } from './station_view.js';
import { VideoHold } from './video_hold.js';

const $ = (id) => document.getElementById(id);
const grid = $('grid');
const tiles = new Map(); // camera id -> Tile
const stationTiles = new Map(); // station id -> StationTile
let stationSummaries = []; // GET /stations, newest answer
const debug = { tiles: {}, stations: {}, access: null, unsupported: null };
window.komiMonitor = debug; // debug stats, read by the browser tests
let config = null;
let showOverlay = true;

const KEEP_MESSAGES = 90;
const NO_POSE_AFTER_MS = 5000; // a frame whose pose has not come by then was skipped by the server
// the camera-id rules (docs/protocol.md): not `.`, `..`, nor starting with `-`
const PERSON_ID = /^(?!-)(?!\.\.?$)[A-Za-z0-9_.-]{1,64}$/;
const STATIONS_POLL_MS = 3000; // who is in which station: polled, and asked again on changes
const KEEP_STATION_KEYS = 200;

class Tile {
  constructor(cameraId) {
    this.cameraId = cameraId;
    const fragment = $('tile-template').content.cloneNode(true);
    this.element = fragment.querySelector('.tile');
    this.video = this.element.querySelector('video');
    this.canvas = this.element.querySelector('canvas');
    this.element.querySelector('.camera-id').textContent = cameraId;
    this.panel = new AnalysisPanel(this.element.querySelector('.analysis'));
    this.element.addEventListener('click', (event) => {
      if (!event.target.closest('select, input, a')) this.element.classList.toggle('enlarged');
    });
    this.personInput = this.element.querySelector('input.person');
    this.personInput.placeholder = t('person');
    this.personInput.addEventListener('input', () => {
      this.personInput.setCustomValidity('');
      this.personInput.dataset.editing = '1';
    });
    this.personInput.addEventListener('change', () => this.choosePerson());
    this.exercisePicker = new ExercisePicker(this.element.querySelector('select.exercise'), {
      choose: (choice) => this.sendExercise(choice),
    });
    grid.append(this.element);
    applyLanguage(this.element);
    this.messages = new Map(); // frame_pts mod 2^32 -> message
    this.unposed = new Map(); // frame key -> when it left the screen without its own pose
    this.hold = new VideoHold();
    this.receiveTimes = null; // requestVideoFrameCallback gives frames' arrival times (null: unknown yet)
    this.latest = null;
    this.offset = null; // rtp_timestamp_offset from video_timing
    this.clock = new ServerClock();
    this.rate = new RateMeter();
    this.shown = null; // { key, drawnKey } of the frame on screen
    this.frameSteps = []; // RTP ticks between consecutive frames seen
    this.stats = { frames: 0, drawn: 0, matched: 0, late: 0, noPose: 0, mismatch: {},
      latencyMs: null, poseLatencyMs: null, poseLatencyP95Ms: null, videoDelayMs: null,
      videoHeldMs: null, frameIntervalMs: null, analysedFps: 0, messages: 0, offline: false,
      videoTime: 0, rvfc: false, frameKeys: null, exercise: null, person: null };
    debug.tiles[cameraId] = this.stats;
    this.closed = false;
    this.connect();
  }

  async connect() {
    if (this.closed) return;
    try {
      config = config || await fetchConfig();
      this.peer = await connectPeer({
        role: 'monitor',
        cameraId: this.cameraId,
        iceServers: config.ice_servers,
        setup: (pc) => {
          const transceiver = pc.addTransceiver('video', { direction: 'recvonly' });
          this.receiver = transceiver.receiver;
          this.hold.attach(transceiver.receiver);
          pc.addEventListener('track', (event) => {
            this.video.srcObject = new MediaStream([event.track]);
            this.video.play().catch(() => {});
            this.watchFrames();
          });
        },
        onMessage: (message) => this.onMessage(message),
        onState: (state) => {
          if (state === 'failed' || state === 'closed') this.setOffline(true);
          if (state === 'connected') this.setOffline(false);
        },
      });
      this.peer.channel.onopen = () => this.clock.ping(this.peer.channel);
      this.pingTimer = setInterval(() => { if (this.peer) this.clock.ping(this.peer.channel); }, 2000);
    } catch (error) {
      console.warn(`monitor ${this.cameraId}:`, error.message);
      this.setOffline(true);
      if (isRefusal(error.status)) refuse(error.status);
    }
  }

  // Milliseconds between frames, from the RTP timestamps of frames and results (a quarter
  // percentile, so frames the server skipped do not stretch it).
  get frameIntervalMs() {
    if (!this.frameSteps.length) return 100;
    const sorted = [...this.frameSteps].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 4)] / 90;
  }

  noteStep(key, previousKey) {
    const step = (key - previousKey + PTS_WRAP) % PTS_WRAP;
    if (step <= NEAR_TICKS || step >= 90000) return; // same frame, or a gap of a second
    this.frameSteps.push(step);
    if (this.frameSteps.length > 60) this.frameSteps.shift();
  }

  setOffline(offline) {
    this.stats.offline = offline;
    this.element.classList.toggle('offline', offline);
  }

  onMessage(message) {
    if (message.type === 'pong') { this.clock.onPong(message); return; }
    if (message.type === 'video_timing') { this.offset = message.rtp_timestamp_offset; return; }
    if (message.type === 'camera_disconnected') { this.setOffline(true); return; }
    if (message.type === 'person_set') { this.showPerson(message.person); return; }
    if (message.station_id && (message.type === 'station_processed' || message.type === 'rep_completed')) {
      onStationMessage(message);
      return;
    }
    this.exercisePicker.onMessage(message);
    this.stats.exercise = this.exercisePicker.value;
    if (message.type !== 'frame_processed') return;
    this.stats.messages += 1;
    this.rate.tick();
    const key = message.frame_pts % PTS_WRAP;
    if (this.latest) this.noteStep(key, this.latest.frame_pts % PTS_WRAP);
    this.latest = message;
    this.messages.set(key, message);
    if (this.messages.size > KEEP_MESSAGES) this.messages.delete(this.messages.keys().next().value);
    if (this.receiveTimes === false || !this.stats.rvfc) {
      this.hold.addLatency(this.clock.latencyMs(message)); // no frame arrival times here
    } else {
      this.hold.poseArrived(key);
    }
    const missed = near(this.unposed, key);
    if (missed !== undefined) { // its frame has come and gone: the hold was too short
      this.unposed.delete(missed);
      this.stats.late += 1;
    }
    this.panel.update(message.analysis);
    if (this.shown && sameFrame(this.shown.key, key)) {
      this.draw(message, this.shown); // late, but still on the very frame on screen
    } else if (!this.rvfcActive()) {
      this.draw(message, null);
    }
  }

  async sendExercise({ exercise, profile }) {
    // a trainer picks the exercise for this camera (REST, so it works for every camera kind)
    const body = { exercise };
    if (exercise && profile) body.profile = profile;
    const response = await fetch(serverUrl(`/cameras/${encodeURIComponent(this.cameraId)}/exercise`), {
      method: 'POST',
      headers: authHeaders({ 'Content-Type': 'application/json' }),
      body: JSON.stringify(body),
    }).catch(() => null);
    if (response && isRefusal(response.status)) {
      if (response.status === 403) showRefusal($('access'), 403, 'access_forbidden_exercise');
      else refuse(response.status);
    }
    return Boolean(response && response.ok);
  }

  // The person the server says this camera is tied to (null: nobody).
  showPerson(person) {
    this.stats.person = person;
    if (!this.personInput.dataset.editing) this.personInput.value = person || ''; // not while typing
    const link = this.element.querySelector('.history-link');
    link.hidden = !person;
    if (!person) return;
    const query = new URLSearchParams({ person });
    if (accessToken()) query.set('token', accessToken()); // the new tab keeps it for itself
    link.href = `/history?${query}`;
  }

  // A trainer ties the camera to the person typed here (empty: nobody), over REST; the
  // server's person_set then reaches every page watching it.
  async choosePerson() {
    const input = this.personInput;
    delete input.dataset.editing;
    const value = input.value.trim();
    if (value && !PERSON_ID.test(value)) {
      input.setCustomValidity(t('person_invalid'));
      input.reportValidity();
      return;
    }
    const response = await fetch(serverUrl(`/cameras/${encodeURIComponent(this.cameraId)}/person`), {
      method: 'POST',
      headers: authHeaders({ 'Content-Type': 'application/json' }),
      body: JSON.stringify({ person: value || null }),
    }).catch(() => null);
    if (response && isRefusal(response.status)) { refuse(response.status); return; }
    if (response && response.ok) {
      const answer = await response.json().catch(() => ({}));
      if (answer.type === 'person_set') this.showPerson(answer.person);
      listPeople();
    } else {
      input.setCustomValidity(t('person_invalid'));
      input.reportValidity();
    }
  }

  // Whether each frame on screen finds its own pose (else the newest pose is drawn).
  rvfcActive() { return this.stats.rvfc && this.offset !== null && this.stats.frameKeys !== 'newest'; }

  draw(message, shown) {
    if (shown) shown.drawnKey = message.frame_pts % PTS_WRAP;
    else if (message && !this.rvfcActive()) this.stats.drawn += 1; // no frame to match it with
    if (showOverlay) drawPoses(this.canvas, message); else drawPoses(this.canvas, null);
  }

  // The frame's own result, else the newest result of an earlier frame (a skipped frame
  // keeps the last skeleton rather than none).
  lookup(key) {
    const own = near(this.messages, key);
    if (own !== undefined) return this.messages.get(own);
    let best = null;
    let bestAge = Infinity;
    for (const [candidate, message] of this.messages) {
      const age = (key - candidate + PTS_WRAP) % PTS_WRAP;
      if (age < bestAge && age < PTS_WRAP / 2) { bestAge = age; best = message; }
    }
    return best;
  }

  // The frame on screen is being replaced: was its own skeleton on it?
  finishFrame() {
    const shown = this.shown;
    if (!shown || shown.key === null) return;
    this.stats.frames += 1;
    const own = shown.drawnKey !== null && sameFrame(shown.key, shown.drawnKey);
    if (shown.drawnKey !== null) {
      this.stats.drawn += 1;
      const age = (shown.key - shown.drawnKey + PTS_WRAP) % PTS_WRAP;
      const frames = own ? 0 : Math.max(1, Math.round(age / (this.frameIntervalMs * 90)));
      this.stats.mismatch[frames] = (this.stats.mismatch[frames] || 0) + 1;
    }
    if (own) {
      this.stats.matched += 1;
    } else { // its pose is late, or never comes (the server skipped the frame): see onMessage
      this.unposed.set(shown.key, performance.now());
    }
  }

  // Frames whose pose never came were not analysed: they do not count for the overlay match.
  forgetUnposed(now) {
    for (const [key, leftAt] of this.unposed) {
      if (now - leftAt < NO_POSE_AFTER_MS) break;
      this.unposed.delete(key);
      this.stats.noPose += 1;
    }
  }

  // The RTP timestamp of the frame on screen: the frame's own (requestVideoFrameCallback's
  // metadata: Chromium's, Firefox ESR 153's), else the newest the receiver handed to the
  // video (getSynchronizationSources: the frame on screen or the one before), else none.
  frameRtpTimestamp(metadata) {
    if (typeof metadata.rtpTimestamp === 'number') {
      this.stats.frameKeys = 'frame';
      return metadata.rtpTimestamp;
    }
    const sources = this.receiver && typeof this.receiver.getSynchronizationSources === 'function'
      ? this.receiver.getSynchronizationSources() : [];
    if (sources.length && typeof sources[0].rtpTimestamp === 'number') {
      this.stats.frameKeys = 'source';
      return sources[0].rtpTimestamp;
    }
    this.stats.frameKeys = 'newest';
    return undefined;
  }

  // Each frame on screen gets its own skeleton, found by its RTP timestamp. A browser
  // without requestVideoFrameCallback, or whose frames carry no RTP timestamp, draws the
  // newest skeleton as it comes instead (a frame or two off when the video lags).
  watchFrames() {
    if (!('requestVideoFrameCallback' in HTMLVideoElement.prototype)) {
      this.stats.frameKeys = 'newest';
      return;
    }
    this.stats.rvfc = true;
    const onFrame = (now, metadata) => {
      if (this.closed) return;
      this.stats.videoTime = this.video.currentTime;
      this.finishFrame();
      this.shown = null;
      const rtpTimestamp = this.frameRtpTimestamp(metadata); // undefined: drawn as poses come
      if (this.offset !== null && rtpTimestamp !== undefined) {
        const key = (rtpTimestamp - this.offset + PTS_WRAP) % PTS_WRAP;
        if (this.previousFrameKey !== undefined) this.noteStep(key, this.previousFrameKey);
        this.previousFrameKey = key;
        if (this.receiveTimes === null) this.receiveTimes = typeof metadata.receiveTime === 'number';
        if (this.receiveTimes) {
          this.hold.frameShown(key, metadata.receiveTime, metadata.expectedDisplayTime || now);
        }
        this.shown = { key, drawnKey: null };
        const message = this.lookup(key);
        if (message) {
          this.draw(message, this.shown);
          const latency = this.clock.latencyMs(message);
          if (latency !== null) {
            this.stats.latencyMs = this.stats.latencyMs === null ? latency
              : 0.8 * this.stats.latencyMs + 0.2 * latency;
          }
        }
      }
      this.video.requestVideoFrameCallback(onFrame);
    };
    this.video.requestVideoFrameCallback(onFrame);
  }

  refresh() {
    const now = performance.now();
    if (!this.stats.rvfc) this.stats.videoTime = this.video.currentTime; // else per frame
    this.forgetUnposed(now);
    const stats = this.stats;
    stats.frameIntervalMs = Math.round(this.frameIntervalMs);
    stats.videoDelayMs = this.hold.adapt(this.frameIntervalMs);
    const rounded = (ms) => (ms === null ? null : Math.round(ms));
    stats.poseLatencyMs = rounded(this.hold.latencyP50Ms);
    stats.poseLatencyP95Ms = rounded(this.hold.latencyP95Ms);
    stats.videoHeldMs = rounded(this.hold.heldMs);
    stats.analysedFps = this.rate.perSecond();
    const q = (selector) => this.element.querySelector(selector);
    showAnalysedRate(q('.fps'), stats.analysedFps, this.latest && this.latest.timing);
    this.showLatency(q('.latency-stat'));
    const posed = stats.matched + stats.late;
    q('.match').textContent = posed ? `${Math.round((100 * stats.matched) / posed)}%` : '–';
  }

  // Pose latency and the deliberate video hold, with what they mean in the tooltip.
  showLatency(element) {
    const { poseLatencyMs, poseLatencyP95Ms, videoHeldMs, videoDelayMs, latencyMs } = this.stats;
    const held = videoHeldMs !== null ? videoHeldMs : videoDelayMs;
    const ms = (value) => (value === null || value === undefined ? '–' : `${Math.round(value)}`);
    element.querySelector('.latency').textContent = poseLatencyMs === null ? '–' : `${ms(poseLatencyMs)} ms`;
    element.querySelector('.held').textContent = held === null ? '' : ` · ${t('video_held')} ${ms(held)} ms`;
    element.title = poseLatencyMs === null ? t('latency_hint_waiting') : format('latency_hint', {
      pose: ms(poseLatencyMs), p95: ms(poseLatencyP95Ms), held: ms(held), total: ms(latencyMs),
    });
  }

  close() {
    this.closed = true;
    clearInterval(this.pingTimer);
    if (this.peer) this.peer.pc.close();
    this.element.remove();
    delete debug.tiles[this.cameraId];
  }
}

// Station tiles take a whole row each, above the cameras on their own.
function layout() {
  const count = tiles.size;
  const alone = [...tiles.values()].filter((tile) => tile.element.parentElement === grid).length;
  const columns = Math.max(1, Math.ceil(Math.sqrt(alone)));
  const rows = Math.ceil(alone / columns);
  grid.style.setProperty('--columns', String(columns));
  grid.style.setProperty('--rows', String(Math.max(1, rows)));
  grid.style.gridTemplateRows = [
    ...Array(stationTiles.size).fill('minmax(30rem, 1.6fr)'),
    ...Array(rows).fill('minmax(14rem, 1fr)'),
  ].join(' ') || '';
  grid.classList.toggle('with-stations', stationTiles.size > 0);
  $('empty').hidden = count > 0 || Boolean(debug.access || debug.unsupported);
  $('count').textContent = count ? `${count}` : '';
}

// ---- stations

// Puts each camera tile in its station's tile (or on the wall when it has none), makes a
// tile for each station that has a camera streaming here, and drops the others.
function arrangeStations() {
  const stationOf = new Map(); // camera id -> station id
  const live = new Set();
  for (const summary of stationSummaries) {
    const streaming = (summary.streaming || []).filter((id) => tiles.has(id));
    if (!streaming.length) continue;
    live.add(summary.id);
    for (const id of streaming) stationOf.set(id, summary.id);
    if (!stationTiles.has(summary.id)) {
      const station = new StationTile(summary.id, $('station-template'), { onRefusal: refuse });
      stationTiles.set(summary.id, station);
      debug.stations[summary.id] = station.stats;
      const firstStation = [...grid.children].find((child) => !child.classList.contains('station-tile'));
      grid.insertBefore(station.element, firstStation || null);
      applyLanguage(station.element);
      station.relabel();
    }
    stationTiles.get(summary.id).updateSummary(summary);
  }
  for (const [id, station] of stationTiles) {
    for (const cameraId of [...station.tiles.keys()]) {
      if (stationOf.get(cameraId) === id && tiles.get(cameraId) === station.tiles.get(cameraId)) continue;
      const tile = station.release(cameraId);
      if (tile && tiles.get(cameraId) === tile) grid.append(tile.element);
    }
    if (!live.has(id)) {
      station.close();
      stationTiles.delete(id);
      delete debug.stations[id];
    }
  }
  for (const [cameraId, tile] of tiles) {
    const station = stationTiles.get(stationOf.get(cameraId));
    if (station) station.adopt(tile);
  }
  layout();
}

let stationsTimer = null;
async function refreshStations() {
  clearTimeout(stationsTimer);
  if (debug.access) return;
  const response = await fetchFromNodes('/stations', { headers: authHeaders(), cache: 'no-store' }).catch(() => null);
  if (response && isRefusal(response.status)) { refuse(response.status); return; }
  if (response && response.ok) {
    const answer = await response.json().catch(() => ({}));
    stationSummaries = Array.isArray(answer.stations) ? answer.stations : [];
    arrangeStations();
  }
  clearTimeout(stationsTimer); // one poll pending, however many asks overlapped
  stationsTimer = setTimeout(refreshStations, STATIONS_POLL_MS);
}

// Each station message comes once per camera of the station this page watches: the first
// is shown, the others dropped.
const seenStationMessages = new Set();
function onStationMessage(message) {
  const key = message.type === 'station_processed'
    ? `p|${message.station_id}|${message.timestamp}`
    : `r|${message.station_id}|${message.rep && message.rep.station_index}|${message.rep && message.rep.ended_at}`;
  if (seenStationMessages.has(key)) return;
  seenStationMessages.add(key);
  if (seenStationMessages.size > KEEP_STATION_KEYS) {
    seenStationMessages.delete(seenStationMessages.values().next().value);
  }
  const station = stationTiles.get(message.station_id);
  if (!station) { refreshStations(); return; } // a station this page has not heard of yet
  if (message.type === 'station_processed') station.onProcessed(message);
  else station.onRep(message);
}

function updateCameras(cameras) {
  if (debug.access) return;
  const wanted = new Set(cameras.slice(0, 16));
  for (const [id, tile] of tiles) {
    if (!wanted.has(id)) { tile.close(); tiles.delete(id); }
  }
  for (const id of wanted) {
    if (!tiles.has(id)) tiles.set(id, new Tile(id));
    else if (tiles.get(id).stats.offline) { // the camera came back: reconnect its tile
      tiles.get(id).close();
      tiles.set(id, new Tile(id));
    }
  }
  arrangeStations();
  refreshStations(); // a camera that came or went may have joined or left a station
}

// People already known, as suggestions for the tiles' person fields.
async function listPeople() {
  const response = await fetchFromNodes('/people', { headers: authHeaders() }).catch(() => null);
  if (!response || !response.ok) return;
  const answer = await response.json().catch(() => ({}));
  $('people-options').replaceChildren(...(answer.people || []).map((person) => {
    const option = document.createElement('option');
    option.value = person.id;
    return option;
  }));
}

// The server refused this page's token (401, 403): no more watching, and a plain word why.
function refuse(status) {
  if (debug.access) return;
  debug.access = showRefusal($('access'), status, 'access_forbidden_monitor');
  for (const tile of tiles.values()) tile.close();
  tiles.clear();
  for (const station of stationTiles.values()) station.close();
  stationTiles.clear();
  layout();
}

// A WebSocket cannot read the HTTP status of a refused upgrade, so the page asks over HTTP
// (the camera list needs the same right as the socket) before it opens one and after one
// closes: a refusal stops it, anything else is retried.
async function watchCameraList(delay = 1000) {
  if (debug.access) return;
  const refusal = await refusalFor('/cameras');
  if (refusal) { refuse(refusal); return; }
  await learnClusterNodes(authHeaders()); // in a cluster: where to go on if this node dies
  listPeople();
  const socket = new WebSocket(webSocketUrl('/ws/monitor'));
  socket.onmessage = (event) => {
    let message;
    try { message = JSON.parse(event.data); } catch (error) { return; }
    if (message.type === 'cameras_list') updateCameras(message.cameras);
  };
  socket.onopen = () => { delay = 1000; };
  socket.onclose = () => {
    for (const tile of tiles.values()) tile.setOffline(true);
    setTimeout(() => watchCameraList(Math.min(delay * 2, 10000)), delay);
  };
}

$('overlay-toggle').addEventListener('change', (event) => {
  showOverlay = event.target.checked;
  for (const tile of tiles.values()) if (!showOverlay) drawPoses(tile.canvas, null);
});
$('language').addEventListener('click', () => {
  toggleLanguage();
  for (const tile of tiles.values()) {
    tile.exercisePicker.nameOptions();
    tile.personInput.placeholder = t('person');
    tile.refresh();
  }
  for (const station of stationTiles.values()) station.relabel();
});
applyLanguage();
debug.unsupported = missingForMonitor();
layout();
if (debug.unsupported) { // it could never play a camera: say what to use instead
  showUnsupported($('access'), debug.unsupported);
} else {
  setInterval(() => { for (const tile of tiles.values()) tile.refresh(); }, 500);
  watchCameraList();
}

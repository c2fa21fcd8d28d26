// The monitor wall: a live tile per camera with its relayed video and the skeleton drawn on
// the very frame it was computed from (matched by RTP timestamp, see docs/protocol.md).

import { AnalysisPanel } from './analysis_panel.js';
import { applyLanguage, toggleLanguage } from './i18n.js';
import { drawPoses } from './overlay.js';
import { connectPeer, fetchConfig, RateMeter, ServerClock } from './signaling.js';
import { showAnalysedRate } from './server_load.js';

const $ = (id) => document.getElementById(id);
const grid = $('grid');
const tiles = new Map(); // camera id -> Tile
const debug = { tiles: {} };
window.komiMonitor = debug; // debug stats, read by the browser tests
let config = null;
let showOverlay = true;

const PTS_WRAP = 2 ** 32;
const KEEP_MESSAGES = 90;
// The video is held briefly so each frame's pose message is there when it shows; the hold
// grows when messages arrive after their frame (a loaded server) and shrinks back slowly.
const VIDEO_DELAY_MS = { start: 200, min: 120, max: 1500 };

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
      if (event.target.tagName !== 'SELECT') this.element.classList.toggle('enlarged');
    });
    this.exerciseSelect = this.element.querySelector('select.exercise');
    fillExercises(this.exerciseSelect);
    this.exerciseSelect.addEventListener('change', () => this.chooseExercise());
    grid.append(this.element);
    applyLanguage(this.element);
    this.messages = new Map(); // frame_pts mod 2^32 -> message
    this.displayedAt = new Map(); // frame key -> when it was shown (performance.now())
    this.lateness = []; // ms by which messages missed their frame, since the last adaptation
    this.lastLate = performance.now();
    this.videoDelayMs = VIDEO_DELAY_MS.start;
    this.latest = null;
    this.offset = null; // rtp_timestamp_offset from video_timing
    this.clock = new ServerClock();
    this.rate = new RateMeter();
    this.shown = null; // { key, drawnKey } of the frame on screen
    this.frameInterval = 9000;
    this.stats = { frames: 0, drawn: 0, matched: 0, mismatch: {}, latencyMs: null, videoDelayMs: null,
      analysedFps: 0, messages: 0, offline: false, videoTime: 0, rvfc: false };
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
          this.setVideoDelay(VIDEO_DELAY_MS.start);
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
      this.pingTimer = setInterval(() => {
        if (this.peer) this.clock.ping(this.peer.channel);
        this.adaptVideoDelay();
      }, 2000);
    } catch (error) {
      console.warn(`monitor ${this.cameraId}:`, error.message);
      this.setOffline(true);
    }
  }

  setVideoDelay(ms) {
    this.videoDelayMs = Math.round(Math.min(VIDEO_DELAY_MS.max, Math.max(VIDEO_DELAY_MS.min, ms)));
    this.stats.videoDelayMs = this.videoDelayMs;
    if (!this.receiver) return;
    if ('jitterBufferTarget' in this.receiver) this.receiver.jitterBufferTarget = this.videoDelayMs;
    else if ('playoutDelayHint' in this.receiver) this.receiver.playoutDelayHint = this.videoDelayMs / 1000;
  }

  adaptVideoDelay() {
    const now = performance.now();
    if (this.lateness.length) {
      const worst = Math.max(...this.lateness);
      this.lateness = [];
      this.lastLate = now;
      this.setVideoDelay(this.videoDelayMs + worst + 30);
    } else if (now - this.lastLate > 10000) {
      this.lastLate = now;
      this.setVideoDelay(this.videoDelayMs - 20);
    }
  }

  setOffline(offline) {
    this.stats.offline = offline;
    this.element.classList.toggle('offline', offline);
  }

  onMessage(message) {
    if (message.type === 'pong') { this.clock.onPong(message); return; }
    if (message.type === 'video_timing') { this.offset = message.rtp_timestamp_offset; return; }
    if (message.type === 'camera_disconnected') { this.setOffline(true); return; }
    if (message.type === 'exercise_set') { this.exerciseSelect.value = message.exercise || ''; return; }
    if (message.type !== 'frame_processed') return;
    this.stats.messages += 1;
    this.rate.tick();
    const key = message.frame_pts % PTS_WRAP;
    if (this.latest) {
      const step = (key - this.latest.frame_pts % PTS_WRAP + PTS_WRAP) % PTS_WRAP;
      if (step > 0 && step < 90000) this.frameInterval = 0.9 * this.frameInterval + 0.1 * step;
    }
    this.latest = message;
    this.messages.set(key, message);
    const shownAt = this.displayedAt.get(key);
    if (shownAt !== undefined && !(this.shown && this.shown.key === key)) {
      this.lateness.push(performance.now() - shownAt); // its frame has come and gone
    }
    if (this.messages.size > KEEP_MESSAGES) this.messages.delete(this.messages.keys().next().value);
    this.panel.update(message.analysis);
    if (this.shown && this.shown.key !== null && Math.abs(this.shown.key - key) <= 2) {
      this.draw(message, this.shown); // late, but still on the very frame on screen
    } else if (!this.rvfcActive()) {
      this.draw(message, null);
    }
  }

  async chooseExercise() {
    // a trainer picks the exercise for this camera (REST, so it works for every camera kind)
    await fetch(`/cameras/${encodeURIComponent(this.cameraId)}/exercise`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ exercise: this.exerciseSelect.value || null }),
    }).catch(() => {});
  }

  rvfcActive() { return this.stats.rvfc && this.offset !== null; }

  draw(message, shown) {
    if (shown) shown.drawnKey = message.frame_pts % PTS_WRAP;
    if (showOverlay) drawPoses(this.canvas, message); else drawPoses(this.canvas, null);
  }

  lookup(key) {
    for (const delta of [0, -1, 1, -2, 2]) {
      const found = this.messages.get((key + delta + PTS_WRAP) % PTS_WRAP);
      if (found) return found;
    }
    let best = null;
    let bestAge = Infinity; // newest message for an earlier frame
    for (const [candidate, message] of this.messages) {
      const age = (key - candidate + PTS_WRAP) % PTS_WRAP;
      if (age < bestAge && age < PTS_WRAP / 2) { bestAge = age; best = message; }
    }
    return best;
  }

  finishFrame() {
    const shown = this.shown;
    if (!shown || shown.key === null) return;
    this.stats.frames += 1;
    if (shown.drawnKey === null) return;
    this.stats.drawn += 1;
    const age = (shown.key - shown.drawnKey + PTS_WRAP) % PTS_WRAP;
    const frames = age <= 2 ? 0 : Math.max(1, Math.round(age / this.frameInterval));
    if (frames === 0) this.stats.matched += 1;
    this.stats.mismatch[frames] = (this.stats.mismatch[frames] || 0) + 1;
  }

  watchFrames() {
    if (!('requestVideoFrameCallback' in HTMLVideoElement.prototype)) return;
    this.stats.rvfc = true;
    const onFrame = (now, metadata) => {
      if (this.closed) return;
      this.stats.videoTime = this.video.currentTime;
      this.finishFrame();
      if (this.offset !== null && metadata.rtpTimestamp !== undefined) {
        const key = (metadata.rtpTimestamp - this.offset + PTS_WRAP) % PTS_WRAP;
        this.shown = { key, drawnKey: null };
        this.displayedAt.set(key, performance.now());
        if (this.displayedAt.size > KEEP_MESSAGES) this.displayedAt.delete(this.displayedAt.keys().next().value);
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
    this.stats.analysedFps = this.rate.perSecond();
    const q = (selector) => this.element.querySelector(selector);
    showAnalysedRate(q('.fps'), this.stats.analysedFps, this.latest && this.latest.timing);
    q('.latency').textContent = this.stats.latencyMs === null ? '–' : `${Math.round(this.stats.latencyMs)} ms`;
    q('.match').textContent = this.stats.drawn
      ? `${Math.round((100 * this.stats.matched) / this.stats.drawn)}%` : '–';
  }

  close() {
    this.closed = true;
    clearInterval(this.pingTimer);
    if (this.peer) this.peer.pc.close();
    this.element.remove();
    delete debug.tiles[this.cameraId];
  }
}

let exerciseList = null;
async function loadExerciseList() {
  if (!exerciseList) {
    exerciseList = fetch('/exercises').then((r) => r.json()).then((d) => d.exercises).catch(() => []);
  }
  return exerciseList;
}

async function fillExercises(select) {
  const lang = document.documentElement.lang;
  for (const exercise of await loadExerciseList()) {
    const option = document.createElement('option');
    option.value = exercise.id;
    option.textContent = exercise.name[lang] || exercise.name.en;
    select.append(option);
  }
}

function layout() {
  const count = tiles.size;
  const columns = Math.max(1, Math.ceil(Math.sqrt(count)));
  grid.style.setProperty('--columns', String(columns));
  $('empty').hidden = count > 0;
  $('count').textContent = count ? `${count}` : '';
}

function updateCameras(cameras) {
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
  layout();
}

function watchCameraList(delay = 1000) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const socket = new WebSocket(`${scheme}://${location.host}/ws/monitor`);
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
$('language').addEventListener('click', toggleLanguage);
applyLanguage();
layout();
setInterval(() => { for (const tile of tiles.values()) tile.refresh(); }, 500);
watchCameraList();

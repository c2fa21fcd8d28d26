// The camera page: streams this device's camera, draws the returned skeleton on the preview,
// shows live status and exercise feedback, and reconnects by itself, except when the server
// refuses its access link: then it says so and stops. The camera can be tied to a person:
// their sets are recorded, and their best earlier set is shown beside the live count.
// Cameras filming one person join a station (`?station=` in the link, or the field in the
// settings): the page then shows the station's count, counted once from all its views.

import {
  accessToken, authHeaders, isRefusal, linkReadsHistory, showRefusal,
} from './access.js';
import { AnalysisPanel } from './analysis_panel.js';
import { missingForCamera, showUnsupported } from './browser_support.js';
import { ExercisePicker, loadCatalog } from './exercise_picker.js';
import { applyLanguage, format, t, toggleLanguage } from './i18n.js';
import { drawPoses } from './overlay.js';
import { fetchFromNodes } from './nodes.js';
import { connectPeer, fetchConfig, RateMeter, ServerClock } from './signaling.js';
import { showAnalysedRate } from './server_load.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const preview = $('preview');
const overlay = $('overlay');
const panel = new AnalysisPanel($('analysis'));
const stats = { state: 'idle', results: 0, latencyMs: null, analysedFps: 0, lastMessage: null,
  lastPoses: 0, error: null, access: null, person: null, best: undefined,
  station: null, stationMessages: 0, stationReps: null, stationSyncMs: null, stationRep: null,
  server: null };
window.komiCamera = stats; // debug stats, read by the browser tests

let config = null;
let stream = null;
let peer = null;
let wanted = false; // the user asked to stream
let retryTimer = null;
let retryDelay = 1000;
let pingTimer = null;
let wakeLock = null;
let clock = new ServerClock();
const rate = new RateMeter();
// the camera-id rules (docs/protocol.md): not `.`, `..`, nor starting with `-`
const PERSON_ID = /^(?!-)(?!\.\.?$)[A-Za-z0-9_.-]{1,64}$/;
let readsHistory = null; // this page's link may read history (a monitor's or the admin's)
let personSent = null; // { person, at }: set_person sent, no answer yet
const STATION_FRESH_MS = 1500; // the station's analysis this recent is shown instead of this view's
let stationAnalysisAt = -Infinity;

function setState(state) {
  stats.state = state;
  $('state').textContent = t(state);
  $('state').dataset.state = state;
}

function showBanner(text) {
  delete $('message').dataset.i18n;
  $('message').textContent = text || '';
  $('message').hidden = !text;
}

// The server refused this page's token (401, 403): stop, and say why in plain words.
function refuse(status) {
  stop();
  stats.access = showRefusal($('message'), status, 'access_forbidden_camera');
  setState('no_access');
}

function loadSettings() {
  let id = params.get('camera_id') || localStorage.getItem('komi.cameraId');
  if (!id) id = `camera_${String(Math.floor(Math.random() * 90000) + 10000)}`;
  $('camera-id').value = id;
  for (const key of ['facing', 'resolution', 'fps-choice', 'device']) {
    const saved = localStorage.getItem(`komi.${key}`);
    if (saved !== null) $(key).value = saved;
  }
  $('person').value = params.get('person') || localStorage.getItem('komi.person') || '';
  $('station').value = params.get('station') ?? (localStorage.getItem('komi.station') || '');
  showHistoryLink();
  $('speak').checked = localStorage.getItem('komi.speak') === '1';
  panel.speak = $('speak').checked;
}

function saveSettings() {
  localStorage.setItem('komi.cameraId', $('camera-id').value.trim());
  if (chosenStation() !== undefined) localStorage.setItem('komi.station', chosenStation() || '');
  for (const key of ['facing', 'resolution', 'fps-choice', 'device']) {
    localStorage.setItem(`komi.${key}`, $(key).value);
  }
}

async function listDevices() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
  const devices = (await navigator.mediaDevices.enumerateDevices())
    .filter((device) => device.kind === 'videoinput');
  const select = $('device');
  const chosen = localStorage.getItem('komi.device') || '';
  select.length = 1;
  devices.forEach((device, index) => {
    const option = document.createElement('option');
    option.value = device.deviceId;
    option.textContent = device.label || `Camera ${index + 1}`;
    select.append(option);
  });
  select.value = chosen;
}

async function openCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new Error(window.isSecureContext ? t('no_camera') : t('insecure'));
  }
  const [width, height] = $('resolution').value.split('x').map(Number);
  const fps = Number($('fps-choice').value);
  const video = { width: { ideal: width }, height: { ideal: height }, frameRate: { ideal: fps, max: fps } };
  if ($('device').value) video.deviceId = { exact: $('device').value };
  else video.facingMode = $('facing').value;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video, audio: false });
  } catch (error) {
    throw new Error(`${t('no_camera')} (${error.name})`);
  }
  preview.srcObject = stream;
  const settings = stream.getVideoTracks()[0].getSettings();
  const front = settings.facingMode ? settings.facingMode === 'user' : $('facing').value === 'user';
  preview.classList.toggle('mirrored', front);
  overlay.dataset.mirror = front ? '1' : '0';
  listDevices();
}

// The picker shows the exercise this camera runs, wherever it was chosen; choosing here sends
// it on the channel (or once connected, see start()).
const exercisePicker = new ExercisePicker($('exercise'), {
  profileSelect: $('profile'),
  choose: ({ exercise: chosen, profile }) => {
    localStorage.setItem('komi.exercise', chosen || '');
    if (peer && peer.channel.readyState === 'open') {
      const message = { type: 'set_exercise', exercise: chosen, profile };
      if (peer.station) message.station = peer.station; // the whole station counts as one
      peer.channel.send(JSON.stringify(message));
    }
  },
});
exercisePicker.ready.then(() => { // this page's last choice, unless the server already said
  if (exercisePicker.running.known || exercisePicker.choice) return;
  exercisePicker.value = params.get('exercise') || localStorage.getItem('komi.exercise');
  if (exercisePicker.value && peer && peer.channel.readyState === 'open') {
    exercisePicker.choose(exercisePicker.value);
  }
});

// ---- the person this camera is tied to

// The person in the field: an id, null for nobody, undefined when it is not a valid id.
function chosenPerson() {
  const value = $('person').value.trim();
  if (!value) return null;
  return PERSON_ID.test(value) ? value : undefined;
}

// The link to the person's history, in a new tab. It carries this page's token: the history
// page keeps it for that tab. Only a monitor's or the admin's link reads history: a camera
// link shows none (the person gets their own history link from whoever runs the server).
function showHistoryLink() {
  const person = stats.person || chosenPerson();
  const link = $('history-link');
  link.hidden = !person || !readsHistory;
  if (!person) return;
  const query = new URLSearchParams({ person });
  if (accessToken()) query.set('token', accessToken());
  link.href = `/history?${query}`;
}

// Ties the camera to the person in the field, over the channel (the server answers
// person_set to everyone); before the channel opens, start() does it.
function tiePerson() {
  const person = chosenPerson();
  if (person === undefined) return;
  if (!peer || peer.channel.readyState !== 'open') return;
  personSent = { person, at: performance.now() };
  peer.channel.send(JSON.stringify({ type: 'set_person', person }));
}

$('person').addEventListener('input', () => {
  $('person').setCustomValidity('');
  $('person').dataset.editing = '1'; // a person_set meanwhile does not overwrite the typing
});
$('person').addEventListener('change', () => {
  const input = $('person');
  delete input.dataset.editing;
  const person = chosenPerson();
  if (person === undefined) {
    input.setCustomValidity(t('person_invalid'));
    input.reportValidity();
    return;
  }
  input.setCustomValidity('');
  input.value = person || '';
  localStorage.setItem('komi.person', person || '');
  showHistoryLink();
  tiePerson();
});

// ---- the station this camera is part of

// The station in the field: an id, null for none, undefined when it is not a valid id.
function chosenStation() {
  const value = $('station').value.trim();
  if (!value) return null;
  return PERSON_ID.test(value) ? value : undefined; // a station id follows the same rules
}

$('station').addEventListener('input', () => $('station').setCustomValidity(''));
$('station').addEventListener('change', () => {
  const station = chosenStation();
  if (station === undefined) {
    $('station').setCustomValidity(t('station_invalid'));
    $('station').reportValidity();
    return;
  }
  $('station').value = station || '';
  saveSettings();
  if (wanted) start(); // a camera joins a station with its offer
});

// The station's line: its name, how far apart its views were captured, who counts.
function showStation() {
  const station = stats.station;
  $('station-status').hidden = !station;
  if (!station) return;
  $('station-name').textContent = format('station_of', { station });
  $('station-sync').textContent = stats.stationSyncMs === null ? '–' : `${Math.round(stats.stationSyncMs)} ms`;
  const source = stats.stationSource;
  $('station-source').textContent = source ? format('counted_by', { camera: source }) : '';
  const fresh = performance.now() - stationAnalysisAt < STATION_FRESH_MS;
  $('analysis').classList.toggle('station-analysis', fresh);
  $('reps-label').dataset.i18n = fresh ? 'station_reps' : 'reps';
  $('reps-label').textContent = t($('reps-label').dataset.i18n);
}

function onStationMessage(message) {
  if (!peer || message.station_id !== peer.station) return;
  if (message.type === 'rep_completed') { stats.stationRep = message.rep || null; return; }
  stats.stationMessages += 1;
  if (typeof message.sync_error_ms === 'number') {
    stats.stationSyncMs = stats.stationSyncMs === null ? message.sync_error_ms
      : 0.8 * stats.stationSyncMs + 0.2 * message.sync_error_ms;
  }
  const analysis = message.analysis;
  stats.stationSource = analysis ? analysis.source || null : null;
  if (analysis) {
    stationAnalysisAt = performance.now();
    stats.stationReps = analysis.reps ?? null;
    panel.update(analysis);
  }
}

function exerciseKind(exercise) {
  return loadCatalog().then((catalog) => {
    const entry = catalog.find((item) => item.id === exercise);
    return entry ? entry.kind : 'reps';
  });
}

// The person's best earlier set of this exercise, beside the live count.
async function showBest() {
  const element = $('best');
  const best = stats.best;
  if (best === undefined) { element.hidden = true; element.textContent = ''; return; }
  let value = t('best_first');
  if (best) {
    const kind = await exerciseKind(stats.bestExercise);
    if (kind === 'hold') value = `${Number(best.hold_seconds || 0).toFixed(0)} ${t('seconds_unit')}`;
    else if (kind === 'range' && best.best_rom_deg !== null) value = `${Math.round(best.best_rom_deg)}°`;
    else value = format('reps_count', { n: best.reps });
    element.title = best.mean_score !== null && best.mean_score !== undefined
      ? `${best.good_reps} ${t('good_reps')} · ${t('mean_score')} ${Math.round(best.mean_score)}` : '';
  }
  if (stats.best !== best) return; // a newer one came meanwhile
  element.textContent = `${t('best')}: ${value}`;
  element.hidden = false;
}

function onPersonMessage(message) {
  if (message.type === 'person_set') {
    personSent = null;
    if (message.person !== stats.person) { stats.best = undefined; showBest(); }
    stats.person = message.person;
    if (!$('person').dataset.editing) { // not while someone is typing a name
      $('person').value = message.person || '';
      localStorage.setItem('komi.person', message.person || '');
    }
    showHistoryLink();
  } else if (message.type === 'person_best') {
    if (message.person !== stats.person && message.person !== chosenPerson()) return;
    stats.best = message.best;
    stats.bestExercise = message.exercise;
    showBest();
  } else if (message.type === 'exercise_set') {
    stats.best = undefined; // the new set's person_best follows when a person is tied
    showBest();
  }
}

// The server refused what a field asked for: said on the field, nothing else changes.
function fieldRefused(id, text) {
  const input = $(id);
  input.setCustomValidity(text);
  input.reportValidity();
  input.addEventListener('input', () => input.setCustomValidity(''), { once: true });
}

// An error answering our set_person (an id the server refuses): said on the field.
function personError(message) {
  if (!personSent || performance.now() - personSent.at > 5000) return false;
  personSent = null;
  $('person').setCustomValidity(message.error || t('person_invalid'));
  $('person').reportValidity();
  return true;
}

function onMessage(message) {
  if (message.type === 'pong') { clock.onPong(message); return; }
  if (message.type === 'error') {
    console.warn('server:', message.error);
    if (personError(message)) return;
    exercisePicker.forgetChoice();
    return;
  }
  if (message.station_id && (message.type === 'station_processed' || message.type === 'rep_completed')) {
    onStationMessage(message);
    return;
  }
  onPersonMessage(message);
  exercisePicker.onMessage(message);
  if (message.type !== 'frame_processed') return;
  stats.results += 1;
  rate.tick();
  stats.lastMessage = message;
  stats.lastPoses = drawPoses(overlay, message, { mirror: overlay.dataset.mirror === '1' });
  const latency = clock.latencyMs(message);
  if (latency !== null) stats.latencyMs = stats.latencyMs === null ? latency : 0.8 * stats.latencyMs + 0.2 * latency;
  // in a station running an exercise, the station's analysis (all views, one count) is shown
  if (performance.now() - stationAnalysisAt >= STATION_FRESH_MS) panel.update(message.analysis);
}

function refreshStatus() {
  stats.analysedFps = rate.perSecond();
  const connected = stats.state === 'connected';
  showAnalysedRate($('fps'), connected ? stats.analysedFps : null,
    connected && stats.lastMessage ? stats.lastMessage.timing : null);
  showStation();
  $('latency').textContent = stats.latencyMs !== null && stats.state === 'connected'
    ? `${Math.round(stats.latencyMs)} ms` : '–';
}

async function keepAwake() {
  try {
    if ('wakeLock' in navigator && document.visibilityState === 'visible' && !wakeLock) {
      wakeLock = await navigator.wakeLock.request('screen');
      wakeLock.addEventListener('release', () => { wakeLock = null; });
    }
  } catch (error) { /* not allowed here (e.g. battery saver): the stream still works */ }
}

function scheduleRetry() {
  if (!wanted || retryTimer) return;
  setState('reconnecting');
  retryTimer = setTimeout(() => { retryTimer = null; start(); }, retryDelay);
  retryDelay = Math.min(retryDelay * 2, 10000);
}

function dropPeer() {
  clearInterval(pingTimer);
  if (peer) { peer.pc.onconnectionstatechange = null; peer.pc.close(); peer = null; }
  exercisePicker.forgetRunning(); // a new connection is a new session: the server will say again
  personSent = null;
  stats.person = null;
  stats.station = null;
  stats.stationSyncMs = null;
  stats.stationSource = null;
  stationAnalysisAt = -Infinity;
}

// Offers this camera's stream as `cameraId`. A camera link bound to one camera refuses any
// other id (403): then the offer goes again without an id and the server names the camera.
async function offerStream(cameraId, options) {
  try {
    return await connectPeer({ ...options, cameraId });
  } catch (error) {
    // A link not made for that person (or station) may not tie the camera to them (join
    // it): stream without, and say why where it was chosen.
    if (error.status === 403 && wanted && options.person) {
      fieldRefused('person', error.message);
      return offerStream(cameraId, { ...options, person: undefined });
    }
    if (error.status === 403 && wanted && options.station) {
      fieldRefused('station', error.message);
      return offerStream(cameraId, { ...options, station: undefined });
    }
    if (error.status !== 403 || !cameraId || !wanted) throw error;
    return connectPeer({ ...options, cameraId: undefined });
  }
}

function connectFailed(error) {
  stats.error = error.message;
  console.warn('connect failed:', error.message);
  if (isRefusal(error.status)) { refuse(error.status); return; }
  showBanner(error.status === 400 ? error.message : '');
  if (error.status === 400) { stop(); return; }
  scheduleRetry();
}

async function start() {
  if (!wanted) return;
  dropPeer();
  setState('connecting');
  showBanner('');
  try { // before the camera: a link the server refuses never turns it on
    config = config || await fetchConfig();
  } catch (error) {
    connectFailed(error);
    return;
  }
  if (readsHistory === null) readsHistory = await linkReadsHistory();
  showHistoryLink();
  try {
    if (!stream || stream.getVideoTracks()[0].readyState !== 'live') await openCamera();
  } catch (error) {
    stats.error = error.message;
    showBanner(error.message);
    stop();
    return;
  }
  const cameraId = $('camera-id').value.trim() || undefined;
  const station = chosenStation() || undefined; // an invalid one: the field says so, none is sent
  try {
    clock = new ServerClock();
    peer = await offerStream(cameraId, {
      role: 'camera',
      person: chosenPerson() || undefined, // the offer's "person": tied from the first frame
      station, // the offer's "station": paired with the station's other cameras from the start
      iceServers: config.ice_servers,
      setup: (pc) => { for (const track of stream.getVideoTracks()) pc.addTrack(track, stream); },
      onMessage,
      onState: (state) => {
        if (!wanted) return;
        if (state === 'connected') { setState('connected'); retryDelay = 1000; stats.access = null; }
        if (state === 'failed' || state === 'closed' || state === 'disconnected') {
          dropPeer();
          scheduleRetry();
        }
      },
    });
    if (peer.cameraId) $('camera-id').value = peer.cameraId;
    stats.server = peer.server; // the node that answered (another one's when a cluster node died)
    peer.station = station || null;
    stats.station = peer.station;
    peer.channel.onopen = () => {
      clock.ping(peer.channel);
      // again on the channel: the server's person_set for the offer went out before the
      // channel opened, and this way the page (and every monitor) hears it
      if (chosenPerson()) tiePerson();
      if (exercisePicker.value) exercisePicker.choose(exercisePicker.value);
    };
    pingTimer = setInterval(() => peer && clock.ping(peer.channel), 2000);
    keepAwake();
  } catch (error) {
    connectFailed(error);
  }
}

function stop() {
  wanted = false;
  clearTimeout(retryTimer);
  retryTimer = null;
  dropPeer();
  if (stream) { for (const track of stream.getTracks()) track.stop(); stream = null; }
  if (wakeLock) { wakeLock.release(); wakeLock = null; }
  drawPoses(overlay, null);
  panel.update(null);
  setState('idle');
  $('connect').disabled = false;
  $('disconnect').disabled = true;
}

$('connect').addEventListener('click', () => {
  saveSettings();
  wanted = true;
  retryDelay = 1000;
  $('connect').disabled = true;
  $('disconnect').disabled = false;
  start();
});
$('disconnect').addEventListener('click', stop);
$('language').addEventListener('click', () => {
  toggleLanguage();
  setState(stats.state);
  exercisePicker.nameOptions();
  showBest();
  showStation();
});
$('speak').addEventListener('change', () => {
  panel.speak = $('speak').checked;
  localStorage.setItem('komi.speak', panel.speak ? '1' : '0');
});
for (const id of ['facing', 'resolution', 'fps-choice', 'device']) {
  $(id).addEventListener('change', () => {
    saveSettings();
    if (wanted) { if (stream) { for (const track of stream.getTracks()) track.stop(); } stream = null; start(); }
  });
}
document.addEventListener('visibilitychange', () => { if (wanted) keepAwake(); });
window.addEventListener('online', () => { if (wanted && !peer) { clearTimeout(retryTimer); retryTimer = null; start(); } });

// People already known, as suggestions (a monitor or admin link lists them; a camera link
// is not asked, and types the name).
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

applyLanguage();
loadSettings();
setState('idle');
setInterval(refreshStatus, 500);
const missing = missingForCamera();
if (missing) { // it could never connect: say what to use instead of retrying forever
  stats.error = missing;
  setState('unsupported');
  showUnsupported($('message'), missing);
  $('connect').disabled = true;
} else {
  watchAccess();
}

// Ask first whether this page's link is good: without one it says so and starts nothing.
function watchAccess() {
  fetchConfig().then(async (loaded) => {
    config = loaded;
    // only a link that reads history lists people (a camera link is not asked: no 403s logged)
    readsHistory = await linkReadsHistory();
    showHistoryLink();
    if (readsHistory) listPeople();
    if (params.get('autostart') === '1') $('connect').click();
  }, (error) => {
    if (isRefusal(error.status)) refuse(error.status);
  });
}

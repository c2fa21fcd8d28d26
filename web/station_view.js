// A station on the monitor wall: the videos of its cameras side by side (the wall's own
// camera tiles, moved in), the station's fused count and analysis (which camera counts,
// which view each metric comes from), the sync error between its views, its exercise, its
// calibration and the 3-D skeleton (docs/protocol.md, "Stations").
//
// The wall feeds it the station's summary from GET /stations, and each `station_processed`
// and station `rep_completed` once (a monitor watching two cameras of a station hears each
// message twice: the wall drops the second).

import { accessToken, authHeaders, isRefusal } from './access.js';
import { AnalysisPanel } from './analysis_panel.js';
import { ExercisePicker } from './exercise_picker.js';
import { currentLanguage, format, t } from './i18n.js';
import { serverUrl } from './nodes.js';
import { Skeleton3D } from './skeleton3d.js';

const FRESH_MS = 2000; // a station_processed this recent tells more than the polled summary
const KEEP_POSE3D_MS = 1000;
const METRICS = ['reps', 'depth', 'hip_hinge', 'symmetry', 'knee_tracking'];

export class StationTile {
  // `onRefusal(status)`: the server refused this page's token.
  constructor(stationId, template, { onRefusal }) {
    this.stationId = stationId;
    this.onRefusal = onRefusal;
    this.element = template.content.cloneNode(true).querySelector('.station-tile');
    this.element.dataset.station = stationId;
    const q = (selector) => this.element.querySelector(selector);
    this.q = q;
    q('.station-name').textContent = stationId;
    this.views = q('.station-views');
    this.view3d = q('.view3d');
    this.panel = new AnalysisPanel(q('.analysis'));
    this.exercisePicker = new ExercisePicker(q('select.station-exercise'), {
      profileSelect: q('select.station-profile'),
      choose: (choice) => this.sendExercise(choice),
    });
    this.skeleton = new Skeleton3D(this.view3d);
    this.tiles = new Map(); // camera id -> the wall's camera Tile shown here
    this.summary = null;
    this.lastMessageAt = 0;
    this.lastAnalysis = null;
    this.stats = { stationId, messages: 0, reps: null, syncErrorMs: null, source: null,
      pose3d: false, joints3d: 0, calibrated: false, calibration: null, cameras: [],
      webgl: this.skeleton.available, lastRep: null };
    q('.calibrate-board').addEventListener('click', () => this.calibrate('board'));
    q('.calibrate-self').addEventListener('click', () => this.calibrate('self'));
    this.boardLink();
    q('.join-link').addEventListener('click', () => this.showJoinLink());
    this.showView3dMessage();
  }

  // A QR code of a camera link that joins this station (scanned by each phone).
  async showJoinLink() {
    const box = this.q('.join-qr');
    try {
      const response = await fetch(serverUrl(`/stations/${encodeURIComponent(this.stationId)}/join`),
        { headers: authHeaders(), cache: 'no-store' });
      if (isRefusal(response.status)) { this.onRefusal(response.status); return; }
      const body = await response.json();
      if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
      this.q('.join-qr-image').innerHTML = body.qr_svg; // made by our server from its URL
      this.q('.join-url').textContent = body.url;
      box.hidden = false;
      this.stats.joinUrl = body.url;
    } catch (error) {
      this.q('.join-url').textContent = String(error.message || error);
      box.hidden = false;
    }
  }

  // The board image, in a new tab (a link cannot send a header: it carries the token).
  boardLink() {
    const link = this.q('.board-link');
    link.href = accessToken() ? `/calibration/board.png?${new URLSearchParams({ token: accessToken() })}`
      : '/calibration/board.png';
  }

  // A camera tile of the wall joins this station's row of videos.
  adopt(tile) {
    if (this.tiles.get(tile.cameraId) === tile) return;
    this.tiles.set(tile.cameraId, tile);
    const label = document.createElement('span');
    label.className = 'station-view-label';
    tile.element.querySelector('footer').prepend(label);
    tile.element.classList.add('in-station');
    this.views.insertBefore(tile.element, this.view3d);
    this.layout();
  }

  // The tile left the station (or its camera left): the wall takes it back.
  release(cameraId) {
    const tile = this.tiles.get(cameraId);
    if (!tile) return null;
    this.tiles.delete(cameraId);
    const label = tile.element.querySelector('.station-view-label');
    if (label) label.remove();
    tile.element.classList.remove('in-station');
    this.layout();
    return tile;
  }

  layout() {
    this.views.style.setProperty('--views', String(Math.max(1, this.tiles.size) + 1));
  }

  // The station as GET /stations describes it.
  updateSummary(summary) {
    this.summary = summary;
    this.stats.calibrated = Boolean(summary.calibrated);
    this.stats.calibration = summary.calibration || null;
    this.stats.cameras = summary.streaming || [];
    const waiting = (summary.cameras || []).filter((id) => !(summary.streaming || []).includes(id));
    const waitingField = this.q('.station-waiting');
    waitingField.hidden = !waiting.length;
    waitingField.textContent = waiting.length ? format('station_waiting', { cameras: waiting.join(', ') }) : '';
    if (performance.now() - this.lastMessageAt > FRESH_MS) {
      this.showSync(summary.sync_error_ms, summary.sync_error_p95_ms);
      if (summary.reps !== null && summary.reps !== undefined && !this.lastAnalysis) {
        this.q('.station-reps').textContent = String(summary.reps);
        this.stats.reps = summary.reps;
      }
      this.exercisePicker.learn(summary.exercise || null, summary.exercise ? this.exercisePicker.running.profile : null);
    }
    this.showCalibration();
  }

  showSync(ms, p95Ms) {
    const field = this.q('.sync');
    field.textContent = typeof ms === 'number' ? `${Math.round(ms)} ms` : '–';
    field.title = typeof p95Ms === 'number' ? format('sync_hint', { p95: Math.round(p95Ms) }) : t('sync_hint_short');
    this.stats.syncErrorMs = typeof ms === 'number' ? ms : null;
  }

  showCalibration() {
    const tag = this.q('.calibration-tag');
    const calibrated = this.stats.calibrated;
    tag.dataset.i18n = calibrated ? 'calibrated' : 'not_calibrated';
    tag.textContent = t(tag.dataset.i18n);
    tag.classList.toggle('good', calibrated);
    const detail = this.stats.calibration;
    const error = detail && typeof detail.reprojection_error_px === 'number' ? detail.reprojection_error_px : null;
    tag.title = calibrated && error !== null ? format('calibration_detail', {
      method: detail.method || '', error: error.toFixed(1) }) : '';
    this.showView3dMessage();
  }

  showView3dMessage() {
    const message = this.q('.view3d-message');
    let key = null;
    if (!this.skeleton.available) key = 'no_webgl';
    else if (!this.stats.calibrated && !this.stats.pose3d) key = 'not_calibrated_3d';
    else if (!this.stats.pose3d) key = 'waiting_pose3d';
    message.hidden = !key;
    if (key) { message.dataset.i18n = key; message.textContent = t(key); }
  }

  // One `station_processed` (already deduplicated).
  onProcessed(message) {
    this.stats.messages += 1;
    this.lastMessageAt = performance.now();
    this.showSync(message.sync_error_ms, this.summary && this.summary.sync_error_p95_ms);
    const analysis = message.analysis || null;
    this.lastAnalysis = analysis;
    this.exercisePicker.learn(analysis && analysis.exercise ? analysis.exercise : null,
      analysis ? analysis.profile || null : null);
    this.panel.update(analysis);
    this.showSources(analysis);
    if (analysis) {
      this.stats.reps = analysis.reps ?? null;
      this.q('.station-reps').textContent = analysis.reps ?? '–';
      this.q('.station-reps').title = analysis.good_reps !== undefined
        ? `${analysis.good_reps} ${t('good_reps')} · ${analysis.bad_reps ?? 0} ${t('bad_reps')}` : '';
    } else {
      this.q('.station-reps').textContent = '–';
    }
    // a group with one view only has no pose3d: the figure stays a moment rather than flash
    const pose3d = Array.isArray(message.pose3d) ? message.pose3d : null;
    const now = performance.now();
    if (pose3d) this.pose3dAt = now;
    if (!pose3d && now - (this.pose3dAt ?? -Infinity) < KEEP_POSE3D_MS) return;
    this.stats.pose3d = Boolean(pose3d);
    if (pose3d && !this.stats.calibrated) { this.stats.calibrated = true; this.showCalibration(); }
    this.skeleton.update(pose3d);
    this.stats.joints3d = this.skeleton.joints;
    this.showView3dMessage();
  }

  // One station `rep_completed` (already deduplicated): its errors and the views that saw them.
  onRep(message) {
    const rep = message.rep || {};
    this.stats.lastRep = rep;
    const field = this.q('.station-last-rep');
    const parts = [];
    if (typeof rep.score === 'number') parts.push(`${t('score')} ${Math.round(rep.score)}`);
    const errors = (rep.errors || []).map((code) => {
      const lang = currentLanguage();
      const own = rep.messages && rep.messages[code];
      const name = own ? own[lang] || own.en : t(`err_${code}`).startsWith('err_') ? code : t(`err_${code}`);
      const seenBy = rep.error_views && rep.error_views[code];
      return seenBy && seenBy.length ? `${name} (${seenBy.join(', ')})` : name;
    });
    parts.push(errors.length ? errors.join(' · ') : t('good'));
    field.textContent = `${t('rep')} ${rep.station_index ?? ''}: ${parts.join(' — ')}`;
    field.classList.toggle('problem', errors.length > 0);
  }

  // Which camera counts and which view each metric comes from, on the station panel and on
  // each camera's footer.
  showSources(analysis) {
    const views = (analysis && analysis.views) || {};
    const sources = (analysis && analysis.metric_sources) || {};
    this.stats.source = analysis ? analysis.source || null : null;
    const list = this.q('.metric-sources');
    list.replaceChildren(...METRICS.filter((metric) => metric in sources).map((metric) => {
      const item = document.createElement('li');
      const name = document.createElement('span');
      name.textContent = t(`metric_${metric}`);
      const camera = document.createElement('b');
      const cameraId = sources[metric];
      camera.textContent = cameraId ? `${cameraId}${views[cameraId] ? ` (${t(`view_${views[cameraId]}`)})` : ''}` : '–';
      item.append(name, ' ', camera);
      return item;
    }));
    for (const [cameraId, tile] of this.tiles) {
      const label = tile.element.querySelector('.station-view-label');
      if (!label) continue;
      const view = views[cameraId];
      const counts = analysis && analysis.source === cameraId;
      label.textContent = [view ? t(`view_${view}`) : '', counts ? t('counts_here') : ''].filter(Boolean).join(' · ');
      label.classList.toggle('counting', Boolean(counts));
    }
  }

  async sendExercise({ exercise, profile }) {
    const body = { exercise };
    if (exercise && profile) body.profile = profile;
    const response = await this.post('exercise', body);
    return Boolean(response && response.ok);
  }

  async post(path, body) {
    const response = await fetch(serverUrl(`/stations/${encodeURIComponent(this.stationId)}/${path}`), {
      method: 'POST',
      headers: authHeaders({ 'Content-Type': 'application/json' }),
      body: JSON.stringify(body),
    }).catch(() => null);
    if (response && isRefusal(response.status)) this.onRefusal(response.status);
    return response;
  }

  // Calibrates from the board or from the person's own keypoints; the server answers when
  // it is done (up to about a minute).
  async calibrate(method) {
    const status = this.q('.calibration-status');
    const body = { method };
    if (method === 'self') {
      const height = Number(this.q('.body-height').value);
      if (!(height >= 1 && height <= 2.5)) {
        status.textContent = t('body_height_invalid');
        status.classList.add('problem');
        return;
      }
      body.body_height_m = height;
    }
    for (const button of this.element.querySelectorAll('.calibrate-board, .calibrate-self')) button.disabled = true;
    status.classList.remove('problem');
    status.textContent = t(method === 'board' ? 'calibrating_board' : 'calibrating_self');
    this.stats.calibrating = method;
    const response = await this.post('calibrate', body);
    const answer = response ? await response.json().catch(() => ({})) : {};
    this.stats.calibrating = null;
    for (const button of this.element.querySelectorAll('.calibrate-board, .calibrate-self')) button.disabled = false;
    if (response && response.ok && answer.calibrated) {
      this.stats.calibrated = true;
      this.stats.calibration = answer;
      const error = typeof answer.reprojection_error_px === 'number' ? answer.reprojection_error_px.toFixed(1) : '–';
      status.textContent = format('calibration_done', { error });
      this.showCalibration();
    } else {
      status.textContent = format('calibration_failed', {
        error: answer.error || (response ? `HTTP ${response.status}` : t('unreachable')) });
      status.classList.add('problem');
    }
    this.stats.calibrationAnswer = { status: response ? response.status : 0, ...answer };
  }

  // After a language switch.
  relabel() {
    this.exercisePicker.nameOptions();
    this.showCalibration();
    this.showSources(this.lastAnalysis);
    this.panel.update(this.lastAnalysis);
  }

  close() {
    this.skeleton.close();
    this.element.remove();
  }
}

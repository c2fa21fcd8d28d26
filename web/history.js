// The history page: the people KOMI has recorded, a person's sets newest first, progress
// charts per exercise by day or by week (uPlot, vendored in /static/vendor), CSV and JSON
// export, and the recommended next workout (docs/protocol.md, "People and history").
// Every request presents the page's token; when the server refuses it the page says why in
// plain words and stops. `?person=ID` chooses a person on load.

import { authHeaders, isRefusal, refusalFor, showRefusal } from './access.js';
import { loadCatalog } from './exercise_picker.js';
import { applyLanguage, currentLanguage, format, t, toggleLanguage } from './i18n.js';

const $ = (id) => document.getElementById(id);
const SETS_SHOWN = 500; // newest sets in the table; the JSON export has every one
const DAY_S = 86400;
const COLORS = { main: '#00d45a', best: '#7cc4ff', score: '#ffb020', rom: '#d38cff' };

const state = { people: [], person: null, sets: [], progress: {}, recommendation: null,
  recommendationFailed: false, period: 'day', catalog: new Map(), load: 0 };
const charts = []; // live uPlot instances, destroyed before each redraw
const debug = { access: null, people: 0, person: null, sets: 0, charts: 0, recommendation: null };
window.komiHistory = debug; // read by the browser tests

class Refused extends Error {
  constructor(status) { super(`HTTP ${status}`); this.status = status; }
}

async function getResponse(path) {
  const response = await fetch(path, { headers: authHeaders(), cache: 'no-store' });
  if (isRefusal(response.status)) throw new Refused(response.status);
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(body.error || `HTTP ${response.status}`);
  }
  return response;
}

async function getJson(path) { return (await getResponse(path)).json(); }

// The server refused this page's token (401, 403): nothing more to show, and a plain word why.
function refuse(status) {
  if (debug.access) return;
  debug.access = showRefusal($('access'), status, 'access_forbidden_history');
  $('content').hidden = true;
}

// A failure to load: a refusal stops the page, anything else is said where it happened.
function failed(error, element) {
  if (error instanceof Refused) { refuse(error.status); return; }
  element.textContent = format('load_failed', { error: error.message });
  element.hidden = false;
}

const personPath = (person) => `/people/${encodeURIComponent(person)}`;

// ---- words: exercises, errors, dates, numbers in the page's language

function localised(names, fallback) {
  if (!names || typeof names !== 'object') return fallback;
  return names[currentLanguage()] || names.en || fallback;
}

function exerciseName(id) {
  const entry = state.catalog.get(id);
  return entry ? localised(entry.name, id) : id;
}

// An error code's readable name: the catalog's own, when it has them, else the page's words.
function errorName(code, exercise) {
  const entry = state.catalog.get(exercise);
  const names = entry && entry.errors && entry.errors[code];
  if (names) return localised(names, code);
  const key = `err_${code}`;
  const known = t(key);
  return known === key ? code.replace(/_/g, ' ') : known;
}

function locale() { return currentLanguage() === 'ko' ? 'ko-KR' : 'en-GB'; }

function dateTime(seconds) {
  return new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeStyle: 'short' })
    .format(new Date(seconds * 1000));
}

function shortDate(seconds) {
  return new Intl.DateTimeFormat(locale(), { month: 'short', day: 'numeric' })
    .format(new Date(seconds * 1000));
}

const setsCount = (n) => format('sets_count', { n });
const number = (value, digits = 0) => (value === null || value === undefined || Number.isNaN(value)
  ? '–' : Number(value).toFixed(digits));
const seconds = (value) => `${number(value, value >= 100 ? 0 : 1)} ${t('seconds_unit')}`;

function element(tag, { className, text, title, label } = {}, children = []) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  if (title) node.title = title;
  if (label) node.dataset.label = label;
  node.append(...children);
  return node;
}

// A table cell: its label (shown beside the value when the table is a list of cards on a
// phone) and its content in one span.
function cell(label, content, { className, title } = {}) {
  const value = element('span', { className: 'value' },
    typeof content === 'string' ? [content] : content);
  return element('td', { className, title, label }, [value]);
}

// ---- people

async function loadPeople() {
  try {
    const answer = await getJson('/people');
    state.people = Array.isArray(answer.people) ? answer.people : [];
    $('people-error').hidden = true;
  } catch (error) {
    failed(error, $('people-error'));
    return;
  }
  debug.people = state.people.length;
  renderPeople();
}

function renderPeople() {
  const list = $('people-list');
  list.replaceChildren(...state.people.map((person) => {
    const meta = [setsCount(person.sets ?? 0)];
    if (person.last_seen) meta.push(format('last_seen', { when: shortDate(person.last_seen) }));
    const button = element('button', { className: 'person-button' }, [
      element('strong', { text: person.name || person.id }),
      element('small', { text: meta.join(' · ') }),
    ]);
    button.type = 'button';
    button.dataset.person = person.id;
    if (person.id === state.person) button.setAttribute('aria-current', 'true');
    button.addEventListener('click', () => choosePerson(person.id));
    return element('li', {}, [button]);
  }));
  $('no-people').hidden = state.people.length > 0;
}

// ---- one person

async function choosePerson(person) {
  state.person = person;
  debug.person = person;
  const url = new URL(location.href);
  url.searchParams.set('person', person);
  history.replaceState(history.state, '', `${url.pathname}${url.search}${url.hash}`);
  renderPeople();
  $('choose').hidden = true;
  $('person-view').hidden = false;
  $('person-error').hidden = true;
  const known = state.people.find((p) => p.id === person);
  $('person-name').textContent = (known && known.name) || person;
  $('csv-link').href = `${personPath(person)}/sets.csv`;
  $('json-link').href = `${personPath(person)}/sets`;
  document.title = `${t('history_title')}: ${person}`;
  const load = ++state.load; // a newer choice wins over answers still on their way
  state.sets = []; state.progress = {}; state.recommendation = null; state.recommendationFailed = false;
  renderAll();
  const [sets, progress] = await Promise.allSettled([
    getJson(`${personPath(person)}/sets?limit=${SETS_SHOWN}`),
    getJson(`${personPath(person)}/progress`),
  ]);
  if (load !== state.load) return;
  for (const result of [sets, progress]) {
    if (result.status === 'rejected') failed(result.reason, $('person-error'));
  }
  if (sets.status === 'fulfilled') state.sets = sets.value.sets || [];
  if (progress.status === 'fulfilled') state.progress = progress.value.exercises || {};
  renderSets();
  renderCharts();
  loadRecommendation(person, load);
}

async function loadRecommendation(person, load) {
  try {
    const answer = await getJson(`${personPath(person)}/recommendation`);
    if (load !== state.load) return;
    state.recommendation = answer;
  } catch (error) {
    if (load !== state.load) return;
    if (error instanceof Refused) { refuse(error.status); return; }
    console.warn('recommendation:', error.message);
    state.recommendationFailed = true; // not there yet, or it failed: a plain message
  }
  renderRecommendation();
}

function renderAll() {
  renderSets();
  renderCharts();
  renderRecommendation();
}

// ---- the recommendation

function renderRecommendation() {
  const list = $('recommendation');
  const message = $('recommendation-message');
  const answer = state.recommendation;
  const items = answer && Array.isArray(answer.items) ? answer.items : [];
  list.replaceChildren(...items.map((item) => {
    const plan = item.hold_s !== undefined && item.hold_s !== null
      ? format('plan_hold', { sets: item.sets ?? 1, hold: item.hold_s })
      : format('plan_reps', { sets: item.sets ?? 1, reps: item.reps ?? '–' });
    const head = element('div', { className: 'plan-head' }, [
      element('strong', { text: exerciseName(item.exercise) }),
      element('span', { className: 'plan-dose', text: plan }),
    ]);
    if (item.profile) head.append(element('span', { className: 'tag', text: t(item.profile) }));
    return element('li', {}, [head, element('p', { text: localised(item.reason, '') })]);
  }));
  let key = null;
  if (state.recommendationFailed) key = 'recommendation_unavailable';
  else if (answer && !items.length) key = 'recommendation_empty';
  message.hidden = key === null;
  if (key) { message.dataset.i18n = key; message.textContent = t(key); }
  debug.recommendation = state.recommendationFailed ? 'unavailable' : answer ? items.length : null;
}

// ---- the sets table

function setRow(set) {
  const kind = set.kind || 'reps';
  const running = set.ended_at === null || set.ended_at === undefined;
  const when = [element('span', { text: dateTime(set.started_at) })];
  if (running) when.push(' ', element('span', { className: 'tag running', text: t('running') }));
  const exercise = [element('span', { text: exerciseName(set.exercise) })];
  if (set.profile) exercise.push(' ', element('small', { className: 'muted', text: t(set.profile) }));
  const reps = set.reps ?? 0;
  const good = set.good_reps ?? 0;
  const isHold = kind === 'hold';
  let holdOrRange = '–';
  let holdTitle;
  if (isHold) {
    holdOrRange = seconds(set.hold_seconds);
    holdTitle = format('of_total', { total: number(set.hold_total_seconds, 1) });
  } else if (set.best_rom_deg !== null && set.best_rom_deg !== undefined) {
    holdOrRange = `${number(set.best_rom_deg)}°`;
  }
  const errors = Object.entries(set.errors || {}).sort((a, b) => b[1] - a[1]).slice(0, 3)
    .map(([code, count]) => `${errorName(code, set.exercise)} ×${count}`).join(', ');
  const row = element('tr', { className: running ? 'running' : '' }, [
    cell(t('when'), when, { className: 'when', title: running ? undefined : set.end_reason }),
    cell(t('exercise'), exercise, { className: 'exercise' }),
    cell(t('reps'), isHold ? '–' : String(reps), { className: 'number reps' }),
    cell(`${t('good_reps')} · ${t('bad_reps')}`, isHold ? '–' : `${good} · ${reps - good}`,
      { className: 'number' }),
    cell(t('half_reps'), String(set.half_reps ?? 0), { className: 'number' }),
    cell(t('mean_score'), number(set.mean_score), { className: 'number' }),
    cell(t('hold_rom'), holdOrRange, { className: 'number', title: holdTitle }),
    cell(t('errors'), errors || '–', { className: 'errors' }),
  ]);
  row.dataset.set = set.id;
  return row;
}

function renderSets() {
  const body = $('sets').tBodies[0];
  body.replaceChildren(...state.sets.map(setRow));
  $('no-sets').hidden = state.sets.length > 0 || !state.person;
  $('sets').hidden = state.sets.length === 0;
  debug.sets = state.sets.length;
}

// ---- progress charts

function periodStart(secondsSinceEpoch, period) {
  const day = new Date(secondsSinceEpoch * 1000);
  day.setHours(0, 0, 0, 0);
  if (period === 'week') day.setDate(day.getDate() - ((day.getDay() + 6) % 7)); // Monday
  return day.getTime() / 1000;
}

const mean = (values) => (values.length ? values.reduce((a, b) => a + b, 0) / values.length : null);
const max = (values) => (values.length ? Math.max(...values) : null);
const present = (values) => values.filter((v) => typeof v === 'number' && !Number.isNaN(v));

// One point per day (or week): what a set gave on average, the best set, the mean score
// (weighted by reps) and the best range of motion.
function aggregate(points, period) {
  const groups = new Map();
  for (const point of points) {
    if (typeof point.started_at !== 'number') continue;
    const key = periodStart(point.started_at, period);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(point);
  }
  const keys = [...groups.keys()].sort((a, b) => a - b);
  return keys.map((key) => {
    const sets = groups.get(key);
    const scored = sets.filter((s) => typeof s.mean_score === 'number' && s.reps > 0);
    const weight = scored.reduce((sum, s) => sum + s.reps, 0);
    return {
      at: key,
      sets: sets.length,
      reps: mean(present(sets.map((s) => s.reps))),
      bestReps: max(present(sets.map((s) => s.reps))),
      hold: mean(present(sets.map((s) => s.hold_seconds))),
      bestHold: max(present(sets.map((s) => s.hold_seconds))),
      rom: max(present(sets.map((s) => s.best_rom_deg))),
      score: weight ? scored.reduce((sum, s) => sum + s.mean_score * s.reps, 0) / weight : null,
    };
  });
}

function dateNames() {
  if (currentLanguage() !== 'ko') return undefined;
  const months = Array.from({ length: 12 }, (_, i) => `${i + 1}월`);
  const days = ['일요일', '월요일', '화요일', '수요일', '목요일', '금요일', '토요일'];
  return { MMMM: months, MMM: months, WWWW: days, WWW: days.map((d) => d[0]) };
}

// What a chart of one exercise draws, by the exercise's kind.
function chartSeries(kind, buckets) {
  const line = (label, color, values, extra = {}) => ({
    series: { label, stroke: color, width: 2, spanGaps: true,
      points: { show: true, size: 7, fill: color, stroke: color }, ...extra },
    values,
  });
  const score = line(t('score_axis'), COLORS.score, buckets.map((b) => b.score), { scale: 'score' });
  const rom = line(t('rom'), COLORS.rom, buckets.map((b) => b.rom), { scale: 'deg' });
  if (kind === 'hold') {
    return { unit: t('hold_time'), lines: [
      line(t('hold_time'), COLORS.main, buckets.map((b) => b.hold)),
      line(t('best_hold'), COLORS.best, buckets.map((b) => b.bestHold), { dash: [6, 4] }),
      score,
    ] };
  }
  if (kind === 'range') {
    return { unit: t('rom'), lines: [
      line(t('rom'), COLORS.main, buckets.map((b) => b.rom)),
      score,
    ] };
  }
  const lines = [
    line(t('reps_per_set'), COLORS.main, buckets.map((b) => b.reps)),
    line(t('best_set'), COLORS.best, buckets.map((b) => b.bestReps), { dash: [6, 4] }),
    score,
  ];
  if (buckets.some((b) => b.rom !== null)) lines.push({ ...rom, series: { ...rom.series, show: false } });
  return { unit: t('reps_per_set'), lines };
}

function drawChart(container, kind, buckets, period) {
  // a line with no value at all (a plank has no score) is left out, and its axis with it
  const lines = chartSeries(kind, buckets).lines.filter((l) => l.values.some((v) => v !== null));
  const scored = lines.some((l) => l.series.scale === 'score');
  const pad = (period === 'week' ? 7 : 1) * DAY_S * 0.6;
  const axis = { stroke: '#9aa4b1', grid: { stroke: '#2a3039', width: 1 },
    ticks: { stroke: '#2a3039', width: 1 }, font: '12px system-ui, sans-serif' };
  const upTo = (u, low, high) => [0, high > 0 ? high * 1.15 : 1];
  const options = {
    width: Math.max(container.clientWidth, 240),
    height: 220,
    cursor: { drag: { x: false, y: false } }, // no zooming by accident on a phone
    scales: {
      // from the data itself: uPlot widens a single time point to a thousand days
      x: { time: true, range: () => [buckets[0].at - pad, buckets[buckets.length - 1].at + pad] },
      y: { range: upTo },
      score: { range: [0, 100] },
      deg: { range: [0, 180] },
    },
    series: [
      { label: t('when'), value: (u, v) => (v === null ? '–' : shortDate(v)) },
      ...lines.map((l) => ({ ...l.series,
        value: (u, v) => (v === null || v === undefined ? '–' : number(v, Number.isInteger(v) ? 0 : 1)) })),
    ],
    axes: [
      { ...axis, incrs: [1, 2, 7, 14, 28, 91, 182, 364].map((days) => days * DAY_S)
        .filter((step) => period !== 'week' || step >= 7 * DAY_S) }, // whole days or weeks
      { ...axis },
      ...(scored ? [{ ...axis, scale: 'score', side: 1, grid: { show: false } }] : []),
    ],
    legend: { live: true },
  };
  const names = dateNames();
  if (names) options.fmtDate = (template) => uPlot.fmtDate(template, names);
  const data = [buckets.map((b) => b.at), ...lines.map((l) => l.values)];
  const chart = new uPlot(options, data, container); // eslint-disable-line no-undef
  charts.push(chart);
  return chart;
}

function renderCharts() {
  while (charts.length) charts.pop().destroy();
  const box = $('charts');
  box.replaceChildren();
  const exercises = Object.entries(state.progress).filter(([, points]) => points.length);
  $('no-progress').hidden = exercises.length > 0 || !state.person;
  debug.charts = 0;
  if (typeof uPlot === 'undefined') return; // the vendored script did not load: table only
  for (const [exercise, points] of exercises) {
    const kind = points[points.length - 1].kind
      || (state.catalog.get(exercise) || {}).kind || 'reps';
    const buckets = aggregate(points, state.period);
    const plot = element('div', { className: 'chart' });
    const card = element('figure', { className: 'chart-card' }, [
      element('figcaption', {}, [
        element('strong', { text: exerciseName(exercise) }),
        element('small', { className: 'muted', text: setsCount(points.length) }),
      ]),
      plot,
    ]);
    card.dataset.exercise = exercise;
    box.append(card);
    drawChart(plot, kind, buckets, state.period);
    debug.charts += 1;
  }
}

new ResizeObserver(() => {
  for (const chart of charts) {
    const width = chart.root.parentElement.clientWidth;
    if (width && Math.abs(width - chart.width) > 2) chart.setSize({ width, height: chart.height });
  }
}).observe($('charts'));

// ---- export: a plain link cannot carry the Authorization header, so fetch and save

async function download(link, filename) {
  try {
    const blob = await (await getResponse(link.getAttribute('href'))).blob();
    const url = URL.createObjectURL(blob);
    const save = element('a');
    save.href = url;
    save.download = filename;
    document.body.append(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (error) {
    failed(error, $('person-error'));
  }
}

$('csv-link').addEventListener('click', (event) => {
  event.preventDefault();
  download(event.currentTarget, `${state.person}-sets.csv`);
});
$('json-link').addEventListener('click', (event) => {
  event.preventDefault();
  download(event.currentTarget, `${state.person}-sets.json`);
});

// ---- switches

for (const button of document.querySelectorAll('[data-period]')) {
  button.addEventListener('click', () => {
    state.period = button.dataset.period;
    for (const other of document.querySelectorAll('[data-period]')) {
      other.setAttribute('aria-pressed', String(other === button));
    }
    renderCharts();
  });
}

$('language').addEventListener('click', () => {
  toggleLanguage();
  if (state.person) document.title = `${t('history_title')}: ${state.person}`;
  renderPeople();
  renderAll();
});

async function start() {
  applyLanguage();
  // Ask first whether this page's link is good: without one it says so and loads nothing.
  const refusal = await refusalFor('/whoami');
  if (refusal) { refuse(refusal); return; }
  // A camera link reads no history; a person's own link reads that person's only.
  let me;
  try { me = await getJson('/whoami'); } catch (error) { failed(error, $('people-error')); return; }
  if (me.role === 'camera') { refuse(403); return; }
  const catalog = await loadCatalog();
  state.catalog = new Map(catalog.map((entry) => [entry.id, entry]));
  if (me.role === 'person') {
    document.querySelector('nav.people').hidden = true;
    state.people = [{ id: me.person, name: me.person }];
    debug.people = 1;
    choosePerson(me.person);
    return;
  }
  await loadPeople();
  const wanted = new URLSearchParams(location.search).get('person');
  if (wanted && /^(?!-)(?!\.\.?$)[A-Za-z0-9_.-]{1,64}$/.test(wanted)) choosePerson(wanted);
}

start();

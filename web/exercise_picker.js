// The exercise a camera runs, shown in a <select> that also chooses it. The server says what
// runs: `exercise_set` whenever it changes (from this page, another page, the camera's channel
// or REST) and `analysis.exercise` on every `frame_processed` while one runs (no `analysis`
// when none), so a page that joins late shows it too. Both come on the camera's `komi`
// channel in order, so the newest message always tells the truth, except for the moment
// between this page choosing and the server's `exercise_set` answer.

import { authHeaders } from './access.js';
import { currentLanguage } from './i18n.js';
import { fetchFromNodes } from './nodes.js';

const CHOICE_TIMEOUT_MS = 5000; // a choice the server never confirmed stops hiding its state

let catalog = null;
// `/exercises`, fetched once per page: [{id, name: {en, ko}, kind, views}].
export function loadCatalog() {
  if (!catalog) {
    catalog = fetchFromNodes('/exercises', { headers: authHeaders() })
      .then((r) => (r.ok ? r.json() : {})).then((d) => d.exercises || [])
      .catch(() => { catalog = null; return []; }); // unreachable or refused: pose only, ask again later
  }
  return catalog;
}

export class ExercisePicker {
  // `choose({exercise, profile})` sends a person's choice to the server (`profile` null when
  // unknown) and returns false (or rejects) when it could not.
  constructor(select, { profileSelect = null, choose }) {
    this.select = select;
    this.profileSelect = profileSelect;
    this.sendChoice = choose;
    this.running = { exercise: null, profile: null, known: false }; // as the server last said
    this.choice = null; // { exercise, until }: chosen here, not confirmed yet
    this.ready = this.fill();
    select.addEventListener('change', () => this.choose(this.select.value || null));
    if (profileSelect) profileSelect.addEventListener('change', () => this.choose(this.select.value || null));
  }

  async fill() {
    for (const exercise of await loadCatalog()) {
      let option = this.option(exercise.id); // already there when the server said it first
      if (!option) {
        option = document.createElement('option');
        option.value = exercise.id;
        this.select.append(option);
      }
      option.dataset.names = JSON.stringify(exercise.name);
    }
    this.nameOptions();
    if (this.running.known) this.show();
  }

  // Option names in the page's language (after a language switch too).
  nameOptions() {
    const lang = currentLanguage();
    for (const option of this.select.options) {
      if (!option.dataset.names) continue;
      const names = JSON.parse(option.dataset.names);
      option.textContent = names[lang] || names.en;
    }
  }

  option(id) {
    return [...this.select.options].find((option) => option.value === id) || null;
  }

  get value() { return this.select.value || null; }

  set value(exercise) { this.select.value = exercise || ''; }

  get profile() { return this.profileSelect ? this.profileSelect.value : this.running.profile; }

  // A person chose here: send it, and keep showing it until the server confirms.
  choose(exercise) {
    this.value = exercise;
    this.choice = { exercise, until: performance.now() + CHOICE_TIMEOUT_MS };
    Promise.resolve(this.sendChoice({ exercise, profile: this.profile })).then((sent) => {
      if (sent === false) this.forgetChoice();
    }, () => this.forgetChoice());
  }

  // The choice did not reach the server (refused, or no connection): show what runs.
  forgetChoice() {
    this.choice = null;
    if (this.running.known) this.show();
  }

  // The connection is gone: what runs is unknown until the server says again.
  forgetRunning() {
    this.running = { exercise: null, profile: null, known: false };
  }

  // Every message on the camera's channel passes here.
  onMessage(message) {
    if (message.type === 'exercise_set') {
      this.choice = null;
      this.learn(message.exercise || null, message.profile || null);
    } else if (message.type === 'frame_processed') {
      const analysis = message.analysis;
      const exercise = analysis && typeof analysis.exercise === 'string' ? analysis.exercise : null;
      this.learn(exercise, exercise ? analysis.profile || null : null);
    }
  }

  learn(exercise, profile) {
    this.running = { exercise, profile, known: true };
    if (this.choice && performance.now() < this.choice.until) return; // in flight
    this.choice = null;
    this.show();
  }

  show() {
    const { exercise, profile } = this.running;
    if (exercise && !this.option(exercise)) { // not in the catalog we have: show its id
      const option = document.createElement('option');
      option.value = exercise;
      option.textContent = exercise;
      this.select.append(option);
    }
    if (this.select.value !== (exercise || '')) this.value = exercise;
    if (this.profileSelect && profile && this.profileSelect.value !== profile) {
      this.profileSelect.value = profile;
    }
  }
}

// Shows whatever `analysis` fields the server sends; hidden when there are none, so the
// exercise analysis lands without touching the pages.

import { currentLanguage, t } from './i18n.js';

function feedbackText(feedback) {
  if (!Array.isArray(feedback) || !feedback.length) return '';
  const lang = currentLanguage();
  return feedback.map((item) => (typeof item === 'string' ? item :
    (item.message && (item.message[lang] || item.message.en)) || item.code || '')).join(' · ');
}

export class AnalysisPanel {
  constructor(element) {
    this.element = element;
    this.lastCue = '';
    this.cueUntil = 0;
    this.speak = false;
    this.element.hidden = true;
  }

  update(analysis) {
    if (!analysis || typeof analysis !== 'object') { this.element.hidden = true; return; }
    this.element.hidden = false;
    const set = (name, value) => {
      const field = this.element.querySelector(`[data-field="${name}"]`);
      if (field) field.textContent = value === undefined || value === null ? '–' : value;
    };
    const name = analysis.exercise_name && typeof analysis.exercise_name === 'object'
      ? (analysis.exercise_name[currentLanguage()] || analysis.exercise_name.en)
      : analysis.exercise;
    set('exercise', name);
    let reps = analysis.reps;
    if (analysis.good_reps !== undefined) {
      reps = `${analysis.reps ?? 0}`;
      const detail = `${analysis.good_reps} ${t('good_reps')} · ${analysis.bad_reps ?? 0} ${t('bad_reps')}`;
      const field = this.element.querySelector('[data-field="reps"]');
      if (field) field.title = detail;
    }
    if (analysis.hold_seconds !== undefined) reps = `${Number(analysis.hold_seconds).toFixed(1)} s`;
    set('reps', reps);
    set('phase', analysis.phase);
    const last = analysis.last_rep;
    set('score', last && last.score !== undefined ? Math.round(last.score) : null);
    // A cue stays readable for a moment even when the next frame has none.
    const cue = feedbackText(analysis.feedback);
    const now = performance.now();
    if (cue) {
      if (cue !== this.lastCue && this.speak && 'speechSynthesis' in window) {
        const utterance = new SpeechSynthesisUtterance(cue);
        utterance.lang = currentLanguage() === 'ko' ? 'ko-KR' : 'en-US';
        window.speechSynthesis.speak(utterance);
      }
      this.lastCue = cue;
      this.cueUntil = now + 2500;
      set('feedback', cue);
    } else if (now > this.cueUntil) {
      this.lastCue = '';
      set('feedback', '');
    }
  }
}

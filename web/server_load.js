// How much of a camera's video the server analyses, and a plain word when it cannot keep up.
import { t } from './i18n.js';

// `analysedFps` null: not connected, shown as a dash.
export function showAnalysedRate(element, analysedFps, timing) {
  const received = timing && typeof timing.received_fps === 'number' ? timing.received_fps : null;
  const busy = analysedFps !== null && Boolean(timing && timing.overloaded);
  if (analysedFps === null) element.textContent = '–';
  else if (received === null) element.textContent = `${analysedFps.toFixed(1)} fps`;
  else element.textContent = `${analysedFps.toFixed(1)} / ${received.toFixed(0)} fps${busy ? ` · ${t('busy')}` : ''}`;
  element.classList.toggle('busy', busy);
  element.title = busy ? t('busy_hint') : '';
}

// How much of a camera's video the server analyses, and a plain word when it cannot keep up.
import { t } from './i18n.js';

export function showAnalysedRate(element, analysedFps, timing) {
  const received = timing && typeof timing.received_fps === 'number' ? timing.received_fps : null;
  const busy = Boolean(timing && timing.overloaded);
  element.textContent = received === null ? `${analysedFps.toFixed(1)} fps`
    : `${analysedFps.toFixed(1)} / ${received.toFixed(0)} fps${busy ? ` · ${t('busy')}` : ''}`;
  element.classList.toggle('busy', busy);
  element.title = busy ? t('busy_hint') : '';
}

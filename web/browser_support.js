// What a live page needs from the browser and some browsers lack: WebRTC
// (RTCPeerConnection) on the camera and monitor pages, and a camera API (getUserMedia) on
// the camera page. WebKitGTK builds without WebRTC, old in-app browsers and locked-down
// ones have neither: a page that tried anyway would say "reconnecting" forever, so it says
// instead what to open the link in.

import { t } from './i18n.js';

// The i18n key of what the camera page cannot do here, or null when it can stream. A page
// not on HTTPS (a phone on http://) has no getUserMedia either: start() says that one.
export function missingForCamera() {
  if (typeof window.RTCPeerConnection !== 'function') return 'no_webrtc_camera';
  const devices = navigator.mediaDevices;
  if (window.isSecureContext && !(devices && typeof devices.getUserMedia === 'function')) {
    return 'no_camera_api';
  }
  return null;
}

// The i18n key of what the monitor page cannot do here, or null when it can play video.
export function missingForMonitor() {
  return typeof window.RTCPeerConnection !== 'function' ? 'no_webrtc_monitor' : null;
}

// Says it in `element` (in the page's language, and again when the language changes).
export function showUnsupported(element, key) {
  element.dataset.i18n = key;
  element.textContent = t(key);
  element.hidden = false;
}

// The camera page as an app a phone installs (camera.webmanifest): registers the service
// worker (camera-sw.js: the offline shell), and carries the camera link's token into the
// installed app.
//
// A link's token lives in sessionStorage (access.js): one tab only. An installed app opens
// its start_url (/camera?app=1) in a fresh context, which would have no token, and the page
// would say "this page needs a link" every time. So when the person installs the app from
// a page holding a token (the `appinstalled` event), or opens a camera link inside the
// installed app, the token is also kept in localStorage, and the installed app hands it to
// access.js on start. The app is recognised by its start_url's `app=1` (what the home
// screen opens) or its display mode; a plain tab keeps using its own link only. A token
// the server no longer takes is refused as in a tab (access.js says so); a new link
// replaces it.
//
// This module imports nothing and is included before camera.js, so it runs before
// access.js reads the token (module scripts run in document order).

const SESSION_KEY = 'komi.token'; // access.js's
const APP_TOKEN_KEY = 'komi.app_token';

function installedApp() {
  return new URL(location.href).searchParams.get('app') === '1' ||
    window.matchMedia('(display-mode: standalone)').matches ||
    window.matchMedia('(display-mode: fullscreen)').matches ||
    navigator.standalone === true; // iOS Safari's home screen apps
}

function linkToken() {
  const token = new URL(location.href).searchParams.get('token');
  return token ? token.trim() || null : null;
}

function keepForTheApp(token) {
  try { localStorage.setItem(APP_TOKEN_KEY, token); } catch (error) { /* private mode */ }
}

function startWithTheAppToken() {
  if (!installedApp()) return;
  const link = linkToken();
  if (link) { keepForTheApp(link); return; } // a new link opened in the app wins
  try {
    if (sessionStorage.getItem(SESSION_KEY)) return;
    const kept = localStorage.getItem(APP_TOKEN_KEY);
    if (kept) sessionStorage.setItem(SESSION_KEY, kept);
  } catch (error) { /* no storage: the page asks for a link as a tab does */ }
}
startWithTheAppToken();

window.addEventListener('appinstalled', () => {
  let token = linkToken();
  try { token = token || sessionStorage.getItem(SESSION_KEY); } catch (error) { /* none */ }
  if (token) keepForTheApp(token);
});

// The service worker needs a secure context (HTTPS, or localhost): over plain http on a
// LAN address the page still works, only not offline or as an installed app.
if ('serviceWorker' in navigator && window.isSecureContext) {
  navigator.serviceWorker.register('/camera-sw.js', { scope: '/camera' }).catch((error) => {
    console.warn('the offline shell is not available:', error);
  });
}

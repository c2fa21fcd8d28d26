// The installed camera app's service worker (served at /camera-sw.js, scope /camera).
//
// Pages and data always come from the server (network first): the camera page is live
// video and a token check, nothing to show stale. What it keeps is the offline shell:
// when a navigation to the camera page cannot reach the server at all (no network, the
// server stopped), the person gets offline.html, in Korean and English, which says so and
// comes back to the camera page by itself once the server answers again. An answer from
// the server, a 401 for a missing token too, is shown as it is.

const SHELL_CACHE = 'komi-camera-shell-v1';
const OFFLINE_PAGE = '/static/offline.html';
const SHELL = [
  OFFLINE_PAGE,
  '/static/offline.js',
  '/static/style.css',
  '/static/camera_layout.css',
  '/static/icons/camera-192.png',
];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(SHELL_CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name !== SHELL_CACHE) await caches.delete(name); // an older version's shell
    }
    await self.clients.claim(); // the page that installed it is served from now on
  })());
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === 'navigate' && url.pathname === '/camera') {
    // (the scope also covers /cameras, an API a person may open: left alone)
    event.respondWith(fetch(request).catch(async () => (
      (await caches.match(OFFLINE_PAGE)) || Response.error()
    )));
  } else if (SHELL.includes(url.pathname)) {
    // the shell's own files: fresh when the server answers (and kept fresh), the kept
    // copy when it does not
    event.respondWith((async () => {
      try {
        const response = await fetch(request);
        if (response.ok) {
          const copy = response.clone();
          event.waitUntil(caches.open(SHELL_CACHE).then((cache) => cache.put(url.pathname, copy)));
        }
        return response;
      } catch (error) {
        return (await caches.match(url.pathname)) || Response.error();
      }
    })());
  }
});

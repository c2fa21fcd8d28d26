// The offline shell (offline.html, served by camera-sw.js when the camera page cannot reach
// the server): asks /healthz now and then, and goes back to the page the person opened as
// soon as the server answers. The address bar still shows that page, so reloading it is
// all "going back" takes.

const RETRY_MS = 3000; // polling the server while it is away, not synchronisation

async function serverAnswers() {
  try {
    const response = await fetch('/healthz', { cache: 'no-store' });
    return response.ok;
  } catch (error) {
    return false;
  }
}

async function tryAgain() {
  const lastTry = document.getElementById('last-try');
  if (await serverAnswers()) {
    location.reload();
    return;
  }
  lastTry.textContent = new Date().toLocaleTimeString();
}

document.getElementById('retry').addEventListener('click', tryAgain);
setInterval(tryAgain, RETRY_MS);
window.addEventListener('online', tryAgain);

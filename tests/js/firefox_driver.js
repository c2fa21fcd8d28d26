// Drives Debian's firefox-esr for the Python tests (tests/firefox.py) with puppeteer-core
// over WebDriver BiDi: nothing is downloaded, the browser is the installed one.
//   node firefox_driver.js '{"executablePath": "/usr/bin/firefox-esr", "prefs": {...}}'
// then one JSON request a line on stdin, {"id", "op", ...}, and one JSON answer a line on
// stdout, {"id", "value"} or {"id", "error"}. A page's console errors go to stderr.
// Ops: newPage {viewport} -> page id; goto {page, url}; evaluate {page, expression, arg};
// waitFor {page, expression, arg, timeout} (ms); screenshot {page} -> base64 PNG;
// closePage {page}; close (the browser, then this process exits).

'use strict';

const readline = require('node:readline');
const puppeteer = require('puppeteer-core');

const options = JSON.parse(process.argv[2] || '{}');
const pages = new Map();
let nextPage = 1;

// Playwright's way, which the Python helpers are written for: an expression, or a
// function's source called with `arg`.
function script(expression, arg) {
  return `(() => { const value = (${expression});
    return typeof value === 'function' ? value(${JSON.stringify(arg === undefined ? null : arg)}) : value; })()`;
}

function page(request) {
  const found = pages.get(request.page);
  if (!found) throw new Error(`no page ${request.page}`);
  return found;
}

async function handle(browser, request) {
  switch (request.op) {
    case 'newPage': {
      const created = await browser.newPage();
      if (request.viewport) await created.setViewport(request.viewport);
      const id = nextPage++;
      created.on('console', (message) => {
        if (message.type() === 'error') process.stderr.write(`firefox page ${id}: ${message.text()}\n`);
      });
      created.on('pageerror', (error) => process.stderr.write(`firefox page ${id}: ${error}\n`));
      pages.set(id, created);
      return id;
    }
    case 'goto':
      await page(request).goto(request.url, { waitUntil: 'load' });
      return null;
    case 'evaluate':
      return await page(request).evaluate(script(request.expression, request.arg));
    case 'waitFor':
      await page(request).waitForFunction(script(request.expression, request.arg), {
        timeout: request.timeout, polling: 100,
      });
      return null;
    case 'screenshot':
      return await page(request).screenshot({ encoding: 'base64' });
    case 'closePage':
      await page(request).close();
      pages.delete(request.page);
      return null;
    default:
      throw new Error(`unknown op ${request.op}`);
  }
}

async function main() {
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: options.executablePath || '/usr/bin/firefox-esr',
    headless: options.headless !== false,
    protocol: 'webDriverBiDi',
    acceptInsecureCerts: true,
    extraPrefsFirefox: options.prefs || {},
    env: { ...process.env, ...(options.env || {}) },
  });
  const version = await browser.version();
  process.stdout.write(`${JSON.stringify({ id: 0, value: version })}\n`);
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const request = JSON.parse(line);
    if (request.op === 'close') break;
    // each request runs on its own: a long waitFor on one page does not hold up another
    handle(browser, request).then(
      (value) => process.stdout.write(`${JSON.stringify({ id: request.id, value: value === undefined ? null : value })}\n`),
      (error) => process.stdout.write(`${JSON.stringify({ id: request.id, error: String(error && error.message || error) })}\n`),
    );
  }
  await browser.close();
  process.exit(0);
}

main().catch((error) => {
  process.stderr.write(`firefox driver: ${error && error.stack || error}\n`);
  process.exit(1);
});

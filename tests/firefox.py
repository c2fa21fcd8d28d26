"""Debian's firefox-esr, driven by puppeteer-core over WebDriver BiDi (tests/js/
firefox_driver.js, a node process this module talks JSON lines to).

It offers the few calls of Playwright's Browser, BrowserContext and Page that the browser
helpers in browser.py use (`new_context`, `new_page`, `on`, `goto`, `evaluate`,
`wait_for_function`, `screenshot`, `close`), so the same helpers open the camera and monitor
pages in Firefox and in Chromium."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

FIREFOX = "/usr/bin/firefox-esr"
DRIVER = Path(__file__).parent / "js" / "firefox_driver.js"

# Firefox as installed, ICE included (its host addresses hidden behind mDNS names); only
# what a test run needs: a fake camera without a permission prompt (a person grants it
# once), video that plays without a click, and no updates, telemetry or first-run pages.
FAKE_CAMERA_PREFS: dict[str, Any] = {
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "media.autoplay.default": 0,
    "media.autoplay.blocking_policy": 0,
    "app.update.enabled": False,
    "browser.shell.checkDefaultBrowser": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
}


class FirefoxError(AssertionError):
    """What the driver said went wrong (a timeout, a script error)."""


class Firefox:
    """One Firefox for a test module; pages open and close in it."""

    def __init__(self, process: asyncio.subprocess.Process, version: str) -> None:
        self._process = process
        self.version = version
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._reader = asyncio.ensure_future(self._read())
        self.contexts: list[FirefoxContext] = []

    @classmethod
    async def launch(
        cls,
        prefs: dict[str, Any] | None = None,
        headless: bool = True,
        env: dict[str, str] | None = None,
    ) -> Firefox:
        """Firefox with `prefs` (FAKE_CAMERA_PREFS unless given) and `env` added to this
        process's environment (a D-Bus session, a display)."""
        options = {
            "executablePath": FIREFOX,
            "prefs": FAKE_CAMERA_PREFS if prefs is None else prefs,
            "headless": headless,
            "env": env or {},
        }
        node_path = str(Path(__file__).parent / "js" / "node_modules")
        process = await asyncio.create_subprocess_exec(
            "node",
            str(DRIVER),
            json.dumps(options),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=sys.stderr.fileno(),
            env={**os.environ, "NODE_PATH": node_path},
            limit=64 * 1024 * 1024,  # a screenshot is one line
        )
        assert process.stdout is not None
        first = await asyncio.wait_for(process.stdout.readline(), 60)
        if not first:
            raise FirefoxError(f"the Firefox driver exited ({await process.wait()})")
        return cls(process, json.loads(first)["value"])

    async def _read(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        while line := await stdout.readline():
            answer = json.loads(line)
            waiter = self._waiting.pop(answer["id"], None)
            if waiter is None or waiter.done():
                continue
            if "error" in answer:
                waiter.set_exception(FirefoxError(answer["error"]))
            else:
                waiter.set_result(answer["value"])
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(FirefoxError("the Firefox driver exited"))

    async def call(self, op: str, **fields: Any) -> Any:
        request_id = next(self._ids)
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = waiter
        stdin = self._process.stdin
        assert stdin is not None
        stdin.write((json.dumps({"id": request_id, "op": op, **fields}) + "\n").encode())
        await stdin.drain()
        return await waiter

    async def new_context(self, viewport: dict[str, int] | None = None, **_: Any) -> Any:
        context = FirefoxContext(self, viewport)
        self.contexts.append(context)
        return context

    async def close(self) -> None:
        for context in list(self.contexts):
            await context.close()
        stdin = self._process.stdin
        assert stdin is not None
        stdin.write(b'{"op": "close"}\n')
        await stdin.drain()
        try:
            await asyncio.wait_for(self._process.wait(), 30)
        except TimeoutError:
            self._process.kill()
            await self._process.wait()
        await asyncio.gather(self._reader, return_exceptions=True)


class FirefoxContext:
    """Pages opened together and closed together (Playwright's BrowserContext)."""

    def __init__(self, firefox: Firefox, viewport: dict[str, int] | None) -> None:
        self._firefox = firefox
        self._viewport = viewport
        self.pages: list[FirefoxPage] = []

    async def new_page(self) -> FirefoxPage:
        page_id = await self._firefox.call("newPage", viewport=self._viewport)
        page = FirefoxPage(self._firefox, page_id)
        self.pages.append(page)
        return page

    async def close(self) -> None:
        for page in self.pages:
            await page.close()
        self.pages.clear()
        if self in self._firefox.contexts:
            self._firefox.contexts.remove(self)


class FirefoxPage:
    def __init__(self, firefox: Firefox, page_id: int) -> None:
        self._firefox = firefox
        self.page_id = page_id
        self._closed = False

    def on(self, event: str, handler: Callable[..., Any]) -> None:
        """Console errors go to the test's output by the driver itself."""

    async def goto(self, url: str) -> None:
        await self._firefox.call("goto", page=self.page_id, url=url)

    async def evaluate(self, expression: str, arg: Any = None) -> Any:
        return await self._firefox.call(
            "evaluate", page=self.page_id, expression=expression, arg=arg
        )

    async def wait_for_function(
        self, expression: str, arg: Any = None, timeout: float = 30000
    ) -> None:
        """Until `expression` (or the function, called with `arg`) is truthy; `timeout` in ms.
        On a timeout, the error names the expression."""
        try:
            await self._firefox.call(
                "waitFor", page=self.page_id, expression=expression, arg=arg, timeout=timeout
            )
        except FirefoxError as error:
            raise FirefoxError(f"{error}: waiting for {expression[:300]}") from None

    async def screenshot(self) -> bytes:
        return base64.b64decode(await self._firefox.call("screenshot", page=self.page_id))

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._firefox.call("closePage", page=self.page_id)

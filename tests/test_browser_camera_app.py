"""The camera page as an installable app (web/camera.webmanifest, web/camera-sw.js,
web/camera_app.js) in real headless Chromium: installable by Chromium's own check, an
offline shell that says the server is away and returns by itself, the screen kept awake
while streaming, and layouts for a phone held upright and on its side."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from auth import ADMIN_TOKEN
from browser import BROWSER_TESTS, CHROMIUM, chromium_args, open_camera, page_link

pytestmark = BROWSER_TESTS

UPRIGHT = {"width": 412, "height": 860}  # a phone's CSS pixels
ON_ITS_SIDE = {"width": 860, "height": 412}


@pytest.fixture
async def profile_context(tmp_path: Path, person_y4m: Path) -> AsyncIterator[Any]:
    """Chromium with a profile on disk, as a phone's browser has: Chromium installs no app
    from an incognito context (Playwright's new_context() is one: "in-incognito")."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=chromium_args(person_y4m),
            viewport=UPRIGHT,
        )
        try:
            yield context
        finally:
            await context.close()


async def test_server_serves_the_manifest_and_worker_without_a_token(server):
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/camera.webmanifest") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("application/manifest+json")
            manifest = await response.json(content_type=None)
        assert manifest["start_url"].startswith("/camera")
        assert {icon["sizes"] for icon in manifest["icons"]} == {"192x192", "512x512"}
        for icon in manifest["icons"]:
            async with http.get(f"{server.url}{icon['src']}") as response:
                assert response.status == 200 and response.content_type == "image/png"
        async with http.get(f"{server.url}/camera-sw.js") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/javascript")
        async with http.get(f"{server.url}/static/offline.html") as response:
            assert response.status == 200
        # the start_url without a token: the page itself (it asks for a link), not an error
        async with http.get(f"{server.url}/camera?app=1") as response:
            assert response.status == 401 and "KOMI Camera" in await response.text()


async def test_camera_page_installs_and_its_offline_shell_says_the_server_is_away(
    restartable_server, profile_context, artifacts_dir
):
    server = restartable_server
    context = profile_context
    page = await context.new_page()
    await page.goto(page_link(server.url, "/camera", ADMIN_TOKEN))
    # the worker claims the page that installed it (camera-sw.js, activate)
    await page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=20000)
    cdp = await context.new_cdp_session(page)
    installability = await cdp.send("Page.getInstallabilityErrors")
    assert installability["installabilityErrors"] == [], installability
    manifest = await cdp.send("Page.getAppManifest")
    assert manifest["errors"] == [], manifest["errors"]

    await server.stop()
    # what the installed app opens (its start_url) with the server away
    await page.goto(f"{server.url}/camera?app=1")
    korean = page.get_by_text("서버에 연결할 수 없습니다")
    english = page.get_by_text("The server cannot be reached")
    await korean.wait_for(state="visible", timeout=10000)
    assert await english.is_visible()
    await page.screenshot(path=os.path.join(artifacts_dir, "camera_app_offline.png"))

    await server.start()
    # the shell asks the server now and then, and opens the camera page once it answers
    await page.locator("#connect").wait_for(state="visible", timeout=20000)
    assert not await korean.is_visible()


async def test_installed_app_starts_with_the_link_it_was_installed_from(server, browser):
    """A link's token lives in one tab's sessionStorage; the installed app starts at its
    start_url (/camera?app=1) in a fresh one and must not ask for a link again, while a
    plain tab still needs its own link."""
    context = await browser.new_context(viewport=UPRIGHT)
    tab = await context.new_page()
    await tab.goto(page_link(server.url, "/camera", ADMIN_TOKEN))
    await tab.wait_for_function("navigator.serviceWorker.controller !== null", timeout=20000)
    # the event Chromium fires in the page an app is installed from (a headless browser
    # has no install prompt to click)
    await tab.evaluate("window.dispatchEvent(new Event('appinstalled'))")

    app = await context.new_page()  # a new top-level context: no sessionStorage
    await app.goto(f"{server.url}/camera?app=1&autostart=1&camera_id=installed_cam")
    await app.wait_for_function(
        "window.komiCamera && window.komiCamera.results >= 3", timeout=30000
    )
    assert not await app.locator("#message").is_visible()

    plain_tab = await context.new_page()
    await plain_tab.goto(f"{server.url}/camera")
    await plain_tab.locator("#message").wait_for(state="visible", timeout=10000)
    await context.close()


async def test_screen_stays_awake_while_streaming_only(server, browser):
    # the sentinels camera.js gets from the real Wake Lock API, kept where the test reads them
    record = """
        window.wakeLocks = [];
        if (navigator.wakeLock) {
          const request = navigator.wakeLock.request.bind(navigator.wakeLock);
          navigator.wakeLock.request = async (type) => {
            const sentinel = await request(type);
            window.wakeLocks.push(sentinel);
            return sentinel;
          };
        }"""
    context = await browser.new_context(viewport=UPRIGHT)
    await context.add_init_script(record)
    page = await context.new_page()
    try:
        await page.goto(
            page_link(server.url, "/camera", ADMIN_TOKEN, autostart="1", camera_id="awake_cam")
        )
        await page.wait_for_function(
            "window.komiCamera && window.komiCamera.results >= 5", timeout=30000
        )
        held = await page.evaluate("window.wakeLocks.map(s => [s.type, s.released])")
        assert held and held[-1] == ["screen", False], held
        await page.locator("#disconnect").click()
        await page.wait_for_function("window.wakeLocks.every(s => s.released)", timeout=10000)
    finally:
        await context.close()


async def test_layout_upright_stacks_and_on_its_side_puts_the_video_beside(
    server, browser, artifacts_dir
):
    context, page = await open_camera(browser, server.url, "layout_cam", viewport=UPRIGHT)
    try:
        stage = await page.locator(".stage").bounding_box()
        status = await page.locator(".status").bounding_box()
        assert stage["y"] + stage["height"] <= status["y"] + 1, (stage, status)
        await page.set_viewport_size(ON_ITS_SIDE)
        await page.wait_for_function(
            "() => { const s = document.querySelector('.stage').getBoundingClientRect(),"
            " t = document.querySelector('.status').getBoundingClientRect();"
            " return s.right <= t.left + 1; }",
            timeout=5000,
        )
        stage = await page.locator(".stage").bounding_box()
        status = await page.locator(".status").bounding_box()
        connect = await page.locator("#disconnect").bounding_box()
        # a phone on its side: the video is big, the figures and the button need no scroll
        assert stage["height"] > ON_ITS_SIDE["height"] * 0.6, stage
        assert status["y"] + status["height"] <= ON_ITS_SIDE["height"]
        assert connect["y"] + connect["height"] <= ON_ITS_SIDE["height"], connect
        await page.screenshot(path=os.path.join(artifacts_dir, "camera_on_its_side.png"))
    finally:
        await context.close()

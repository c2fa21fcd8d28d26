"""The camera and monitor pages in real headless Chromium (Playwright), real server."""

from __future__ import annotations

import logging
import os
import re
import ssl
from pathlib import Path

import aiohttp
import pytest
from browser import CHROMIUM, chromium_args, mean_brightness, skeleton_pixels, write_person_y4m

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
        reason="Chromium is not installed (scripts/test.sh installs it)",
    ),
]


@pytest.fixture(scope="session")
def person_y4m(tmp_path_factory) -> Path:
    return write_person_y4m(tmp_path_factory.mktemp("video") / "person.y4m")


@pytest.fixture
async def browser(person_y4m):
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(person_y4m)
        )
        yield chromium
        await chromium.close()


async def _open_camera(browser, url: str, camera_id: str):
    context = await browser.new_context(viewport={"width": 480, "height": 900})
    page = await context.new_page()
    page.on("console", lambda m: m.type == "error" and print("camera page:", m.text))
    await page.goto(f"{url}/camera?autostart=1&camera_id={camera_id}")
    await page.wait_for_function(
        "window.komiCamera && window.komiCamera.results >= 5 && window.komiCamera.lastPoses > 0",
        timeout=30000,
    )
    return context, page


async def _open_monitor(browser, url: str):
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    page.on("console", lambda m: m.type == "error" and print("monitor page:", m.text))
    await page.goto(f"{url}/monitor")
    return context, page


async def _tile_is_live(page, camera_id: str) -> None:
    await page.wait_for_function(
        """id => { const s = window.komiMonitor.tiles[id];
                   return s && s.messages >= 5 && s.videoTime > 1 && s.drawn >= 5; }""",
        arg=camera_id,
        timeout=30000,
    )


async def test_camera_page_streams_and_draws_the_skeleton(server, browser, artifacts_dir):
    context, page = await _open_camera(browser, server.url, "browser_cam")
    try:
        stats = await page.evaluate("window.komiCamera")
        assert stats["state"] == "connected"
        await page.wait_for_function("window.komiCamera.latencyMs !== null", timeout=15000)
        overlay = await page.locator("#overlay").screenshot()
        assert skeleton_pixels(overlay) > 300, "no skeleton drawn on the camera page"
        await page.screenshot(path=os.path.join(artifacts_dir, "camera_page.png"))
        # the status line refreshes on its own timer: wait for it to show the figures
        await page.wait_for_function(
            """() => /\\d+\\.\\d \\/ \\d+ fps/.test(document.querySelector('#fps').textContent)
                     && / ms$/.test(document.querySelector('#latency').textContent)""",
            timeout=10000,
        )
        status = await page.locator(".status").inner_text()
        latency = await page.evaluate("window.komiCamera.latencyMs")
        print(f"camera page: {status!r}, latency {latency:.0f} ms")
        assert re.search(r"\d+\.\d / \d+ fps", status), "analysed / received fps not shown"
        # the words a busy server shows, from the page's own module
        shown = await page.evaluate(
            """() => import('/static/server_load.js').then(({ showAnalysedRate }) => {
                 const element = document.createElement('b');
                 showAnalysedRate(element, 6.2, { received_fps: 15, analysed_fps: 6, overloaded: true });
                 return [element.textContent, element.className, element.title];
               })"""
        )
        assert shown[0].startswith("6.2 / 15 fps · ") and shown[1] == "busy" and shown[2]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{server.url}/cameras") as response:
                assert "browser_cam" in (await response.json())["cameras"]
        # the exercise panel is hidden until the server sends `analysis`, then shows it
        assert not await page.locator("#analysis").is_visible()
        await page.select_option("#exercise", "squat")
        await page.locator("#analysis").wait_for(state="visible", timeout=10000)
        assert "Squat" in await page.locator("#analysis").inner_text()
        await page.screenshot(path=os.path.join(artifacts_dir, "camera_page_exercise.png"))
    finally:
        await context.close()


async def test_monitor_wall_two_cameras_two_monitors_frame_accurate(
    server, browser, artifacts_dir, caplog
):
    caplog.set_level(logging.INFO, logger="komi_rtc.server.signaling")
    cameras = [await _open_camera(browser, server.url, f"wall_cam_{i}") for i in (1, 2)]
    monitors = [await _open_monitor(browser, server.url) for _ in range(2)]
    try:
        for _, page in monitors:
            for camera_id in ("wall_cam_1", "wall_cam_2"):
                await _tile_is_live(page, camera_id)
        _, page = monitors[0]
        tiles = page.locator(".tile")
        assert await tiles.count() == 2
        for i in range(2):
            tile = tiles.nth(i)
            video_png = await tile.locator("video").screenshot()
            assert mean_brightness(video_png) > 30, "monitor video is black"
            assert skeleton_pixels(await tile.locator("canvas").screenshot()) > 200
        await page.screenshot(path=os.path.join(artifacts_dir, "monitor_page.png"))
        # overlay-to-frame match over about ten seconds of frames, once the wall is running
        before = [await m.evaluate("window.komiMonitor.tiles") for _, m in monitors]
        for (_, monitor), base in zip(monitors, before, strict=True):
            await monitor.wait_for_function(
                """base => Object.entries(window.komiMonitor.tiles).every(
                     ([id, s]) => s.drawn >= (base[id] ? base[id].drawn : 0) + 90)""",
                arg=base,
                timeout=60000,
            )
        for (_, monitor), base in zip(monitors, before, strict=True):
            stats = await monitor.evaluate("window.komiMonitor.tiles")
            for camera_id, tile in stats.items():
                drawn = tile["drawn"] - base[camera_id]["drawn"]
                matched = tile["matched"] - base[camera_id]["matched"]
                print(
                    f"{camera_id}: overlay on its own frame {matched}/{drawn} "
                    f"({matched / drawn:.1%}); since start {tile['mismatch']}; "
                    f"latency {tile['latencyMs'] or 0:.0f} ms, video held {tile['videoDelayMs']} ms"
                )
                assert matched / drawn >= 0.95
        # Chromium's VP8 reached the monitors as it was sent, not re-encoded
        forwarded = [r for r in caplog.records if "connected (video forwarded)" in r.getMessage()]
        assert len(forwarded) == 4
        # a camera that stops leaves every monitor
        await cameras[0][0].close()
        for _, monitor in monitors:
            await monitor.wait_for_function(
                "!('wall_cam_1' in window.komiMonitor.tiles)", timeout=20000
            )
            assert await monitor.locator(".tile").count() == 1
    finally:
        for context, _ in cameras[1:] + monitors:
            await context.close()


async def test_https_mode_serves_pages_with_the_generated_certificate(start_server, tmp_path):
    from komi_rtc.server.tls import ensure_self_signed, server_ssl_context

    cert, key = ensure_self_signed(tmp_path)
    assert ensure_self_signed(tmp_path) == (cert, key)  # kept, not made anew each start
    running = await start_server(ssl_context=server_ssl_context(cert, key), https=True)
    try:
        client_context = ssl.create_default_context(cafile=str(cert))  # verifies the name too
        url = f"https://localhost:{running.server.port}"
        async with aiohttp.ClientSession() as http:
            for path in ("/camera", "/monitor", "/static/camera.js", "/config.json"):
                async with http.get(url + path, ssl=client_context) as response:
                    assert response.status == 200, path
    finally:
        await running.server.close()


async def test_camera_page_reconnects_after_a_server_restart(restartable_server, browser):
    server = restartable_server
    context, page = await _open_camera(browser, server.url, "cam_restart_page")
    try:
        await server.stop()
        await page.wait_for_function("window.komiCamera.state === 'reconnecting'", timeout=20000)
        results = await page.evaluate("window.komiCamera.results")
        await server.start()
        await page.wait_for_function(
            "([n]) => window.komiCamera.state === 'connected' && window.komiCamera.results > n + 5",
            arg=[results],
            timeout=40000,
        )
    finally:
        await context.close()

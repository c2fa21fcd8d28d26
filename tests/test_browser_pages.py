"""The camera and monitor pages in real headless Chromium (Playwright), real server."""

from __future__ import annotations

import logging
import os
import re
import ssl

import aiohttp
from auth import AUTH_HEADERS
from browser import (
    BROWSER_TESTS,
    mean_brightness,
    open_camera,
    open_monitor,
    skeleton_pixels,
    tile_is_live,
)

pytestmark = BROWSER_TESTS

MATCHED_FRAMES = 60  # frames per tile with their own skeleton: six seconds at 10 fps


async def test_camera_page_streams_and_draws_the_skeleton(server, browser, artifacts_dir):
    context, page = await open_camera(browser, server.url, "browser_cam")
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
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
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
    caplog.set_level(logging.INFO, logger="komi_rtc.server.monitor_offers")
    cameras = [await open_camera(browser, server.url, f"wall_cam_{i}") for i in (1, 2)]
    monitors = [await open_monitor(browser, server.url) for _ in range(2)]
    try:
        for _, page in monitors:
            for camera_id in ("wall_cam_1", "wall_cam_2"):
                await tile_is_live(page, camera_id)
        _, page = monitors[0]
        tiles = page.locator(".tile")
        assert await tiles.count() == 2
        for i in range(2):
            tile = tiles.nth(i)
            video_png = await tile.locator("video").screenshot()
            assert mean_brightness(video_png) > 30, "monitor video is black"
            assert skeleton_pixels(await tile.locator("canvas").screenshot()) > 200
        await page.screenshot(path=os.path.join(artifacts_dir, "monitor_page.png"))
        # Frame accuracy, measured so that a busy machine cannot fail it: wait (with a
        # timeout) until every tile has shown MATCHED_FRAMES more frames with their own
        # skeleton on them. Frames the server skipped (no pose ever) do not count against
        # it; the share of frames whose pose came too late is a figure, printed, and only
        # checked to be a minority (the hold adapts to the latency it sees).
        before = [await m.evaluate("window.komiMonitor.tiles") for _, m in monitors]
        for (_, monitor), base in zip(monitors, before, strict=True):
            await monitor.wait_for_function(
                """([base, wanted]) => Object.entries(window.komiMonitor.tiles).every(
                     ([id, s]) => s.matched >= (base[id] ? base[id].matched : 0) + wanted)""",
                arg=[base, MATCHED_FRAMES],
                timeout=120000,
            )
        for (_, monitor), base in zip(monitors, before, strict=True):
            stats = await monitor.evaluate("window.komiMonitor.tiles")
            for camera_id, tile in stats.items():
                delta = {k: tile[k] - base[camera_id][k] for k in ("matched", "late", "noPose")}
                posed = delta["matched"] + delta["late"]
                print(
                    f"{camera_id}: own skeleton on {delta['matched']}/{posed} frames with a pose "
                    f"({delta['matched'] / posed:.1%}), {delta['noPose']} frames not analysed; "
                    f"pose latency p50 {tile['poseLatencyMs']} p95 {tile['poseLatencyP95Ms']} ms, "
                    f"video held {tile['videoHeldMs']} ms (target {tile['videoDelayMs']} ms)"
                )
                assert delta["matched"] > delta["late"], "most skeletons miss their frame"
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
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
            for path in ("/camera", "/monitor", "/static/camera.js", "/config.json"):
                async with http.get(url + path, ssl=client_context) as response:
                    assert response.status == 200, path
    finally:
        await running.server.close()


async def test_camera_page_reconnects_after_a_server_restart(restartable_server, browser):
    server = restartable_server
    context, page = await open_camera(browser, server.url, "cam_restart_page")
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

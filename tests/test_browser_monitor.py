"""The monitor wall in real headless Chromium: the exercise picker follows the camera, the
tile's figures stay in view, and the video hold follows the pose latency it observes."""

from __future__ import annotations

import os
import re

import aiohttp
from auth import AUTH_HEADERS
from browser import (
    BROWSER_TESTS,
    open_camera,
    open_monitor,
    tile_is_live,
)

pytestmark = BROWSER_TESTS

TILE_PICKER = "document.querySelector('.tile select.exercise')"
CAMERA_PICKER = "document.querySelector('#exercise')"


async def _set_exercise(url: str, camera_id: str, body: dict) -> dict:
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.post(f"{url}/cameras/{camera_id}/exercise", json=body) as response:
            assert response.status == 200, await response.text()
            return await response.json()


async def _picker_shows(page, select: str, exercise: str, profile_select: str | None = None):
    """Wait until a <select> shows `exercise` ('' for none), and say what a person reads."""
    await page.wait_for_function(
        f"""() => {{ const s = {select};
                     return s && s.value === {exercise!r} && s.selectedOptions.length === 1; }}""",
        timeout=15000,
    )
    return await page.evaluate(f"{select}.selectedOptions[0].textContent")


async def test_pickers_show_the_exercise_chosen_anywhere(server, browser):
    camera_context, camera = await open_camera(browser, server.url, "picker_cam")
    monitor_context, monitor = await open_monitor(browser, server.url)
    late_context = None
    try:
        await tile_is_live(monitor, "picker_cam")
        assert await _picker_shows(monitor, TILE_PICKER, "") == "None (pose only)"
        # chosen over REST: the server's exercise_set reaches the camera and its monitors
        answer = await _set_exercise(server.url, "picker_cam", {"exercise": "squat"})
        assert answer["type"] == "exercise_set" and answer["exercise"] == "squat"
        assert await _picker_shows(monitor, TILE_PICKER, "squat") == "Squat"
        assert await _picker_shows(camera, CAMERA_PICKER, "squat") == "Squat"
        # a monitor that opens now learns it from the frames' `analysis`
        late_context, late = await open_monitor(browser, server.url)
        await tile_is_live(late, "picker_cam")
        assert await _picker_shows(late, TILE_PICKER, "squat") == "Squat"
        # the profile follows on the camera page, which has a picker for it
        await _set_exercise(server.url, "picker_cam", {"exercise": "push_up", "profile": "strict"})
        for page in (monitor, late):
            assert await _picker_shows(page, TILE_PICKER, "push_up") == "Push-up"
        await _picker_shows(camera, CAMERA_PICKER, "push_up")
        assert await _picker_shows(camera, "document.querySelector('#profile')", "strict")
        # chosen on one monitor: the camera page and the other monitor show it
        await late.select_option(".tile select.exercise", "lunge_left")
        await _picker_shows(camera, CAMERA_PICKER, "lunge_left")
        await _picker_shows(monitor, TILE_PICKER, "lunge_left")
        # chosen on the camera page: the monitors show it; and stopped over REST
        await camera.select_option("#exercise", "plank")
        for page in (monitor, late):
            await _picker_shows(page, TILE_PICKER, "plank")
        await _set_exercise(server.url, "picker_cam", {"exercise": None})
        for page in (monitor, late):
            await _picker_shows(page, TILE_PICKER, "")
        await _picker_shows(camera, CAMERA_PICKER, "")
    finally:
        for context in (late_context, monitor_context, camera_context):
            if context is not None:
                await context.close()


async def test_a_single_tile_shows_its_name_fps_and_latency_without_scrolling(
    server, browser, artifacts_dir
):
    camera_context, _ = await open_camera(browser, server.url, "layout_cam")
    monitor_context, monitor = await open_monitor(browser, server.url)  # 1280 x 800
    try:
        await tile_is_live(monitor, "layout_cam")
        await monitor.wait_for_function(
            "/ms/.test(document.querySelector('.tile .latency').textContent)", timeout=15000
        )
        for with_exercise in (False, True):  # the exercise panel takes room too
            if with_exercise:
                await _set_exercise(server.url, "layout_cam", {"exercise": "squat"})
                await monitor.locator(".tile .analysis").wait_for(state="visible", timeout=15000)
            for part in ("footer", ".camera-id", ".fps", ".latency", ".held"):
                box = await monitor.locator(f".tile {part}").bounding_box()
                assert box is not None and box["height"] > 0, part
                assert 0 <= box["y"] and box["y"] + box["height"] <= 800, (part, box)
                assert 0 <= box["x"] and box["x"] + box["width"] <= 1280, (part, box)
            assert await monitor.evaluate("window.scrollY") == 0
            stage = await monitor.locator(".tile .stage").bounding_box()
            assert stage["height"] > 400, "the video should take the room that is left"
        await monitor.screenshot(path=os.path.join(artifacts_dir, "monitor_single_tile.png"))
    finally:
        await monitor_context.close()
        await camera_context.close()


async def test_video_hold_is_the_pose_latency_p95_plus_a_frame(server, browser):
    """The hold's arithmetic, in the page's own module: p95 plus a frame interval, within
    the floor and ceiling; it grows at once and shrinks gradually."""
    context, page = await open_monitor(browser, server.url)
    try:
        result = await page.evaluate(
            """() => import('/static/video_hold.js').then(({ HOLD_LIMITS_MS, VideoHold, holdFor }) => {
                 const hold = new VideoHold();
                 const first = hold.adapt(67);  // no samples yet: the browser's own hold
                 for (let i = 0; i < 95; i += 1) hold.addLatency(40);
                 for (let i = 0; i < 5; i += 1) hold.addLatency(400);
                 const steady = hold.adapt(67);
                 for (let i = 0; i < 150; i += 1) hold.addLatency(300);
                 const slower = hold.adapt(67);
                 for (let i = 0; i < 150; i += 1) hold.addLatency(20);
                 const faster = hold.adapt(67);
                 // a frame shown, then its pose: the latency runs from the frame's arrival
                 const paired = new VideoHold();
                 paired.frameShown(9000, 1000, 1150);
                 paired.poseArrived(9001, 1080);  // a tick of rounding
                 return { first, steady, slower, faster, limits: HOLD_LIMITS_MS,
                          low: holdFor(0, 0), high: holdFor(10000, 100),
                          paired: paired.latencies, held: paired.heldMs };
               })"""
        )
        assert result["first"] is None
        assert result["steady"] == 40 + 67  # the p95 of the samples, plus a frame
        assert result["slower"] == 300 + 67  # longer: at once
        assert 20 + 67 < result["faster"] < result["slower"]  # shorter: step by step
        assert result["low"] == result["limits"]["floor"]
        assert result["high"] == result["limits"]["ceiling"]
        assert result["paired"] == [80] and result["held"] == 150
    finally:
        await context.close()


async def test_monitor_hold_follows_the_pose_latency_it_observes(start_server, browser):
    """With 300 ms added before every result, the monitor holds its video longer than that,
    the skeletons still land on their own frames, and the tile says what its figures mean."""
    delayed = await start_server(inject_delay_ms=300)
    camera_context, _ = await open_camera(browser, delayed.url, "hold_cam")
    monitor_context, monitor = await open_monitor(browser, delayed.url)
    try:
        await tile_is_live(monitor, "hold_cam")
        base = await monitor.evaluate("window.komiMonitor.tiles.hold_cam")
        await monitor.wait_for_function(
            """base => { const s = window.komiMonitor.tiles.hold_cam;
                         return s.videoDelayMs >= 300 && s.matched >= base.matched + 30; }""",
            arg=base,
            timeout=60000,
        )
        stats = await monitor.evaluate("window.komiMonitor.tiles.hold_cam")
        print(
            f"pose latency p50 {stats['poseLatencyMs']} p95 {stats['poseLatencyP95Ms']} ms, "
            f"hold {stats['videoDelayMs']} ms, held {stats['videoHeldMs']} ms, "
            f"frame {stats['frameIntervalMs']} ms, matched {stats['matched']}, late {stats['late']}"
        )
        assert stats["poseLatencyMs"] >= 300
        assert stats["videoDelayMs"] >= stats["poseLatencyMs"]
        await monitor.wait_for_function(
            "/held \\d+ ms/.test(document.querySelector('.tile .held').textContent)", timeout=10000
        )
        stat = monitor.locator(".tile .latency-stat")
        text = await stat.inner_text()
        assert re.fullmatch(r"Latency \d+ ms · video held \d+ ms", text), text
        title = await stat.get_attribute("title")
        assert re.search(r"Pose latency \d+ ms .*held \d+ ms on purpose", title), title
    finally:
        await monitor_context.close()
        await camera_context.close()
        await delayed.server.close()

"""Stations in real headless Chromium: two camera pages join one station from their link's
`?station=`, the camera pages show the station's count, and the monitor shows the station
tile (both videos, the sync error, the fused count and where it comes from, calibration and
the 3-D skeleton)."""

from __future__ import annotations

import os
from typing import Any

import aiohttp
import cv2
import numpy as np
from auth import ADMIN_TOKEN, AUTH_HEADERS
from browser import (
    BROWSER_TESTS,
    open_monitor,
    page_link,
)
from harness import wait_for

from komi_rtc.multiview.cameras import CameraModel, StationCalibration, intrinsics_guess, look_at

pytestmark = BROWSER_TESTS

STATION = "st_b"
CAMERAS = ("st_cam_a", "st_cam_b")
TILE = f".station-tile[data-station='{STATION}']"


async def _open_station_camera(browser: Any, url: str, camera_id: str) -> Any:
    """A camera page opened from a station link, once the station's messages reach it."""
    context = await browser.new_context(viewport={"width": 480, "height": 900})
    page = await context.new_page()
    page.on("console", lambda m: m.type == "error" and print("camera page:", m.text))
    link = page_link(
        url, "/camera", ADMIN_TOKEN, autostart="1", camera_id=camera_id, station=STATION
    )
    await page.goto(link)
    return context, page


async def _stations(url: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.get(f"{url}/stations") as response:
            assert response.status == 200, await response.text()
            return (await response.json())["stations"]


async def _post(url: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.post(f"{url}{path}", json=body) as response:
            return response.status, await response.json()


async def _both_streaming(url: str, timeout: float = 30.0) -> dict[str, Any]:
    """The station as GET /stations shows it, once both cameras stream in it."""
    seen: list[dict[str, Any]] = []

    async def both_streaming() -> dict[str, Any] | None:
        seen[:] = await _stations(url)
        for station in seen:
            if station["id"] == STATION and set(station["streaming"]) == set(CAMERAS):
                return station
        return None

    return await wait_for(both_streaming, timeout, interval=0.2, what=lambda: str(seen))


def _toe_in_calibration() -> dict[str, Any]:
    """Two cameras 20 cm apart, both aimed at a point 3 m away. Both pages' fake cameras
    play the same video, and identical pixels in both views meet near that point, so every
    joint triangulates (a flattened figure, but a real `pose3d`)."""
    K = intrinsics_guess((640, 480))
    cameras = {}
    for camera_id, x in zip(CAMERAS, (-0.1, 0.1), strict=True):
        R, t = look_at(
            np.array([x, 1.0, 3.0]), np.array([0.0, 1.0, 0.0]), np.array([0.0, 1.0, 0.0])
        )
        cameras[camera_id] = CameraModel(K, np.zeros(5), R, t, (640, 480))
    return StationCalibration(cameras, "self", 0.5, "test: toe-in pair", {}).to_json()


def _figure_pixels(png: bytes) -> int:
    """Pixels of the 3-D figure's colours (green centre, orange left, blue right bones,
    yellow joints) in a screenshot of the 3-D view."""
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR).astype(int)
    b, g, r = image[..., 0], image[..., 1], image[..., 2]
    saturated = (np.max(image, axis=2) - np.min(image, axis=2)) > 90
    return int(
        np.count_nonzero(
            saturated & (np.max(image, axis=2) > 120) & ~((r < 90) & (g < 90) & (b < 90))
        )
    )


async def test_two_camera_pages_form_a_station_the_monitor_shows_as_one(
    server, browser, artifacts_dir
):
    contexts = []
    try:
        cameras = []
        for camera_id in CAMERAS:
            context, page = await _open_station_camera(browser, server.url, camera_id)
            contexts.append(context)
            cameras.append(page)
        station = await _both_streaming(server.url)
        assert station["cameras"] == sorted(CAMERAS) and not station["calibrated"]
        for page in cameras:  # each camera page hears the station and says it is in it
            await page.wait_for_function(
                "window.komiCamera.stationMessages >= 3 && window.komiCamera.lastPoses > 0",
                timeout=30000,
            )
            # the status line is redrawn on the page's own tick: wait for it, then read it
            await page.wait_for_function(
                f"document.getElementById('station-name').textContent === 'Station {STATION}'",
                timeout=10000,
            )
            assert await page.locator("#station").input_value() == STATION

        status, answer = await _post(
            server.url, f"/stations/{STATION}/exercise", {"exercise": "squat"}
        )
        assert status == 200 and answer["exercise"] == "squat", answer
        for page in cameras:  # the count shown is the station's
            await page.wait_for_function(
                """() => window.komiCamera.stationReps !== null
                   && document.querySelector('#reps-label').textContent === 'Station reps'
                   && /^\\d+$/.test(document.querySelector('#analysis [data-field="reps"]').textContent)
                   && /\\d+ ms/.test(document.querySelector('#station-sync').textContent)""",
                timeout=30000,
            )

        monitor_context, monitor = await open_monitor(browser, server.url)  # 1280 x 800
        contexts.append(monitor_context)
        tile = monitor.locator(TILE)
        await tile.wait_for(state="visible", timeout=30000)
        # both cameras' videos play inside the station tile, with their skeletons
        await monitor.wait_for_function(
            """([selector, ids]) => ids.every((id) => {
                 const s = window.komiMonitor.tiles[id];
                 const tile = [...document.querySelectorAll(selector + ' .tile .camera-id')]
                   .find((element) => element.textContent === id);
                 return tile && s && s.videoTime > 1 && s.drawn >= 5; })""",
            arg=[TILE, list(CAMERAS)],
            timeout=30000,
        )
        assert await tile.locator(".tile video").count() == 2
        # the fused count, who counts it, where each metric comes from and the sync error
        await monitor.wait_for_function(
            """id => { const s = window.komiMonitor.stations[id];
                       return s && s.messages >= 5 && s.reps !== null && s.source !== null
                         && s.syncErrorMs !== null; }""",
            arg=STATION,
            timeout=30000,
        )
        stats = await monitor.evaluate(f"window.komiMonitor.stations[{STATION!r}]")
        assert stats["source"] in CAMERAS
        assert (await tile.locator(".station-reps").inner_text()).isdigit()
        assert await tile.locator(".station-panel [data-field='exercise']").inner_text() == "Squat"
        assert "Reps from" in await tile.locator(".metric-sources").inner_text()
        assert await tile.locator(".station-exercise").input_value() == "squat"
        sync = await tile.locator(".sync").inner_text()
        assert sync.endswith(" ms"), sync
        print(
            f"station {STATION}: sync error {stats['syncErrorMs']} ms, counted by {stats['source']}"
        )
        # the 3-D view is there and says the station is not calibrated
        assert await tile.locator(".view3d canvas").count() == 1 or not stats["webgl"]
        message = tile.locator(".view3d-message")
        await message.wait_for(state="visible", timeout=5000)
        if stats["webgl"]:
            assert "Not calibrated" in await message.inner_text()
        assert await tile.locator(".calibration-tag").inner_text() == "not calibrated"
        # everything a trainer needs is in view at 1280 x 800
        for part in (".station-head", ".station-reps", ".view3d", ".calibrate-self", ".board-link"):
            box = await tile.locator(part).first.bounding_box()
            assert box and box["height"] > 0 and box["y"] + box["height"] <= 800, (part, box)
            assert box["x"] + box["width"] <= 1280, (part, box)
        await monitor.screenshot(
            path=os.path.join(artifacts_dir, "station_monitor_uncalibrated.png")
        )

        # the board link serves the board image
        href = await tile.locator(".board-link").get_attribute("href")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{server.url}{href}") as response:
                assert response.status == 200 and response.content_type == "image/png"

        # the join link: a QR code of a camera link into this station
        await tile.locator(".join-link").click()
        await tile.locator(".join-qr-image svg").wait_for(state="visible")
        join_url = await tile.locator(".join-url").inner_text()
        assert f"station={STATION}" in join_url and "token=" in join_url

        # a calibration installed: the 3-D skeleton is drawn
        status, answer = await _post(
            server.url, f"/stations/{STATION}/calibration", _toe_in_calibration()
        )
        assert status == 200 and answer["calibrated"], answer
        await monitor.wait_for_function(
            """id => { const s = window.komiMonitor.stations[id];
                       return s.pose3d && s.joints3d >= 20 && s.calibrated; }""",
            arg=STATION,
            timeout=30000,
        )
        await monitor.wait_for_function(
            f"document.querySelector(\"{TILE} .calibration-tag\").textContent === 'calibrated'",
            timeout=10000,
        )
        if stats["webgl"]:
            assert await message.is_hidden()
            view = tile.locator(".view3d")
            # a busy machine can leave a group with one view, or with views too far apart to
            # triangulate, and the figure then clears for a moment: look at a few pictures
            shots = []
            for _attempt in range(10):
                png = await view.screenshot()
                joints = await monitor.evaluate(
                    f"window.komiMonitor.stations[{STATION!r}].joints3d"
                )
                shots.append((_figure_pixels(png), joints))
                if shots[-1][0] > 200:
                    break
                seen = await monitor.evaluate(f"window.komiMonitor.stations[{STATION!r}].messages")
                await monitor.wait_for_function(  # a newer station_processed, with a figure
                    """([id, seen]) => { const s = window.komiMonitor.stations[id];
                                         return s.messages > seen && s.joints3d >= 20; }""",
                    arg=[STATION, seen],
                    timeout=30000,
                )
            else:
                with open(os.path.join(artifacts_dir, "station_view3d_empty.png"), "wb") as out:
                    out.write(png)
            print(f"3-D figure: (coloured pixels, joints) per picture {shots}")
            assert shots[-1][0] > 200, shots
            # dragging orbits the view: the picture changes
            before = await view.screenshot()
            box = await view.bounding_box()
            await monitor.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            await monitor.mouse.down()
            await monitor.mouse.move(
                box["x"] + box["width"] / 2 + 120, box["y"] + box["height"] / 2 + 30, steps=5
            )
            await monitor.mouse.up()
            assert await view.screenshot() != before
        await monitor.screenshot(path=os.path.join(artifacts_dir, "station_monitor.png"))
    finally:
        for context in reversed(contexts):
            await context.close()


async def test_station_calibration_from_the_monitor_reports_its_outcome(server, browser):
    """The Self button calibrates from the person's keypoints and says how it went. Both
    fake cameras play the same video, so the views do not agree on a geometry: either the
    server calibrates or it says why not; the page shows which, in words."""
    contexts = []
    try:
        for camera_id in CAMERAS:
            context, _ = await _open_station_camera(browser, server.url, camera_id)
            contexts.append(context)
        await _both_streaming(server.url)
        monitor_context, monitor = await open_monitor(browser, server.url)
        contexts.append(monitor_context)
        tile = monitor.locator(TILE)
        await tile.wait_for(state="visible", timeout=30000)
        await tile.locator(".body-height").fill("1.8")
        await tile.locator(".calibrate-self").click()
        assert await tile.locator(".calibrate-self").is_disabled()
        assert "Calibrating" in await tile.locator(".calibration-status").inner_text()
        await monitor.wait_for_function(
            "id => { const s = window.komiMonitor.stations[id]; return s && s.calibrationAnswer; }",
            arg=STATION,
            timeout=90000,
        )
        answer = await monitor.evaluate(
            f"window.komiMonitor.stations[{STATION!r}].calibrationAnswer"
        )
        text = await tile.locator(".calibration-status").inner_text()
        print("self-calibration:", answer, "|", text)
        if answer.get("calibrated"):
            assert text.startswith("Calibrated: reprojection error")
        else:
            assert answer["status"] in (408, 409), answer
            assert text.startswith("Calibration failed: ") and answer["error"] in text
        assert await tile.locator(".calibrate-self").is_enabled()
    finally:
        for context in reversed(contexts):
            await context.close()

"""People and history in real headless Chromium: a squat set streamed over WebRTC shows on
/history with its reps, drawn progress charts, working exports, Korean and a recommendation;
the camera page and the monitor tiles tie a camera to a person."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
from typing import Any

import aiohttp
import cv2
import numpy as np
from auth import ADMIN_TOKEN, AUTH_HEADERS
from browser import (
    BROWSER_TESTS,
    open_camera,
    open_monitor,
    page_link,
    tile_is_live,
)
from harness import wait_for

from komi_rtc.camera.peer import CameraPeer
from komi_rtc.media.video_sources import open_source

pytestmark = BROWSER_TESTS

# the history page's series colours (web/history.js COLORS), as BGR for OpenCV
SERIES_BGR = {"reps": (0x5A, 0xD4, 0x00), "best": (0xFF, 0xC4, 0x7C), "score": (0x20, 0xB0, 0xFF)}


async def _get_json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def _post(http: aiohttp.ClientSession, url: str, body: dict) -> dict:
    async with http.post(url, json=body) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def _poll_sets(http: aiohttp.ClientSession, url: str, person: str, done, timeout: float):
    """The person's sets once `done(sets)` holds (polled, with a timeout)."""

    async def sets_done() -> list | None:
        sets = (await _get_json(http, f"{url}/people/{person}/sets"))["sets"]
        return sets if done(sets) else None

    return await wait_for(sets_done, timeout, interval=0.25, what=f"{person}'s sets")


async def _record_squat_set(url: str, person: str, camera_id: str) -> dict:
    """Streams the rendered person doing squats, tied to `person`, until the set has two
    reps, then ends it: the finished set as /people/{person}/sets serves it."""
    peer = CameraPeer(
        url,
        camera_id,
        open_source("demo", 640, 480, 10),
        fps=10,
        exercise="squat",
        token=ADMIN_TOKEN,
    )
    task = asyncio.create_task(peer.run())
    try:
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
            await wait_for(lambda: peer.status.results > 0, timeout=30)
            await _post(http, f"{url}/cameras/{camera_id}/person", {"person": person})
            await _post(http, f"{url}/cameras/{camera_id}/exercise", {"exercise": "squat"})
            await _poll_sets(http, url, person, lambda s: s and s[0]["reps"] >= 2, timeout=60)
            await _post(http, f"{url}/cameras/{camera_id}/exercise", {"exercise": None})
            sets = await _poll_sets(
                http, url, person, lambda s: s[0]["ended_at"] is not None, timeout=10
            )
            return sets[0]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await peer.close()


def _series_pixels(png: bytes) -> dict[str, int]:
    """Pixels of each chart series' colour in a screenshot."""
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR).astype(int)
    counts = {}
    for name, bgr in SERIES_BGR.items():
        distance = np.abs(image - np.array(bgr)).sum(axis=2)
        counts[name] = int(np.count_nonzero(distance < 60))
    return counts


async def _download(page, selector: str) -> bytes:
    async with page.expect_download(timeout=10000) as info:
        await page.click(selector)
    download = await info.value
    with open(await download.path(), "rb") as saved:
        return saved.read()


async def test_history_page_shows_a_streamed_set_with_charts_exports_and_a_plan(
    server, browser, artifacts_dir
):
    item = await _record_squat_set(server.url, "anna", "hist_cam")
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    page = await context.new_page()
    page.on("console", lambda m: m.type == "error" and print("history page:", m.text))
    try:
        await page.goto(page_link(server.url, "/history", person="anna"))
        await page.wait_for_function(
            "() => { const h = window.komiHistory; return h && h.sets >= 1 && h.charts >= 1 && "
            "h.recommendation !== null; }",
            timeout=15000,
        )
        assert "token" not in page.url and "person=anna" in page.url
        # the people list, with anna chosen
        chosen = page.locator(".person-button[aria-current='true']")
        assert (await chosen.locator("strong").inner_text()) == "anna"
        # the set, newest first, with the rep count the server recorded
        row = page.locator("#sets tbody tr").first
        assert await row.get_attribute("data-set") == str(item["id"])
        assert (await row.locator("td.reps").inner_text()).strip() == str(item["reps"])
        assert "Squat" in await row.locator("td.exercise").inner_text()
        good = f"{item['good_reps']} · {item['reps'] - item['good_reps']}"
        assert good in await row.inner_text()
        assert "running" not in await row.inner_text()
        # the squat chart is drawn: its series' colours are on screen
        chart = page.locator(".chart-card[data-exercise='squat']")
        await chart.scroll_into_view_if_needed()
        drawn = _series_pixels(await chart.screenshot())
        assert drawn["best"] > 30 and drawn["score"] > 30, drawn
        await page.screenshot(path=os.path.join(artifacts_dir, "history.png"), full_page=True)
        # the day / week switch redraws it
        await page.click("[data-period='week']")
        await page.wait_for_function("window.komiHistory.charts >= 1")
        assert _series_pixels(await chart.screenshot())["score"] > 30
        # the recommendation: its items, or a plain message when the server has none
        items = await page.locator("#recommendation li").count()
        message = page.locator("#recommendation-message")
        if items:
            assert (await page.locator("#recommendation li p").first.inner_text()).strip()
        else:
            assert await message.is_visible() and (await message.inner_text()).strip()
        # exports, fetched with the token: a CSV line per rep, and every set as JSON
        rows = list(csv.DictReader(io.StringIO((await _download(page, "#csv-link")).decode())))
        assert len(rows) == item["reps"] and {int(r["set_id"]) for r in rows} == {item["id"]}
        exported = json.loads(await _download(page, "#json-link"))
        assert exported["sets"][0]["id"] == item["id"]
        # Korean
        await page.click("#language")
        assert await page.locator("h1").inner_text() == "KOMI 기록"
        assert "스쿼트" in await row.locator("td.exercise").inner_text()
        assert await page.locator("#sets th").first.inner_text() == "날짜"
        assert await page.locator("[data-period='week']").inner_text() == "주별"
        if items:  # the reasons in the page's language
            reason = await page.locator("#recommendation li p").first.inner_text()
            assert any("\uac00" <= ch <= "\ud7a3" for ch in reason), reason
        await page.click("#language")
        # a phone: nothing wider than the screen
        await page.set_viewport_size({"width": 390, "height": 844})
        await page.wait_for_function("document.documentElement.scrollWidth <= 390")
        await page.screenshot(path=os.path.join(artifacts_dir, "history-phone.png"), full_page=True)
    finally:
        await context.close()


async def test_history_page_without_a_monitor_link_says_what_is_missing(server, browser):
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        minted = await _post(http, f"{server.url}/tokens", {"role": "camera"})
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    try:
        for token, words in ((minted["token"], "monitor link"), (None, "needs an access link")):
            await page.goto(page_link(server.url, "/history", token, person="anna"))
            message = page.locator("#access")
            await message.wait_for(state="visible", timeout=10000)
            assert words in await message.inner_text()
            assert await page.locator("#content").is_hidden()
            await page.evaluate("sessionStorage.clear()")
    finally:
        await context.close()


async def test_camera_page_and_monitor_tile_tie_the_camera_to_a_person(server, browser):
    monitor_context, monitor = await open_monitor(browser, server.url)
    camera_context, camera = await open_camera(browser, server.url, "person_cam")
    try:
        await tile_is_live(monitor, "person_cam")
        # typed on the camera page: set_person on its channel ties the camera, and every page
        # watching learns it (person_set)
        await camera.fill("#person", "bo")
        await camera.press("#person", "Enter")
        await camera.wait_for_function("window.komiCamera.person === 'bo'", timeout=10000)
        await monitor.wait_for_function(
            "window.komiMonitor.tiles.person_cam.person === 'bo'", timeout=10000
        )
        assert await monitor.input_value(".tile input.person") == "bo"
        link = await camera.get_attribute("#history-link", "href")
        assert link.startswith("/history?person=bo")
        # a set starts: the camera page shows the person's best (none yet: a first set)
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
            await _post(http, f"{server.url}/cameras/person_cam/exercise", {"exercise": "squat"})
            await camera.locator("#best").wait_for(state="visible", timeout=15000)
            assert await camera.locator("#best").inner_text() == "Best: first set"
            sets = await _poll_sets(http, server.url, "bo", lambda s: len(s) >= 1, timeout=10)
            assert sets[0]["camera_id"] == "person_cam" and sets[0]["ended_at"] is None
        # chosen on the monitor tile (REST): the camera page follows, and remembers it
        await monitor.fill(".tile input.person", "dana")
        await monitor.press(".tile input.person", "Enter")
        await camera.wait_for_function(
            "window.komiCamera.person === 'dana' && document.querySelector('#person').value "
            "=== 'dana'",
            timeout=10000,
        )
        assert await camera.evaluate("localStorage.getItem('komi.person')") == "dana"
        assert "person=dana" in await monitor.get_attribute(".tile .history-link", "href")
        # a bad id is refused on the page, nothing is sent
        await monitor.fill(".tile input.person", "no spaces")
        await monitor.press(".tile input.person", "Enter")
        assert not await monitor.evaluate(
            "document.querySelector('.tile input.person').validity.valid"
        )
        assert await camera.evaluate("window.komiCamera.person") == "dana"
        # the camera page remembers the person: reconnecting ties the camera again
        await camera.reload()
        await camera.wait_for_function("window.komiCamera.person === 'dana'", timeout=30000)
    finally:
        await camera_context.close()
        await monitor_context.close()


async def test_a_persons_own_link_shows_her_history_only_and_a_camera_link_ties_no_stranger(
    server, browser
):
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        monitor = await _post(http, f"{server.url}/tokens", {"role": "monitor"})
    headers = {"Authorization": f"Bearer {monitor['token']}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        for_cleo = await _post(
            http,
            f"{server.url}/tokens",
            {"role": "camera", "camera_id": "cleo_cam", "person": "cleo"},
        )
        cleo_history = await _post(
            http, f"{server.url}/tokens", {"role": "person", "person": "cleo"}
        )
        pairing = await _post(http, f"{server.url}/tokens", {"role": "camera"})
    # a camera link made for cleo ties its camera to her with nothing typed; it shows no
    # history link (a camera link reads no history)
    cleo_context, cleo = await open_camera(browser, server.url, None, for_cleo["token"])
    await cleo.wait_for_function("window.komiCamera.person === 'cleo'", timeout=10000)
    assert await cleo.locator("#history-link").is_hidden()
    spy_context = await browser.new_context(viewport={"width": 480, "height": 900})
    spy = await spy_context.new_page()
    history_context = await browser.new_context(locale="en-US")
    try:
        # a plain pairing link with her name in it: streams, tied to nobody, and the person
        # field says why
        await spy.goto(
            page_link(server.url, "/camera", pairing["token"], autostart="1", person="cleo")
        )
        await spy.wait_for_function(
            "window.komiCamera && window.komiCamera.results >= 3", timeout=30000
        )
        assert await spy.evaluate("window.komiCamera.person") is None
        assert "cleo" in await spy.evaluate("document.querySelector('#person').validationMessage")
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
            await _post(http, f"{server.url}/cameras/cleo_cam/exercise", {"exercise": "squat"})
            sets = await _poll_sets(http, server.url, "cleo", lambda s: len(s) >= 1, timeout=10)
        assert [s["camera_id"] for s in sets] == ["cleo_cam"]
        # her own link: her sets, no list of people
        page = await history_context.new_page()
        await page.goto(page_link(server.url, "/history", cleo_history["token"]))
        await page.wait_for_function(
            "() => window.komiHistory && window.komiHistory.person === 'cleo' && "
            "window.komiHistory.sets >= 1",
            timeout=15000,
        )
        assert await page.locator("nav.people").is_hidden()
        assert await page.locator("#access").is_hidden()
        assert await page.locator("#person-name").inner_text() == "cleo"
    finally:
        await history_context.close()
        await spy_context.close()
        await cleo_context.close()

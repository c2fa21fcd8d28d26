"""The pages in Debian's firefox-esr with its default ICE settings: its host addresses are
hidden behind mDNS `.local` names (the server learns them from Firefox's checks), its fake
camera needs no permission prompt. One Firefox for the module (puppeteer-core over WebDriver
BiDi, tests/firefox.py), and the multicast of its mDNS lookups (and aioice's) dropped before
it leaves the machine.

Firefox's fake camera shows no person (a coloured test pattern): the camera page is checked
to stream and be analysed; skeletons are checked on a person streamed by a Python camera."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from auth import AUTH_HEADERS
from browser import open_monitor, own_skeletons, page_link, skeleton_pixels, tile_is_live
from contract_client import PersonTrack, connect_camera
from firefox import Firefox
from harness import MulticastDrop, wait_for

from komi_rtc.server.app_keys import REGISTRY

pytestmark = [pytest.mark.browser]

HIDDEN = "the offer has no usable ICE candidate"


def offers_were_hidden(caplog: pytest.LogCaptureFixture, camera_id: str) -> int:
    """How many of `camera_id`'s offers (its own and its monitors') the server found with
    every address hidden: Firefox's default, the case this module is about."""
    prefix = f"[{camera_id}] {HIDDEN}"
    return sum(1 for record in caplog.records if record.getMessage().startswith(prefix))


@pytest.fixture(scope="module")
async def firefox() -> AsyncIterator[Firefox]:
    with MulticastDrop():
        browser = await Firefox.launch()
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def pages(firefox: Firefox) -> AsyncIterator[Firefox]:
    """The module's Firefox for one test: the pages it opened are closed after it."""
    yield firefox
    for context in list(firefox.contexts):
        await context.close()


async def _open_firefox_camera(firefox: Firefox, url: str, camera_id: str, **params: str) -> Any:
    context = await firefox.new_context(viewport={"width": 480, "height": 900})
    page = await context.new_page()
    await page.goto(page_link(url, "/camera", autostart="1", camera_id=camera_id, **params))
    return page


async def test_firefox_camera_page_streams_its_fake_camera_and_is_analysed(
    server: Any, pages: Firefox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "komi_rtc.server.peer_negotiation")
    page = await _open_firefox_camera(pages, server.url, "ff_cam")
    await page.wait_for_function(
        "window.komiCamera.state === 'connected' && window.komiCamera.results >= 15", timeout=30000
    )
    stats = await page.evaluate("window.komiCamera")
    message = stats["lastMessage"]
    assert message["type"] == "frame_processed" and message["camera_id"] == "ff_cam"
    assert message["width"] > 0 and message["pose_data"]["pose"] == []  # a pattern, no person
    assert await page.evaluate("document.getElementById('preview').currentTime") > 1
    session = server.app[REGISTRY].get("ff_cam")
    assert session.stats.frames_analysed >= 15
    assert offers_were_hidden(caplog, "ff_cam") == 1


async def test_firefox_monitor_plays_with_skeletons_on_their_own_frames(
    server: Any, pages: Firefox, caplog: pytest.LogCaptureFixture
) -> None:
    """A person streamed by a Python camera, watched in Firefox: its video plays, and each
    frame gets the skeleton computed from it (requestVideoFrameCallback's RTP timestamps)."""
    caplog.set_level(logging.INFO, "komi_rtc.server.peer_negotiation")
    camera = await connect_camera(server.url, PersonTrack(), camera_id="ff_watched")
    try:
        _, monitor = await open_monitor(pages, server.url)
        await tile_is_live(monitor, "ff_watched")
        await own_skeletons(monitor, "ff_watched")
        stats = await monitor.evaluate("window.komiMonitor.tiles.ff_watched")
        assert stats["rvfc"] and stats["frameKeys"] == "frame", stats
        assert skeleton_pixels(await monitor.screenshot()) > 500
        assert offers_were_hidden(caplog, "ff_watched") == 1  # the monitor's
    finally:
        await camera.close()


async def test_firefox_camera_joins_a_station_the_firefox_monitor_shows(
    server: Any, pages: Firefox
) -> None:
    """A Firefox camera page opened from a station link, with a Python camera in the same
    station: both stream in it, and the Firefox monitor shows the station tile with both
    videos playing."""
    station = "ff_station"
    python_camera = await connect_camera(
        server.url, PersonTrack(), camera_id="ff_st_python", station=station
    )
    try:
        page = await _open_firefox_camera(pages, server.url, "ff_st_firefox", station=station)
        await page.wait_for_function("window.komiCamera.results >= 5", timeout=30000)

        async def both_streaming() -> bool:
            async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
                async with http.get(f"{server.url}/stations") as response:
                    listed = (await response.json())["stations"]
            return any(
                s["id"] == station and set(s["streaming"]) == {"ff_st_python", "ff_st_firefox"}
                for s in listed
            )

        await wait_for(both_streaming, 30, "both cameras streaming in the station")
        assert await page.evaluate("window.komiCamera.station") == station
        await page.wait_for_function(
            f"document.getElementById('station-name').textContent === 'Station {station}'",
            timeout=10000,
        )
        _, monitor = await open_monitor(pages, server.url)
        await monitor.wait_for_function(
            """([station, ids]) => ids.every((id) => {
                 const s = window.komiMonitor.tiles[id];
                 const tile = [...document.querySelectorAll(
                     `.station-tile[data-station='${station}'] .tile .camera-id`)]
                   .find((element) => element.textContent === id);
                 return tile && s && s.videoTime > 1; })""",
            arg=[station, ["ff_st_python", "ff_st_firefox"]],
            timeout=30000,
        )
        await monitor.wait_for_function(
            "window.komiMonitor.tiles.ff_st_python.drawn >= 5", timeout=30000
        )
    finally:
        await python_camera.close()


async def test_firefox_history_page_shows_a_person_and_their_sets(
    server: Any, pages: Firefox
) -> None:
    """A camera tied to a person streams; the history page in Firefox lists her."""
    camera = await connect_camera(
        server.url, PersonTrack(), camera_id="ff_hist_cam", person="ff_person"
    )
    try:
        await camera.next_message("frame_processed", timeout=30)
    finally:
        await camera.close()
    context = await pages.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(page_link(server.url, "/history"))
    await page.wait_for_function("document.body.innerText.includes('ff_person')", timeout=15000)
    assert await page.evaluate("document.title") == "KOMI History"

"""Chromium without the flags that grant the camera (`--use-fake-ui-for-media-stream`): a
page that was not allowed the camera, the monitor, offers its host addresses as mDNS
`.local` names only (and no end of candidates), and still plays; a camera page allowed the
camera, as a person allows it, offers its real addresses. Firefox, which hides them on
both pages, is in test_browser_firefox.py. The multicast of the name lookups is dropped
before it leaves the machine."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from browser import (
    BROWSER_TESTS,
    CHROMIUM,
    chromium_args,
    open_camera,
    own_skeletons,
    page_link,
    skeleton_pixels,
    tile_is_live,
)
from harness import MulticastDrop

pytestmark = BROWSER_TESTS

CANDIDATE_ADDRESS = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) ", re.MULTILINE)


@pytest.fixture(scope="module")
async def unflagged_chromium(person_y4m: Path) -> AsyncIterator[Any]:
    """Chromium with the fake camera device but no flag granting it: a page gets the camera
    only when its context is given the permission (a person's "Allow")."""
    from playwright.async_api import async_playwright

    args = [a for a in chromium_args(person_y4m) if a != "--use-fake-ui-for-media-stream"]
    with MulticastDrop():
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=args
            )
            yield browser
            await browser.close()


def offered_addresses(page: Any) -> list[list[str]]:
    """Collects the candidate addresses of every offer the page posts (a list per offer)."""
    offers: list[list[str]] = []

    def on_request(request: Any) -> None:
        if request.method == "POST" and request.url.split("?")[0].endswith("/offer"):
            offers.append(CANDIDATE_ADDRESS.findall(json.loads(request.post_data)["sdp"]))

    page.on("request", on_request)
    return offers


async def test_chromium_monitor_without_camera_permission_offers_mdns_names_and_plays(
    server: Any, unflagged_chromium: Any
) -> None:
    camera_context, _ = await open_camera(
        unflagged_chromium, server.url, "unflagged_cam", permissions=["camera"]
    )
    context = await unflagged_chromium.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = await context.new_page()
        offers = offered_addresses(page)
        await page.goto(page_link(server.url, "/monitor"))
        await tile_is_live(page, "unflagged_cam")
        assert offers and offers[0], offers
        assert all(address.endswith(".local") for address in offers[0]), offers
        await own_skeletons(page, "unflagged_cam")
        assert skeleton_pixels(await page.screenshot()) > 500
    finally:
        await context.close()
        await camera_context.close()


async def test_chromium_camera_page_allowed_the_camera_streams_without_the_flag(
    server: Any, unflagged_chromium: Any
) -> None:
    """Allowed the camera, Chromium offers its real addresses; refused, the page says so."""
    context = await unflagged_chromium.new_context(permissions=["camera"])
    refused = await unflagged_chromium.new_context()
    try:
        page = await context.new_page()
        offers = offered_addresses(page)
        await page.goto(page_link(server.url, "/camera", autostart="1", camera_id="allowed_cam"))
        await page.wait_for_function(
            "window.komiCamera.results >= 5 && window.komiCamera.lastPoses > 0", timeout=30000
        )
        assert offers and not any(a.endswith(".local") for a in offers[0]), offers
        other = await refused.new_page()
        await other.goto(page_link(server.url, "/camera", autostart="1", camera_id="refused_cam"))
        await other.wait_for_function("window.komiCamera.error !== null", timeout=15000)
        assert "NotAllowedError" in await other.evaluate("window.komiCamera.error")
    finally:
        await context.close()
        await refused.close()

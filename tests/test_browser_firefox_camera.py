"""Firefox with a person as its camera on the real Linux camera path (PipeWire and the
camera portal, tests/linux_camera.py), not its fake stream: the camera page streams her and
draws her skeleton on the preview, and a Firefox monitor plays her with the skeletons.
Firefox's ICE settings are its defaults (its addresses hidden behind mDNS names); the
multicast of the lookups is dropped before it leaves the machine."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from browser import open_monitor, page_link, skeleton_pixels, tile_is_live
from firefox import FAKE_CAMERA_PREFS, Firefox
from harness import MulticastDrop
from linux_camera import linux_camera_session

pytestmark = [pytest.mark.browser]

# the installed Firefox's cameras (PipeWire, through the portal) instead of its fake one;
# its own prompt stays off (nobody clicks in a test), the portal's permission is preset
REAL_CAMERA_PREFS = {
    **FAKE_CAMERA_PREFS,
    "media.navigator.streams.fake": False,
    "media.webrtc.camera.allow-pipewire": True,
}


@pytest.fixture(scope="module")
async def firefox_with_camera(
    person_y4m: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Firefox]:
    workdir = tmp_path_factory.mktemp("linux_camera")
    with MulticastDrop(), linux_camera_session(person_y4m, workdir) as env:
        browser = await Firefox.launch(prefs=REAL_CAMERA_PREFS, env=env)
        try:
            yield browser
        finally:
            await browser.close()


async def test_firefox_streams_a_person_from_its_linux_camera_and_the_monitor_plays_her(
    server: Any, firefox_with_camera: Firefox
) -> None:
    firefox = firefox_with_camera
    context = await firefox.new_context(viewport={"width": 480, "height": 900})
    page = await context.new_page()
    started = time.monotonic()
    await page.goto(page_link(server.url, "/camera", autostart="1", camera_id="ff_linux_cam"))
    await page.wait_for_function(
        "window.komiCamera.results >= 10 && window.komiCamera.lastPoses > 0", timeout=40000
    )
    results = await page.evaluate("window.komiCamera.results")
    print(f"Firefox, PipeWire camera: {results} frames analysed "
          f"{time.monotonic() - started:.1f} s after the page opened")  # fmt: skip
    overlay = await page.evaluate("document.getElementById('overlay').toDataURL('image/png')")
    png = base64.b64decode(overlay.split(",", 1)[1])
    assert skeleton_pixels(png) > 300, "no skeleton drawn on the camera page's preview"
    devices = await page.evaluate(
        "navigator.mediaDevices.enumerateDevices().then(d => d.map(x => x.label))"
    )
    assert devices, "Firefox lists no camera"
    try:
        _, monitor = await open_monitor(firefox, server.url)
        await tile_is_live(monitor, "ff_linux_cam")
        stats = await monitor.evaluate("window.komiMonitor.tiles.ff_linux_cam")
        assert stats["frameKeys"] == "frame", stats
        assert skeleton_pixels(await monitor.screenshot()) > 500
    finally:
        for opened in list(firefox.contexts):
            await opened.close()

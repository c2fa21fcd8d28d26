"""Browsers without WebRTC: the camera and monitor pages say which browser to use (in
English and Korean) instead of "reconnecting" forever. WebKitGTK (Debian's build has no
WebRTC) under Xvfb through Selenium, and Chromium with WebRTC or the camera API taken away;
the history page, which needs neither, works in WebKitGTK.

Selenium blocks: each call runs in a thread, so the in-process server keeps answering."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from browser import page_link
from harness import wait_for, xvfb
from webkit import webkit

from komi_rtc.server.app_keys import REGISTRY

pytestmark = [pytest.mark.browser]

USE_INSTEAD = "Open this link in a current Chrome, Edge, Firefox or Safari"
USE_INSTEAD_KO = "최신 Chrome, Edge, Firefox 또는 Safari에서 이 링크를 여세요"


@pytest.fixture(scope="module")
def webkit_driver() -> Iterator[Any]:
    """One WebKitGTK for the module (it starts in 1-2 s, but the module shares it)."""
    with xvfb() as display, webkit(display) as driver:
        has_webrtc = driver.execute_script("return typeof RTCPeerConnection")
        # these tests are about a browser without it; a build with it belongs with Firefox's
        assert has_webrtc == "undefined", f"this WebKitGTK has WebRTC ({has_webrtc})"
        yield driver


async def _run(function: Any, *args: Any) -> Any:
    return await asyncio.to_thread(function, *args)


async def _text(driver: Any, element_id: str) -> str:
    script = f"const e = document.getElementById('{element_id}'); return e && !e.hidden ? e.textContent : '';"
    return str(await _run(driver.execute_script, script))


async def test_webkit_without_webrtc_camera_page_says_which_browser_to_use(
    server: Any, webkit_driver: Any
) -> None:
    driver = webkit_driver
    await _run(driver.get, page_link(server.url, "/camera", camera_id="webkit_cam", autostart="1"))
    await wait_for(lambda: _text(driver, "message"), 10, "the camera page's message")
    message = await _text(driver, "message")
    assert "no WebRTC" in message and USE_INSTEAD in message
    stats = await _run(driver.execute_script, "return window.komiCamera")
    assert stats["state"] == "unsupported" and stats["error"] == "no_webrtc_camera"
    assert await _text(driver, "state") == "not supported"
    assert await _run(driver.execute_script, "return document.getElementById('connect').disabled")
    # autostart asked to stream: nothing was offered (so nothing is retried)
    assert "webkit_cam" not in server.app[REGISTRY].ids()
    assert "webkit_cam" not in server.app[REGISTRY].reserved()
    # in Korean too, at the switch of the language button
    await _run(driver.execute_script, "document.getElementById('language').click()")
    korean = await _text(driver, "message")
    assert "WebRTC 없음" in korean and USE_INSTEAD_KO in korean, korean
    assert await _text(driver, "state") == "지원 안 됨"


async def test_webkit_without_webrtc_monitor_page_says_which_browser_to_use(
    server: Any, webkit_driver: Any
) -> None:
    driver = webkit_driver
    await _run(driver.get, page_link(server.url, "/monitor"))
    await wait_for(lambda: _text(driver, "access"), 10, "the monitor page's message")
    message = await _text(driver, "access")
    assert "cannot play live video" in message and USE_INSTEAD in message
    monitor = await _run(driver.execute_script, "return window.komiMonitor")
    assert monitor["unsupported"] == "no_webrtc_monitor" and monitor["tiles"] == {}
    assert await _text(driver, "empty") == ""  # not "no cameras yet": it cannot show any


async def test_webkit_history_page_loads(server: Any, webkit_driver: Any) -> None:
    """The history page needs no WebRTC: it lists people and says how to add one."""
    driver = webkit_driver
    await _run(driver.get, page_link(server.url, "/history"))
    await wait_for(
        lambda: _run(driver.execute_script, "return document.body.innerText"),
        10,
        "the history page's text",
    )

    async def says_no_one_yet() -> bool:
        text = await _run(driver.execute_script, "return document.body.innerText")
        return "No one has a history yet" in text

    await wait_for(says_no_one_yet, 10, "the history page listing nobody yet")
    assert await _run(lambda: driver.title) == "KOMI History"


@pytest.mark.parametrize(
    "taken, page, element, key",
    [
        ("window.RTCPeerConnection", "/camera", "message", "no_webrtc_camera"),
        ("MediaDevices.prototype.getUserMedia", "/camera", "message", "no_camera_api"),
        ("window.RTCPeerConnection", "/monitor", "access", "no_webrtc_monitor"),
    ],
)
async def test_chromium_without_webrtc_or_camera_api_says_so(
    server: Any, browser: Any, taken: str, page: str, element: str, key: str
) -> None:
    """The same detection in Chromium with the API deleted before the page runs (the camera
    API branch has no WebKit to show it: WebKitGTK has getUserMedia)."""
    context = await browser.new_context()
    owner, _, name = taken.rpartition(".")
    await context.add_init_script(f"delete {owner}.{name};")
    tab = await context.new_page()
    await tab.goto(page_link(server.url, page, autostart="1", camera_id="no_rtc_cam"))
    await tab.wait_for_function(
        f"document.getElementById('{element}').dataset.i18n === '{key}'", timeout=10000
    )
    text = await tab.evaluate(f"document.getElementById('{element}').textContent")
    assert USE_INSTEAD in text
    if page == "/camera":
        assert await tab.evaluate("window.komiCamera.state") == "unsupported"
    await context.close()

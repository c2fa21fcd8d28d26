"""Access links in real headless Chromium: the pages keep the token out of the address bar,
present it on every request, and say in plain words when they have none or it is refused."""

from __future__ import annotations

import os
from typing import Any

import aiohttp
import pytest
from auth import AUTH_HEADERS
from browser import (
    BROWSER_TESTS,
    open_camera,
    open_monitor,
    page_link,
    tile_is_live,
)
from harness import wait_for

pytestmark = BROWSER_TESTS

NEEDS_LINK = "This page needs an access link"
EXPIRED = "Your access link has expired"
NOT_ALLOWED = "This link does not allow"
# the element each page says it in, and its debug stats
PAGES = {
    "/camera": ("#message", "window.komiCamera"),
    "/monitor": ("#access", "window.komiMonitor"),
}


async def _mint(url: str, role: str, **fields: Any) -> dict:
    """POST /tokens as the admin: {"token", "expires_at", "token_id"}."""
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.post(f"{url}/tokens", json={"role": role, **fields}) as response:
            assert response.status == 200, await response.text()
            return await response.json()


async def _revoke(url: str, token_id: str) -> None:
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.delete(f"{url}/tokens/{token_id}") as response:
            assert response.status == 200, await response.text()


async def _status(url: str, path: str, token: str) -> int:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.get(f"{url}{path}") as response:
            return response.status


async def _until_refused(url: str, token: str, timeout: float = 10.0) -> None:
    """Wait until the server itself refuses `token` (its expiry is whole seconds)."""

    async def refused() -> bool:
        return await _status(url, "/config.json", token) == 401

    await wait_for(refused, timeout, interval=0.1, what="the token refused")


async def _cameras(url: str) -> list[str]:
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.get(f"{url}/cameras") as response:
            assert response.status == 200
            return (await response.json())["cameras"]


class _Watched:
    """Every /offer request and WebSocket a page makes."""

    def __init__(self, page: Any) -> None:
        self.offers: list[str] = []
        self.sockets: list[str] = []
        page.on("request", lambda r: "/offer" in r.url and self.offers.append(r.url))
        page.on("websocket", lambda ws: self.sockets.append(ws.url))


async def _refused_page(browser: Any, url: str, path: str, token: str | None, **params: str):
    """Open a page that should be refused; wait until it has said so: (context, page,
    watched, the refusal kind it reports, the words it shows)."""
    selector, stats = PAGES[path]
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    watched = _Watched(page)
    await page.goto(page_link(url, path, token, **params))
    await page.wait_for_function(f"{stats} && {stats}.access !== null", timeout=15000)
    kind = await page.evaluate(f"{stats}.access")
    assert await page.locator(selector).is_visible()
    return context, page, watched, kind, await page.locator(selector).inner_text()


async def test_a_monitor_link_leaves_the_address_bar_and_the_page_survives_a_reload(
    server, browser
):
    minted = await _mint(server.url, "monitor")
    camera_context, _ = await open_camera(browser, server.url, "access_cam")
    context, page = await open_monitor(browser, server.url, token=minted["token"])
    try:
        await tile_is_live(page, "access_cam")
        assert page.url == f"{server.url}/monitor", "the token is still in the address bar"
        stored = await page.evaluate("sessionStorage.getItem('komi.token')")
        assert stored == minted["token"]
        # the address has no token now: the page takes it from sessionStorage
        await page.reload()
        await tile_is_live(page, "access_cam")
        assert await page.evaluate("window.komiMonitor.access") is None
        assert not await page.locator("#access").is_visible()
        # choosing an exercise presents the token too: the server analyses it
        await page.select_option(".tile select.exercise", "squat")
        await page.locator(".tile .analysis").wait_for(state="visible", timeout=15000)
        assert "Squat" in await page.locator(".tile .analysis").inner_text()
    finally:
        await context.close()
        await camera_context.close()


@pytest.mark.parametrize("path", ["/camera", "/monitor"])
async def test_a_page_without_a_token_says_it_needs_an_access_link(
    server, browser, artifacts_dir, path
):
    params = {"autostart": "1", "camera_id": "no_token_cam"} if path == "/camera" else {}
    context, page, watched, kind, text = await _refused_page(
        browser, server.url, path, None, **params
    )
    try:
        assert kind == "needed"
        assert text.startswith(NEEDS_LINK), text
        assert "printed when it started" in text
        assert not watched.offers and not watched.sockets, "a refused page connected"
        if path == "/camera":
            assert await page.evaluate("document.querySelector('#preview').srcObject") is None
            assert await page.locator("#state").inner_text() == "no access"
        assert "no_token_cam" not in await _cameras(server.url)
        name = path.strip("/")
        await page.screenshot(path=os.path.join(artifacts_dir, f"{name}_page_needs_link.png"))
        # in Korean too, after a switch
        await page.click("#language")
        selector = PAGES[path][0]
        await page.wait_for_function(
            f"document.querySelector('{selector}').textContent.includes('접속 링크가 필요합니다')",
            timeout=5000,
        )
        await page.screenshot(path=os.path.join(artifacts_dir, f"{name}_page_needs_link_ko.png"))
    finally:
        await context.close()


async def test_an_expired_link_says_it_has_expired(server, browser):
    minted = await _mint(server.url, "camera", ttl_s=1)
    await _until_refused(server.url, minted["token"])
    for path in ("/camera", "/monitor"):
        params = {"autostart": "1", "camera_id": "expired_cam"} if path == "/camera" else {}
        context, page, watched, kind, text = await _refused_page(
            browser, server.url, path, minted["token"], **params
        )
        try:
            assert kind == "expired", path
            assert text.startswith(EXPIRED), text
            assert not watched.offers and not watched.sockets, path
            assert page.url == page_link(server.url, path, None, **params)
        finally:
            await context.close()


async def test_a_revoked_link_stops_the_pages_and_says_so(server, browser):
    monitor_token = await _mint(server.url, "monitor")
    camera_token = await _mint(server.url, "camera")
    camera_context, camera = await open_camera(
        browser, server.url, "revoked_cam", token=camera_token["token"]
    )
    monitor_context, monitor = await open_monitor(browser, server.url, token=monitor_token["token"])
    try:
        await tile_is_live(monitor, "revoked_cam")
        await _revoke(server.url, monitor_token["token_id"])
        await _revoke(server.url, camera_token["token_id"])
        # the monitor, reloaded, has its token from sessionStorage: refused
        watched = _Watched(monitor)
        await monitor.reload()
        await monitor.wait_for_function("window.komiMonitor.access === 'expired'", timeout=15000)
        assert (await monitor.locator("#access").inner_text()).startswith(EXPIRED)
        assert not watched.sockets and not watched.offers
        assert await monitor.locator(".tile").count() == 0
        # the camera, connecting again, is refused once and stops: no retries
        watched = _Watched(camera)
        await camera.click("#disconnect")
        await camera.click("#connect")
        await camera.wait_for_function("window.komiCamera.access === 'expired'", timeout=15000)
        assert (await camera.locator("#message").inner_text()).startswith(EXPIRED)
        assert await camera.evaluate("window.komiCamera.state") == "no_access"
        assert await camera.locator("#connect").is_enabled()
        assert len(watched.offers) == 1
        assert "revoked_cam" not in await _cameras(server.url)
    finally:
        await monitor_context.close()
        await camera_context.close()


async def test_a_link_for_something_else_says_it_does_not_allow_it(server, browser):
    camera_token = (await _mint(server.url, "camera"))["token"]
    monitor_token = (await _mint(server.url, "monitor"))["token"]
    # a camera link on the monitor page: it may not list or watch cameras
    context, _, watched, kind, text = await _refused_page(
        browser, server.url, "/monitor", camera_token
    )
    try:
        assert kind == "forbidden"
        assert text.startswith(NOT_ALLOWED) and "monitor link" in text, text
        assert not watched.sockets
    finally:
        await context.close()
    # a monitor link on the camera page: it may not stream; asked once, then stopped
    context, page, watched, kind, text = await _refused_page(
        browser, server.url, "/camera", monitor_token, autostart="1", camera_id="not_a_cam"
    )
    try:
        assert kind == "forbidden"
        assert text.startswith(NOT_ALLOWED) and "camera link" in text, text
        assert await page.evaluate("window.komiCamera.state") == "no_access"
        assert len(watched.offers) == 2  # as its id, then as the server would name it
        assert "not_a_cam" not in await _cameras(server.url)
    finally:
        await context.close()


async def test_a_camera_link_bound_to_a_camera_streams_as_that_camera(server, browser):
    minted = await _mint(server.url, "camera", camera_id="bound_cam")
    # no camera_id in the link: the page's own (random) id is refused, the link's is used
    context, page = await open_camera(browser, server.url, None, token=minted["token"])
    try:
        assert await page.input_value("#camera-id") == "bound_cam"
        assert await _cameras(server.url) == ["bound_cam"]
        assert page.url == f"{server.url}/camera?autostart=1", "only the token leaves"
        # a camera link may not list the cameras
        assert await _status(server.url, "/cameras", minted["token"]) == 403
        # it may choose its own exercise over its channel
        await page.select_option("#exercise", "squat")
        await page.locator("#analysis").wait_for(state="visible", timeout=15000)
    finally:
        await context.close()

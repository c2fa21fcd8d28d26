"""WHIP and WHEP with code nobody here wrote (issue 26): `@eyevinn/whip-web-client` in
Chromium sending H.264 and VP8 from its fake camera, GStreamer's webrtcbin with x264enc
sending H.264 High through a WHIP exchange, `@eyevinn/webrtc-player` playing `/whep/...` in
Chromium, aiortc's own example page with H264 selected (it posts to `/offer`), and our
monitor page showing an H.264 camera without re-encoding.

`scripts/setup.sh --test` installs what they need: the npm packages (tests/js, bundled here
by esbuild), GStreamer with webrtcbin, x264enc and its Python bindings (Debian), Chromium.
Nothing is downloaded while the tests run; in CI a missing piece fails them."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from auth import ADMIN_TOKEN, AUTH_HEADERS
from browser import (
    BROWSER_TESTS,
    mean_brightness,
    open_monitor,
    tile_is_live,
)
from contract_client import PersonTrack
from harness import wait_for
from whip_client import whip_camera

from komi_rtc.server.app_keys import REGISTRY

pytestmark = BROWSER_TESTS

TESTS = Path(__file__).resolve().parent
JS = TESTS / "js"
# aiortc's examples/server page, unmodified, from its PyPI source package (scripts/setup.sh)
AIORTC_EXAMPLE = TESTS.parent / ".cache" / "aiortc-example"
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, with GStreamer's bindings (python3-gst-1.0)

WHIP_PAGE = """<!doctype html><meta charset="utf-8"><title>WHIP client</title>
<video id="camera" autoplay muted playsinline></video>
<script src="/clients.js"></script>
<script>
// @eyevinn/whip-web-client as its README shows it; its peerConnectionFactory option lets
// this page send one codec, as a hardware encoder would
window.ingest = async (endpoint, token, codec) => {
  const stream = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480}});
  document.getElementById("camera").srcObject = stream;
  const factory = (config) => {
    const pc = new RTCPeerConnection(config);
    const addTrack = pc.addTrack.bind(pc);
    pc.addTrack = (track, ...streams) => {
      const sender = addTrack(track, ...streams);
      const codecs = RTCRtpSender.getCapabilities("video").codecs
        .filter(c => c.mimeType.toLowerCase() === codec.toLowerCase());
      pc.getTransceivers().find(t => t.sender === sender).setCodecPreferences(codecs);
      return sender;
    };
    window.whipPeer = pc;
    return pc;
  };
  const client = new TestClients.WHIPClient({
    endpoint, opts: {iceServers: [], authkey: token}, peerConnectionFactory: factory});
  window.whipClient = client;
  await client.ingest(stream);
  return await client.getResourceUrl();
};
</script>"""

WHEP_PAGE = """<!doctype html><meta charset="utf-8"><title>WHEP player</title>
<video id="player" autoplay muted playsinline style="width: 640px; height: 480px"></video>
<script src="/clients.js"></script>
<script>
// @eyevinn/webrtc-player as its README shows it, with the WHEP adapter
window.play = async (url, token) => {
  const player = new TestClients.WebRTCPlayer({
    video: document.getElementById("player"), type: "whep", iceServers: [],
    mediaConstraints: {videoOnly: true}});
  window.player = player;
  await player.load(new URL(url), "Bearer " + token);
};
</script>"""


@pytest.fixture(scope="module")
def client_bundle() -> Path:
    """The npm clients bundled for the browser (esbuild, from tests/js/node_modules)."""
    esbuild = JS / "node_modules" / ".bin" / "esbuild"
    assert esbuild.exists(), "tests/js/node_modules is missing: run scripts/setup.sh --test"
    out = JS / "dist" / "clients.js"
    subprocess.run(
        [str(esbuild), "clients.js", "--bundle", "--format=iife", "--global-name=TestClients"]
        + [f"--outfile={out}", "--log-level=warning"],
        cwd=JS,
        check=True,
        timeout=60,
    )
    return out


class PageSite:
    """The client pages on a site of their own (another origin than the server's, as a
    WHIP or WHEP web app would be): a real HTTP server on loopback, so Chromium treats it
    as a local page calling a local server."""

    def __init__(self, pages: dict[str, tuple[str, str]]) -> None:
        self._pages = pages  # path -> (content type, body)
        self._server: TestServer | None = None

    async def __aenter__(self) -> PageSite:
        app = web.Application()

        async def page(request: web.Request) -> web.Response:
            kind, body = self._pages.get(request.path, ("", ""))
            if not kind:
                raise web.HTTPNotFound()
            return web.Response(text=body, content_type=kind)

        app.router.add_get("/{name}", page)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return self

    @property
    def origin(self) -> str:
        assert self._server is not None
        return str(self._server.make_url("")).rstrip("/")

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            await self._server.close()


async def _status_updates(url: str, camera_id: str, count: int, timeout: float = 25) -> list:
    """`/ws/monitor`'s status updates of one camera: the camera is analysed."""
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.ws_connect(f"{url}/ws/monitor") as ws:
            seen: list[dict] = []
            async with asyncio.timeout(timeout):
                while len(seen) < count:
                    message = await ws.receive_json()
                    if message.get("type") == "status_update" and message["camera_id"] == camera_id:
                        seen.append(message)
            return seen


def _server_errors(page: Any, server_url: str) -> list[str]:
    """What went wrong between the page and our server: an answer of 400 or more, a
    request that failed, an uncaught exception (the clients' own console chatter aside)."""
    errors: list[str] = []
    page.on(
        "response",
        lambda r: (
            r.url.startswith(server_url)
            and r.status >= 400
            and errors.append(f"{r.request.method} {r.url}: {r.status}")
        ),
    )
    page.on(
        "requestfailed",
        lambda r: r.url.startswith(server_url) and errors.append(f"{r.url}: {r.failure}"),
    )
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    return errors


@pytest.mark.parametrize("codec", ["video/H264", "video/VP8"])
async def test_eyevinn_whip_web_client_streams_from_chromium_and_is_analysed(
    start_server, browser, client_bundle, codec, caplog
):
    caplog.set_level(logging.INFO, logger="komi_rtc.server")
    site = PageSite(
        {
            "/whip.html": ("text/html", WHIP_PAGE),
            "/clients.js": ("text/javascript", client_bundle.read_text()),
        }
    )
    async with site:
        running = await start_server(allow_origins=(site.origin,))
        camera_id = f"whipweb_{codec[6:].lower()}"
        context = await browser.new_context()
        try:
            page = await context.new_page()
            errors = _server_errors(page, running.url)
            patches: list[int] = []
            page.on(
                "response",
                lambda r: r.request.method == "PATCH" and patches.append(r.status),
            )
            await page.goto(f"{site.origin}/whip.html")
            resource = await page.evaluate(
                "([e, t, c]) => ingest(e, t, c)",
                [f"{running.url}/whip/{camera_id}", ADMIN_TOKEN, codec],
            )
            # the client read Location: CORS exposes it
            assert resource.startswith(f"{running.url}/whip/{camera_id}/"), resource
            updates = await _status_updates(running.url, camera_id, 5)
            assert sum(bool(u["pose_data"]["pose"]) for u in updates) >= 3, "the person is seen"
            session = running.app[REGISTRY].get(camera_id)
            assert session.video_tap is not None and session.video_tap.codec == codec
            assert await page.evaluate("whipPeer.connectionState") == "connected"
            assert patches and set(patches) == {204}, patches  # it trickled its candidates
            await page.evaluate("whipClient.destroy()")  # its DELETE ends the camera
            await wait_for(lambda: camera_id not in running.app[REGISTRY].ids(), timeout=10)
            assert not errors, errors
        finally:
            await context.close()
            await running.server.close()


async def test_gstreamer_webrtcbin_sends_h264_high_through_a_whip_exchange(
    server, person_y4m, caplog
):
    caplog.set_level(logging.INFO, logger="komi_rtc.server")
    process = await asyncio.create_subprocess_exec(
        SYSTEM_PYTHON,
        str(TESTS / "gst_whip_camera.py"),
        f"{server.url}/whip/gst_cam",
        ADMIN_TOKEN,
        str(person_y4m),
        "12",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
    )
    try:
        events: list[dict] = []

        async def read_events() -> None:
            assert process.stdout is not None
            async for line in process.stdout:
                events.append(json.loads(line))

        reader = asyncio.ensure_future(read_events())
        await wait_for(lambda: events, timeout=20)
        assert events[0]["event"] == "answered" and events[0]["status"] == 201, events
        assert "H264" in events[0]["codec"], events
        # the first second's updates (a loaded suite run once had no pose in the first 5;
        # quiet and beside five busy loops every update has one)
        updates = await _status_updates(server.url, "gst_cam", 12)
        print("poses in the first status updates:", [bool(u["pose_data"]["pose"]) for u in updates])
        assert sum(bool(u["pose_data"]["pose"]) for u in updates) >= 3, "the person is seen"
        stats = server.app[REGISTRY].get("gst_cam").stats
        assert stats.frames_analysed >= 5
        assert any(
            "gst_cam] camera connected over WebRTC, sending H264" in r.getMessage()
            for r in caplog.records
        )
        await asyncio.wait_for(process.wait(), timeout=25)
        await reader
        assert {"event": "deleted", "status": 200} in events, events
        await wait_for(lambda: "gst_cam" not in server.app[REGISTRY].ids(), timeout=10)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        if process.returncode not in (0, None):
            assert process.stderr is not None
            print((await process.stderr.read()).decode(errors="replace")[-3000:])


async def test_eyevinn_webrtc_player_plays_whep_in_chromium(
    start_server, browser, client_bundle, caplog
):
    caplog.set_level(logging.INFO, logger="komi_rtc.server")
    site = PageSite(
        {
            "/whep.html": ("text/html", WHEP_PAGE),
            "/clients.js": ("text/javascript", client_bundle.read_text()),
        }
    )
    async with site:
        running = await start_server(allow_origins=(site.origin,))
        camera = await whip_camera(running.url, "whep_cam", PersonTrack(fps=15), "video/H264")
        context = await browser.new_context()
        try:
            await _status_updates(running.url, "whep_cam", 1)
            page = await context.new_page()
            errors = _server_errors(page, running.url)
            await page.goto(f"{site.origin}/whep.html")
            await page.evaluate(
                "([u, t]) => play(u, t)", [f"{running.url}/whep/whep_cam", ADMIN_TOKEN]
            )
            await page.wait_for_function(
                """() => { const v = document.getElementById("player");
                           return v.videoWidth === 640 && v.currentTime > 1; }""",
                timeout=20000,
            )
            assert any(
                "connected (video forwarded) in H264" in r.getMessage() for r in caplog.records
            ), "Chromium gets the camera's own H.264"
            png = await page.locator("#player").screenshot()
            assert 40 < mean_brightness(png) < 200, "the person, not a black frame"
            assert not errors, errors
        finally:
            await context.close()
            await camera.close()
            await running.server.close()


async def test_aiortcs_example_page_streams_h264_to_offer(server, browser, caplog):
    """aiortc's examples/server page, unmodified (.cache/aiortc-example, from PyPI), served
    at our origin with H264 selected and the token in an Authorization header."""
    caplog.set_level(logging.INFO, logger="komi_rtc.server")
    context = await browser.new_context(extra_http_headers=AUTH_HEADERS)
    try:

        async def serve(route: Any) -> None:
            name = route.request.url.rsplit("/", 1)[1] or "index.html"
            path = AIORTC_EXAMPLE / name
            kind = "text/html" if name.endswith(".html") else "text/javascript"
            await route.fulfill(status=200, content_type=kind, body=path.read_text())

        await context.route(f"{server.url}/aiortc-example/**", serve)
        page = await context.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), asyncio.ensure_future(d.dismiss())))
        await page.goto(f"{server.url}/aiortc-example/index.html")
        await page.check("#use-video")
        await page.select_option("#video-codec", "H264/90000")
        await page.select_option("#video-resolution", "640x480")
        before = set(server.app[REGISTRY].ids())
        await page.click("#start")
        await wait_for(lambda: set(server.app[REGISTRY].ids()) - before, timeout=20)
        (camera_id,) = set(server.app[REGISTRY].ids()) - before
        updates = await _status_updates(server.url, camera_id, 5)
        assert sum(bool(u["pose_data"]["pose"]) for u in updates) >= 3
        answer = await page.text_content("#answer-sdp")
        assert "H264/90000" in answer and "VP8" not in answer
        assert any("sending H264" in r.getMessage() for r in caplog.records)
        assert not dialogs, dialogs
    finally:
        await context.close()


async def test_our_monitor_page_shows_an_h264_camera_without_reencoding(server, browser, caplog):
    caplog.set_level(logging.INFO, logger="komi_rtc.server")
    camera = await whip_camera(server.url, "h264_tile", PersonTrack(fps=15), "video/H264")
    try:
        context, page = await open_monitor(browser, server.url)
        try:
            await tile_is_live(page, "h264_tile")
            assert any(
                "connected (video forwarded) in H264" in r.getMessage() for r in caplog.records
            ), [r.getMessage() for r in caplog.records if "monitor" in r.getMessage()]
        finally:
            await context.close()
    finally:
        await camera.close()


def test_the_clients_are_installed():
    """CI fails, not skips, when setup did not install a client."""
    assert (JS / "node_modules" / "@eyevinn" / "whip-web-client").is_dir()
    assert (JS / "node_modules" / "@eyevinn" / "webrtc-player").is_dir()
    assert (AIORTC_EXAMPLE / "client.js").is_file()
    assert shutil.which("node") is not None
    check = subprocess.run(
        [
            SYSTEM_PYTHON,
            "-c",
            "import gi; gi.require_version('Gst', '1.0'); "
            "from gi.repository import Gst; Gst.init(None); "
            "print(all(Gst.ElementFactory.find(n) for n in "
            "('webrtcbin', 'x264enc', 'nicesrc', 'rtph264pay', 'y4mdec')))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.stdout.strip() == "True", check.stderr or "a GStreamer element is missing"

"""Access control (design.md, "Access control"): tokens, roles, origins, minting, revoking.

Every endpoint the app routes is checked from its own route table, so an endpoint added
later without a rule is caught here (and answers admin-only until it gets one).
"""

from __future__ import annotations

import asyncio
import os

import aiohttp
import pytest
from auth import ADMIN_TOKEN, AUTH_HEADERS
from contract_client import PersonTrack, connect_camera, connect_monitor, post_offer
from harness import wait_for

from komi_rtc.server.access import TokenAuthority, load_admin_token
from komi_rtc.server.app_keys import RULES
from komi_rtc.server.config import ServerConfig
from komi_rtc.server.middleware import Rule
from komi_rtc.server.start_banner import Links, start_banner

FOREIGN = "http://evil.example"


def _concrete(path: str) -> str:
    """A real URL for a route: every {placeholder} filled with a valid id."""
    import re

    return re.sub(r"\{[a-z_]+\}", "id_a1", path)


def _protected(app) -> list[tuple[str, str, Rule]]:
    return [(m, p, r) for (m, p), r in app[RULES].items() if r is not Rule.PUBLIC]


async def _status(http, method: str, url: str, **kwargs) -> tuple[int, dict]:
    async with http.request(method, url, **kwargs) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        if response.content_type.startswith("text/"):
            return response.status, {"html": await response.text()}
        return response.status, {"bytes": await response.read()}


async def mint(url: str, **body) -> dict:
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.post(f"{url}/tokens", json=body) as response:
            assert response.status == 200, await response.text()
            return await response.json()


async def test_every_endpoint_and_websocket_refuses_a_tokenless_client(server):
    routes = _protected(server.app)
    assert len(routes) >= 14, routes
    async with aiohttp.ClientSession() as http:
        for method, path, rule in routes:
            status, body = await _status(http, method, server.url + _concrete(path))
            assert status == 401, (method, path, status, body)
            if rule not in (Rule.PAGE, Rule.MONITOR_PAGE, Rule.HISTORY_PAGE):
                assert "token" in body["error"], (path, body)
        for path in ("/ws/monitor", "/ws/camera"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(server.url + path)
            assert refused.value.status == 401
        # a bad token and a token in the wrong place are no better
        status, _ = await _status(
            http, "GET", f"{server.url}/cameras", headers={"Authorization": "Bearer nope"}
        )
        assert status == 401
        status, _ = await _status(
            http, "GET", f"{server.url}/cameras", headers={"Authorization": f"Basic {ADMIN_TOKEN}"}
        )
        assert status == 401
        # public: the landing page (no data), static files, /healthz
        for path in ("/", "/healthz", "/static/style.css", "/favicon.ico"):
            status, body = await _status(
                http, "GET", server.url + path, headers={"Accept": "application/json"}
            )
            assert status == 200, path
        status, body = await _status(
            http, "GET", server.url + "/", headers={"Accept": "application/json"}
        )
        assert "cameras" not in body and body["access"] == "token"


async def test_every_endpoint_and_websocket_refuses_a_foreign_origin_even_with_a_token(server):
    async with aiohttp.ClientSession(headers={**AUTH_HEADERS, "Origin": FOREIGN}) as http:
        for method, path, _rule in _protected(server.app):
            status, body = await _status(http, method, server.url + _concrete(path))
            assert status == 403, (method, path, status)
            if "error" in body:
                assert "origin" in body["error"]
        for path in ("/ws/monitor", "/ws/camera"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(server.url + path)
            assert refused.value.status == 403
    # the server's own origin and --allow-origin ones are welcome
    async with aiohttp.ClientSession(headers={**AUTH_HEADERS, "Origin": server.url}) as http:
        status, _ = await _status(http, "GET", f"{server.url}/cameras")
        assert status == 200
        async with http.ws_connect(f"{server.url}/ws/monitor") as ws:
            assert (await ws.receive_json(timeout=5))["type"] == "cameras_list"
    allowed = await _start(server, allow_origins=("https://gym.example",))
    async with aiohttp.ClientSession(
        headers={**AUTH_HEADERS, "Origin": "https://gym.example"}
    ) as http:
        status, _ = await _status(http, "GET", f"{allowed.url}/cameras")
        assert status == 200


async def test_cors_answers_only_the_allowed_other_origins(server):
    """Preflights and answers carry Access-Control-Allow-Origin for an --allow-origin page
    (in a cluster: every node's), and for nobody else."""
    allowed = await _start(server, allow_origins=("https://gym.example",))
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    async with aiohttp.ClientSession() as http:
        async with http.options(
            f"{allowed.url}/offer", headers={**preflight, "Origin": "https://gym.example"}
        ) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == "https://gym.example"
            assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
            assert "POST" in response.headers["Access-Control-Allow-Methods"]
        async with http.options(
            f"{allowed.url}/offer", headers={**preflight, "Origin": FOREIGN}
        ) as response:
            assert response.status == 403 and "origin" in (await response.json())["error"]
            assert "Access-Control-Allow-Origin" not in response.headers
        for origin, expected in (("https://gym.example", "https://gym.example"), (FOREIGN, None)):
            async with http.get(
                f"{allowed.url}/cameras", headers={**AUTH_HEADERS, "Origin": origin}
            ) as response:
                assert response.headers.get("Access-Control-Allow-Origin") == expected
                assert "Origin" in response.headers["Vary"]
                assert response.status == (200 if expected else 403)
    # the server's own pages need no CORS: none is sent
    async with aiohttp.ClientSession(headers={**AUTH_HEADERS, "Origin": server.url}) as http:
        async with http.get(f"{server.url}/cameras") as response:
            assert response.status == 200
            assert "Access-Control-Allow-Origin" not in response.headers


def test_a_node_s_page_origin_is_its_public_url_s_as_a_browser_writes_it():
    from komi_rtc.server.cluster import url_origin

    assert url_origin("http://10.0.0.11:8000/") == "http://10.0.0.11:8000"
    assert url_origin("https://Node1.Gym.example:443") == "https://node1.gym.example"
    assert url_origin("http://node1:80/komi") == "http://node1"
    assert url_origin("https://[::1]:8443") == "https://[::1]:8443"
    assert url_origin("ftp://node1") is None and url_origin("http://node1:99999") is None


async def _start(server, **overrides):
    """A second server in the same test (the start_server fixture stops it)."""
    return await server.start(**overrides)


@pytest.fixture
def server(server, start_server):  # type: ignore[no-redef]
    server.start = start_server
    return server


async def test_a_cross_site_simple_post_changes_nothing(server):
    """The attack from the issue: a text/plain POST from another page reset a count."""
    camera = await connect_camera(server.url, PersonTrack(), "cam_csrf")
    try:
        await camera.next_message("frame_processed")
        async with aiohttp.ClientSession() as http:
            for headers in (
                {"Origin": FOREIGN, "Content-Type": "text/plain"},  # a form post: no token
                {"Origin": FOREIGN, "Content-Type": "text/plain", **AUTH_HEADERS},
            ):
                async with http.post(
                    f"{server.url}/cameras/cam_csrf/exercise",
                    data='{"exercise": "push_up"}',
                    headers=headers,
                ) as response:
                    assert response.status in (401, 403)
            async with http.get(f"{server.url}/stats", headers=AUTH_HEADERS) as response:
                assert (await response.json())["cameras"]["cam_csrf"]["exercise"] is None
    finally:
        await camera.close()


async def test_monitor_token_watches_and_sets_exercises_but_mints_no_monitors(server):
    token = (await mint(server.url, role="monitor"))["token"]
    headers = {"Authorization": f"Bearer {token}"}
    camera = await connect_camera(server.url, PersonTrack(), "cam_watched")
    try:
        async with aiohttp.ClientSession(headers=headers) as http:
            status, body = await _status(http, "GET", f"{server.url}/cameras")
            assert status == 200 and body["cameras"] == ["cam_watched"]
            status, _ = await _status(
                http,
                "POST",
                f"{server.url}/cameras/cam_watched/exercise",
                json={"exercise": "squat"},
            )
            assert status == 200
            status, body = await _status(
                http, "POST", f"{server.url}/tokens", json={"role": "monitor"}
            )  # a monitor hands out camera and person links, never monitor links
            assert status == 403 and "monitor" in body["error"]
            async with http.ws_connect(f"{server.url}/ws/monitor?token={token}") as ws:
                assert (await ws.receive_json(timeout=5))["cameras"] == ["cam_watched"]
        monitor = await connect_monitor(server.url, "cam_watched", token)
        await monitor.next_message("frame_processed")
        await monitor.close()
        # a monitor token may not stream
        status, body = await post_offer(
            server.url, {"sdp": "v=0\r\n", "type": "offer", "role": "camera"}, token
        )
        assert status == 403
    finally:
        await camera.close()


async def test_a_bound_camera_token_streams_as_its_camera_only(server):
    minted = await mint(server.url, role="camera", camera_id="cam_mine")
    token = minted["token"]
    other = await connect_camera(server.url, PersonTrack(), "cam_other")
    mine = await connect_camera(server.url, PersonTrack(), token=token)  # no id: its own
    try:
        assert mine.camera_id == "cam_mine"
        await mine.next_message("frame_processed")
        mine.send({"type": "set_exercise", "exercise": "squat"})  # its own: allowed
        assert (await mine.next_message("exercise_set"))["exercise"] == "squat"
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            for method, path, kwargs in (
                ("GET", "/cameras", {}),
                ("GET", "/stats", {}),
                ("GET", "/get-image/cam_other", {}),
                ("GET", "/latest_image/cam_other", {}),
                ("POST", "/cameras/cam_other/exercise", {"json": {"exercise": "squat"}}),
                ("POST", "/tokens", {"json": {"role": "camera"}}),
                ("GET", "/monitor", {}),
            ):
                status, _ = await _status(http, method, server.url + path, **kwargs)
                assert status == 403, (method, path, status)
            # its own camera's results and controls are its own
            for method, path, kwargs in (
                ("GET", "/get-image/cam_mine", {}),
                ("GET", "/latest_image/cam_mine", {}),
                ("POST", "/cameras/cam_mine/exercise", {"json": {"exercise": "push_up"}}),
                ("GET", "/exercises", {}),
                ("GET", "/config.json", {}),
                ("GET", "/camera", {}),
            ):
                status, _ = await _status(http, method, server.url + path, **kwargs)
                assert status == 200, (method, path, status)
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(f"{server.url}/ws/monitor")
            assert refused.value.status == 403
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(f"{server.url}/ws/camera?camera_id=cam_other")
            assert refused.value.status == 403
        for body in (
            {"role": "camera", "camera_id": "cam_squat"},  # stream as another id
            {"role": "monitor", "camera_id": "cam_other"},  # watch another camera
        ):
            status, answer = await post_offer(
                server.url, {"sdp": "v=0\r\n", "type": "offer", **body}, token
            )
            assert status == 403, (body, answer)
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
            status, body = await _status(http, "GET", f"{server.url}/cameras")
            assert body["cameras"] == ["cam_mine", "cam_other"]
    finally:
        await mine.close()
        await other.close()


async def test_the_offer_body_may_carry_the_token(server):
    from aiortc import RTCPeerConnection

    token = (await mint(server.url, role="camera"))["token"]
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="sendonly")
    pc.createDataChannel("komi")
    await pc.setLocalDescription(await pc.createOffer())
    try:
        async with aiohttp.ClientSession() as http:
            body = {"sdp": pc.localDescription.sdp, "type": "offer", "role": "camera"}
            async with http.post(f"{server.url}/offer", json=body) as response:
                assert response.status == 401
            async with http.post(f"{server.url}/offer", json={**body, "token": token}) as response:
                assert response.status == 200, await response.text()
                assert (await response.json())["type"] == "answer"
    finally:
        await pc.close()


async def test_tokens_expire_and_revoked_tokens_stay_revoked_across_a_restart(
    start_server, tmp_path
):
    running = await start_server(state_dir=tmp_path)
    short = await mint(running.url, role="monitor", ttl_s=1)
    kept = await mint(running.url, role="monitor", ttl_s=3600)
    assert kept["expires_at"] > short["expires_at"] and set(kept) == {
        "token",
        "expires_at",
        "token_id",
    }

    async def status_with(url: str, token: str) -> tuple[int, dict]:
        async with aiohttp.ClientSession() as http:
            return await _status(
                http, "GET", f"{url}/cameras", headers={"Authorization": f"Bearer {token}"}
            )

    assert (await status_with(running.url, kept["token"]))[0] == 200
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        status, body = await _status(http, "DELETE", f"{running.url}/tokens/{kept['token_id']}")
        assert status == 200 and body == {
            "revoked": kept["token_id"],
            "closed_connections": 0,
            "revoked_children": [],
        }
    status, body = await status_with(running.url, kept["token"])
    assert status == 401 and "revoked" in body["error"]
    expired: list[tuple[int, dict]] = []

    async def refused() -> bool:  # the token's clock is whole seconds
        expired.append(await status_with(running.url, short["token"]))
        return expired[-1][0] != 200

    await wait_for(refused, interval=0.2, what="the short token refused")
    assert expired[-1][0] == 401 and "expired" in expired[-1][1]["error"]
    await running.server.close()
    again = await start_server(state_dir=tmp_path)
    status, body = await status_with(again.url, kept["token"])
    assert status == 401 and "revoked" in body["error"]


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"role": "admin"}, "role"),
        ({"role": "superuser"}, "role"),
        ({}, "role"),
        ({"role": "monitor", "camera_id": "cam_a"}, "camera token"),
        ({"role": "camera", "camera_id": "../etc"}, "camera_id"),
        ({"role": "camera", "ttl_s": -5}, "ttl_s"),
        ({"role": "camera", "ttl_s": "soon"}, "ttl_s"),
        ({"role": "camera", "ttl_s": 10**12}, "ttl_s"),
    ],
)
async def test_minting_refuses_bad_requests_clearly(server, body, fragment):
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        status, answer = await _status(http, "POST", f"{server.url}/tokens", json=body)
    assert status == 400 and fragment in answer["error"], answer


async def test_pages_without_a_token_answer_401_with_the_page_that_explains(server):
    async with aiohttp.ClientSession() as http:
        for page in ("/camera", "/monitor"):
            status, body = await _status(http, "GET", server.url + page)
            assert status == 401 and "<html" in body["html"].lower()
            status, body = await _status(http, "GET", f"{server.url}{page}?token={ADMIN_TOKEN}")
            assert status == 200


async def test_open_mode_needs_no_token_and_says_so_loudly(start_server):
    running = await start_server(open_access=True)
    async with aiohttp.ClientSession() as http:
        status, body = await _status(http, "GET", f"{running.url}/cameras")
        assert status == 200
        status, body = await _status(
            http, "GET", f"{running.url}/", headers={"Accept": "application/json"}
        )
        assert body["access"] == "open"
        # even open, another site's page may not drive it
        status, _ = await _status(
            http,
            "POST",
            f"{running.url}/cameras/x/exercise",
            headers={"Origin": FOREIGN},
            json={},
        )
        assert status == 403
    banner = start_banner(ServerConfig(open_access=True, host="127.0.0.1"), Links(None, 60))
    assert "ACCESS CONTROL IS OFF" in banner and "?token=" not in banner


def test_the_banner_links_carry_working_tokens(tmp_path):
    config = ServerConfig(host="127.0.0.1", state_dir=tmp_path, https=True)
    admin = load_admin_token(None, None, tmp_path)
    authority = TokenAuthority(admin)
    banner = start_banner(config, Links(authority, 3600))
    monitor = banner.split("/monitor?token=")[1].split()[0]
    camera = banner.split("/camera?token=")[1].split()[0]
    assert authority.check(monitor).role == "monitor"
    grant = authority.check(camera)
    assert grant.role == "camera" and grant.camera_id is None  # pairing: any phone, own id
    assert f"admin token (new; keep it secret; it mints links with POST /tokens): {admin}" in banner


def test_the_admin_token_comes_from_the_environment_a_file_or_the_state_dir(tmp_path):
    assert load_admin_token("x" * 20, None, tmp_path) == "x" * 20
    token_file = tmp_path / "given"
    token_file.write_text("from-a-file-0123456789\n")
    assert load_admin_token(None, token_file, tmp_path) == "from-a-file-0123456789"
    state = tmp_path / "state"
    made = load_admin_token(None, None, state)
    assert len(made) >= 32 and load_admin_token(None, None, state) == made  # kept
    assert (os.stat(state / "admin_token").st_mode & 0o777) == 0o600
    with pytest.raises(ValueError):
        TokenAuthority("short")
    # tokens of one admin token mean nothing to a server with another
    one, two = TokenAuthority("a" * 32), TokenAuthority("b" * 32)
    with pytest.raises(Exception) as refused:
        two.check(one.mint("monitor")["token"])
    assert getattr(refused.value, "status", None) == 401


async def test_the_camera_peer_stops_with_a_clear_message_when_refused(server):
    from komi_rtc.camera.peer import AccessRefused, CameraPeer, status_line
    from komi_rtc.media.video_sources import open_source

    peer = CameraPeer(server.url, "cam_x", open_source("demo", 320, 240, 5), fps=5, token=None)
    try:
        with pytest.raises(AccessRefused):
            await asyncio.wait_for(peer.run(), 30)
        assert "401" in peer.status.problem and "--token" in peer.status.problem
        # its status line says why, not that it tries again: it does not
        assert status_line(peer) == f"[cam_x] {peer.status.problem}"
    finally:
        await peer.close()


async def test_revoking_a_token_ends_what_it_is_watching_and_streaming_now(server):
    watcher = await mint(server.url, role="monitor")
    streamer = await mint(server.url, role="camera")
    bystander_token = await mint(server.url, role="monitor")
    camera = await connect_camera(server.url, PersonTrack(), "cam_revoked", streamer["token"])
    other = await connect_camera(server.url, PersonTrack(), "cam_stays")
    monitor = await connect_monitor(server.url, "cam_stays", watcher["token"])
    bystander = await connect_monitor(server.url, "cam_stays", bystander_token["token"])
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{server.url}/ws/monitor?token={watcher['token']}")
        try:
            await monitor.next_message("frame_processed")
            async with aiohttp.ClientSession(headers=AUTH_HEADERS) as admin:
                for minted, count in ((watcher, 2), (streamer, 1)):
                    async with admin.delete(f"{server.url}/tokens/{minted['token_id']}") as r:
                        body = await r.json()
                        assert body == {
                            "revoked": minted["token_id"],
                            "closed_connections": count,
                            "revoked_children": [],
                        }
            await wait_for(lambda: monitor.pc.connectionState == "closed", timeout=15)
            await wait_for(lambda: camera.pc.connectionState == "closed", timeout=15)
            while (await ws.receive(timeout=5)).type == aiohttp.WSMsgType.TEXT:
                pass
            assert ws.closed
            await bystander.next_message("frame_processed")  # other tokens keep watching
        finally:
            await ws.close()
            for peer in (camera, other, monitor, bystander):
                await peer.close()

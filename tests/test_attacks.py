"""Hostile input (issue 11's attack list): each attack fails with the right status or
error message, and the server keeps serving everyone else."""

from __future__ import annotations

import asyncio
import base64
import urllib.error
import urllib.request

import aiohttp
import cv2
import numpy as np
import psutil
import pytest
from auth import AUTH_HEADERS
from contract_client import (
    PersonTrack,
    connect_camera,
    connect_monitor,
    person_jpeg_base64,
    post_offer,
)
from harness import wait_for

from komi_rtc.protocol.image_headers import jpeg_dimensions, vp8_keyframe_dimensions


def bomb_jpeg(width: int, height: int) -> bytes:
    """A valid 16x16 JPEG whose frame header claims width x height: decoding it would
    allocate width*height*3 bytes."""
    data = bytearray(cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8))[1].tobytes())
    i = 2
    while data[i + 1] not in (0xC0, 0xC1, 0xC2):
        i += 2 + ((data[i + 2] << 8) | data[i + 3])
    data[i + 5 : i + 9] = bytes([height >> 8, height & 255, width >> 8, width & 255])
    assert jpeg_dimensions(bytes(data)) == (width, height)
    return bytes(data)


async def _next_of(ws, kind: str, timeout: float = 15.0) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive_json()
            if message.get("type") == kind:
                return message


async def _responsive(url: str) -> None:
    """Another client still gets answers."""
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.get(f"{url}/cameras", timeout=aiohttp.ClientTimeout(total=5)) as r:
            assert r.status == 200


async def test_an_image_bomb_is_refused_from_its_header_without_decoding(server):
    bystander = await connect_camera(server.url, PersonTrack(), "cam_bystander")
    rss_before = psutil.Process().memory_info().rss
    try:
        bomb = base64.b64encode(bomb_jpeg(20000, 20000)).decode()
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
            async with http.ws_connect(f"{server.url}/ws/camera?camera_id=cam_bomb") as ws:
                await _next_of(ws, "connection_successful")
                for _ in range(3):
                    await ws.send_json({"type": "frame", "timestamp": 1.0, "image_data": bomb})
                    error = await _next_of(ws, "error")
                    assert "20000x20000" in error["error"] and "limit" in error["error"]
                # the same connection still works with a sane frame
                await ws.send_json(
                    {"type": "frame", "timestamp": 2.0, "image_data": person_jpeg_base64(1)}
                )
                assert (await _next_of(ws, "frame_processed"))["camera_id"] == "cam_bomb"
        grown_mb = (psutil.Process().memory_info().rss - rss_before) / 2**20
        assert grown_mb < 300, f"memory grew {grown_mb:.0f} MB"  # one decode would be 1.1 GB
        await bystander.next_message("frame_processed")
        await _responsive(server.url)
    finally:
        await bystander.close()


async def test_an_oversized_websocket_message_closes_that_socket_only(start_server):
    running = await start_server(max_ws_message_bytes=1024 * 1024)
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.ws_connect(f"{running.url}/ws/camera") as ws:
            await _next_of(ws, "connection_successful")
            await ws.send_str("x" * (2 * 1024 * 1024))
            message = await ws.receive(timeout=10)
            while message.type == aiohttp.WSMsgType.TEXT:
                message = await ws.receive(timeout=10)
            assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert ws.close_code == 1009  # "message too big"
        async with http.ws_connect(f"{running.url}/ws/monitor") as ws:
            # /ws/monitor only sends: its limit is small
            await ws.send_str("y" * (128 * 1024))
            message = await ws.receive(timeout=10)
            while message.type == aiohttp.WSMsgType.TEXT:
                message = await ws.receive(timeout=10)
            assert ws.close_code == 1009
    await _responsive(running.url)


async def test_a_too_big_request_body_answers_413_json(start_server):
    running = await start_server(max_body_bytes=64 * 1024)
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.post(f"{running.url}/offer", data=b"{" + b" " * 100_000 + b"}") as r:
            assert r.status == 413 and "error" in await r.json()
    await _responsive(running.url)


async def test_a_message_flood_is_cut_to_the_rate_limit_and_told_once(start_server):
    running = await start_server(max_messages_per_s=20)
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.ws_connect(f"{running.url}/ws/camera?camera_id=cam_flood") as ws:
            await _next_of(ws, "connection_successful")
            for i in range(500):
                await ws.send_json({"type": "ping", "t": i})
            await ws.send_json({"type": "frame", "timestamp": 1, "image_data": "!"})
            pongs, errors = 0, []
            async with asyncio.timeout(10):
                while True:
                    message = await ws.receive_json()
                    if message["type"] == "pong":
                        pongs += 1
                    elif message["type"] == "error":
                        errors.append(message["error"])
                        if "too many messages" in message["error"]:
                            break
            assert 0 < pongs <= 60, pongs  # a burst of two seconds' worth at most
            assert sum("too many messages" in e for e in errors) == 1
    await _responsive(running.url)
    camera = await connect_camera(running.url, PersonTrack(), "cam_calm")
    try:
        await camera.next_message("frame_processed")  # the channel is open
        for i in range(200):  # the same flood over a data channel
            camera.send({"type": "ping", "t": i})
        error = await camera.next_message("error")
        assert "too many messages" in error["error"]
        await camera.next_message("frame_processed")
    finally:
        await camera.close()


async def test_capacity_limits_answer_clearly(start_server):
    running = await start_server(
        max_cameras=2, max_monitors_per_camera=1, max_connections_per_address=6
    )
    one = await connect_camera(running.url, PersonTrack(), "cam_one")
    two = await connect_camera(running.url, PersonTrack(), "cam_two")
    watcher = await connect_monitor(running.url, "cam_one")
    try:
        status, answer = await post_offer(
            running.url, {"sdp": "v=0\r\n", "type": "offer", "role": "camera", "camera_id": "c3"}
        )
        assert status == 400 or status == 503  # bad SDP may be seen first; try a real one
        with pytest.raises(AssertionError, match="503.*maximum of 2 cameras"):
            await connect_camera(running.url, PersonTrack(), "cam_three")
        with pytest.raises(AssertionError, match="503.*already has 1 monitors"):
            await connect_monitor(running.url, "cam_one")
        # 3 peers so far from this address; 3 more WebSockets fill it, the next is refused
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
            sockets = [await http.ws_connect(f"{running.url}/ws/monitor") for _ in range(3)]
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(f"{running.url}/ws/monitor")
            assert refused.value.status == 429
            for ws in sockets:
                await ws.close()
            # slots come back when connections end
            async with http.ws_connect(f"{running.url}/ws/monitor") as ws:
                assert (await ws.receive_json(timeout=5))["type"] == "cameras_list"
        await one.next_message("frame_processed")
    finally:
        await watcher.close()
        await one.close()
        await two.close()


async def test_concurrent_offers_beyond_the_limit_are_told_to_retry(start_server):
    from aiortc import RTCPeerConnection

    running = await start_server(max_concurrent_offers=1)
    pcs = []
    bodies = []
    for i in range(4):
        pc = RTCPeerConnection()
        pc.addTransceiver("video", direction="sendonly")
        pc.createDataChannel("komi")
        await pc.setLocalDescription(await pc.createOffer())
        pcs.append(pc)
        bodies.append(
            {
                "sdp": pc.localDescription.sdp,
                "type": "offer",
                "role": "camera",
                "camera_id": f"cam_c{i}",
            }
        )
    try:
        answers = await asyncio.gather(*(post_offer(running.url, b) for b in bodies))
        statuses = sorted(status for status, _ in answers)
        assert 200 in statuses and 503 in statuses, answers
        assert all("retry" in a["error"] for s, a in answers if s == 503)
    finally:
        for pc in pcs:
            await pc.close()


async def test_video_above_the_resolution_cap_is_refused_before_decoding(start_server):
    running = await start_server(max_frame_side=320)
    camera = await connect_camera(running.url, PersonTrack(width=640, height=480), "cam_big")
    try:
        error = await camera.next_message("error", timeout=20)
        assert "640x480" in error["error"] and "limit" in error["error"]
        await wait_for(lambda: camera.pc.connectionState in ("closed", "failed"), timeout=20)
    finally:
        await camera.close()
    small = await connect_camera(running.url, PersonTrack(width=320, height=240), "cam_small")
    try:
        await small.next_message("frame_processed")
    finally:
        await small.close()


def test_vp8_keyframe_size_is_read_from_the_header():
    import av
    from aiortc.codecs.vpx import Vp8Encoder

    frame = av.VideoFrame.from_ndarray(np.zeros((240, 320, 3), np.uint8), format="rgb24")
    frame.pts, frame.time_base = 0, __import__("fractions").Fraction(1, 90000)
    encoder = Vp8Encoder()
    payloads, _ = encoder.encode(frame, force_keyframe=True)
    from aiortc.codecs import depayload, get_decoder  # noqa: F401

    # the first RTP payload starts with the VP8 payload descriptor; depayload it
    from aiortc.codecs.vpx import VpxPayloadDescriptor

    descriptor, data = VpxPayloadDescriptor.parse(payloads[0])
    assert vp8_keyframe_dimensions(data) == (320, 240)
    assert vp8_keyframe_dimensions(b"\x01" + bytes(20)) is None  # an inter frame


async def test_an_id_already_streaming_cannot_be_squatted(server):
    owner = await connect_camera(server.url, PersonTrack(), "cam_owned")
    try:
        await owner.next_message("frame_processed")
        with pytest.raises(AssertionError, match="409"):
            await connect_camera(server.url, PersonTrack(), "cam_owned")
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
            async with http.ws_connect(f"{server.url}/ws/camera?camera_id=cam_owned") as ws:
                error = await _next_of(ws, "error")
                assert "cam_owned" in error["error"]
                await ws.receive(timeout=5)
                assert ws.close_code == 4409
        await owner.next_message("frame_processed")  # the owner never noticed
    finally:
        await owner.close()


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("Content-Type", "")


def test_forged_log_lines_and_huge_urls_leave_one_clean_line_each(server_process, tmp_path):
    """The real server, its real log: a %0a in a URL cannot start a line of its own, and a
    10,000- or 100,000-character URL is refused without a traceback."""
    server = server_process("--workers", "1", "--state-dir", str(tmp_path))
    base = server.url
    forged = "2026-01-01 00:00:00,000 CRITICAL komi_rtc: FORGED admin logged in"
    quoted = urllib.request.quote(forged)
    status, body, kind = _get(f"{base}/get-image/x%0a{quoted}", AUTH_HEADERS)
    assert status == 400 and kind.startswith("application/json")
    status, body, kind = _get(f"{base}/cameras%0d%0a{quoted}", AUTH_HEADERS)
    assert status in (401, 404) and kind.startswith("application/json")
    status, body, kind = _get(f"{base}/cameras?" + "a" * 10_000, AUTH_HEADERS)
    assert status == 414 and b"longer than" in body and kind.startswith("application/json")
    status, _, _ = _get(f"{base}/cameras?" + "a" * 100_000, AUTH_HEADERS)
    assert status == 400
    assert _get(base + "/healthz")[0] == 200
    server.stop()
    text = server.log_text()
    assert "Traceback" not in text, text
    lines = text.splitlines()
    assert not any(line.startswith("2026-01-01") for line in lines), text
    assert any("FORGED" in line and "\\x0a" in line for line in lines), text
    assert any("its URL has 10" in line for line in lines), text
    assert any("unparseable HTTP request refused with 400" in line for line in lines), text


async def test_a_rebound_dns_name_is_refused_even_in_open_mode(start_server):
    """DNS rebinding: a page whose own name now resolves to this server sends Host and
    Origin both naming the attacker; same-origin GETs carry no Origin at all."""
    running = await start_server(open_access=True)
    port = running.url.rsplit(":", 1)[1]
    async with aiohttp.ClientSession() as http:
        for headers in (
            {"Host": f"attacker.example:{port}", "Origin": f"http://attacker.example:{port}"},
            {"Host": f"attacker.example:{port}"},
        ):
            async with http.get(f"{running.url}/cameras", headers=headers) as response:
                assert response.status == 403, headers
                assert "not a name of this server" in (await response.json())["error"]
        async with http.get(f"{running.url}/cameras", headers={"Host": f"localhost:{port}"}) as r:
            assert r.status == 200


async def test_a_slow_body_without_a_token_is_not_waited_for_long(start_server):
    """A client that sends headers and then nothing gets 408 in time, not a held handler."""
    import komi_rtc.server.http_bodies as app_module

    running = await start_server()
    host, port = running.url.split("//")[1].split(":")
    previous = app_module.BODY_TIMEOUT_S
    app_module.BODY_TIMEOUT_S = 0.5
    try:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /offer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readline(), 10)
        assert b" 408 " in head, head
        writer.close()
    finally:
        app_module.BODY_TIMEOUT_S = previous


async def test_garbage_station_members_and_long_static_names_answer_4xx(server):
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.post(
            f"{server.url}/stations/st1", json={"cameras": [{"a": 1}]}
        ) as response:
            assert response.status == 400
        async with http.get(f"{server.url}/static/{'b' * 300}") as response:
            assert response.status == 404

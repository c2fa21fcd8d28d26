"""Every bad input of the contract gets a clear JSON error and harms no other peer."""

from __future__ import annotations

import base64
import json

import aiohttp
import pytest
from auth import AUTH_HEADERS
from contract_client import PersonTrack, connect_camera, person_jpeg_base64, post_offer

GOOD_SDP_PREFIX = "v=0\r\n"


async def _post_raw(url: str, data: bytes, content_type: str = "application/json"):
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.post(
            f"{url}/offer", data=data, headers={"Content-Type": content_type}
        ) as response:
            return response.status, await response.json()


@pytest.mark.parametrize(
    "body, fragment",
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"type": "offer"}', "'sdp'"),
        (b'{"sdp": "hello", "type": "offer"}', "SDP"),
        (b'{"sdp": "v=0\\r\\n", "type": "answer"}', "'type'"),
        (b'{"sdp": "v=0\\r\\n", "type": "offer", "role": "boss"}', "'role'"),
        (b'{"sdp": "v=0\\r\\n", "type": "offer", "camera_id": "bad id/../x"}', "camera_id"),
        (b'{"sdp": "v=0\\r\\n", "type": "offer", "camera_id": 12}', "camera_id"),
        (b'{"sdp": "v=0\\r\\n", "type": "offer", "role": "monitor"}', "camera_id"),
        (b'{"sdp": "v=0\\r\\nthis is not sdp", "type": "offer"}', "video"),
    ],
)
async def test_malformed_offers_answer_400_with_a_json_error(server, body, fragment):
    status, answer = await _post_raw(server.url, body)
    assert status == 400
    assert fragment in answer["error"]


async def test_offer_without_video_is_refused(server):
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    pc.createDataChannel("komi")
    await pc.setLocalDescription(await pc.createOffer())
    status, answer = await post_offer(
        server.url, {"sdp": pc.localDescription.sdp, "type": "offer", "role": "camera"}
    )
    await pc.close()
    assert status == 400
    assert "video" in answer["error"]
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.get(f"{server.url}/cameras") as response:
            assert (await response.json())["cameras"] == []


async def test_monitor_of_unknown_camera_is_404(server):
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    status, answer = await post_offer(
        server.url,
        {
            "sdp": pc.localDescription.sdp,
            "type": "offer",
            "role": "monitor",
            "camera_id": "camera_nobody",
        },
    )
    await pc.close()
    assert status == 404
    assert "camera_nobody" in answer["error"]


async def test_duplicate_camera_id_is_409_and_the_first_keeps_streaming(server):
    first = await connect_camera(server.url, PersonTrack(fps=10), "camera_twice")
    try:
        await first.next_message("frame_processed")
        with pytest.raises(AssertionError, match="409"):
            await connect_camera(server.url, PersonTrack(fps=10), "camera_twice")
        await first.next_message("frame_processed")
    finally:
        await first.close()


async def test_unknown_camera_endpoints_answer_404_json(server):
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        for path in ("/latest_image/camera_nobody", "/get-image/camera_nobody"):
            async with http.get(server.url + path) as response:
                assert response.status == 404
                assert "camera_nobody" in (await response.json())["error"]
        async with http.get(server.url + "/latest_image/bad%20id") as response:
            assert response.status == 400
        async with http.get(server.url + "/no/such/page") as response:
            assert response.status == 404
            assert "error" in await response.json()


async def test_malformed_data_channel_messages_get_errors_and_change_nothing(server):
    camera = await connect_camera(server.url, PersonTrack(fps=10))
    other = await connect_camera(server.url, PersonTrack(fps=10))
    try:
        await camera.next_message("frame_processed")
        for bad in (
            "not json",
            "[]",
            '{"no": "type"}',
            '{"type": "launch_rocket"}',
            '{"type": "set_exercise"}',
            '{"type": "set_exercise", "exercise": 5}',
        ):
            camera.send(bad)
            error = await camera.next_message("error")
            assert error["error"]
        camera.channel.send(b"\x00\x01binary")
        assert (await camera.next_message("error"))["error"]
        camera.send({"type": "ping", "t": 42})
        assert (await camera.next_message("pong"))["t"] == 42
        # both cameras keep being analysed
        await camera.next_message("frame_processed")
        await other.next_message("frame_processed")
    finally:
        await camera.close()
        await other.close()


async def test_legacy_camera_bad_messages_get_errors_and_it_keeps_working(server):
    jpeg = person_jpeg_base64(1)
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.ws_connect(f"{server.url}/ws/camera") as ws:
            hello = await ws.receive_json(timeout=10)
            assert hello["type"] == "connection_successful"
            assert hello["camera_id"].startswith("camera_")
            bad_messages = [
                "not json",
                json.dumps({"type": "frame", "image_data": "%%%not base64"}),
                json.dumps({"type": "frame"}),
                json.dumps(
                    {"type": "frame", "image_data": base64.b64encode(b"not a jpeg").decode()}
                ),
                json.dumps({"type": "dance"}),
            ]
            for bad in bad_messages:
                await ws.send_str(bad)
                reply = await ws.receive_json(timeout=10)
                assert reply["type"] == "error", (bad, reply)
            await ws.send_bytes(b"\x00")
            assert (await ws.receive_json(timeout=10))["type"] == "error"
            await ws.send_json({"type": "frame", "timestamp": 2.0, "image_data": jpeg})
            while True:
                reply = await ws.receive_json(timeout=15)
                if reply["type"] == "frame_processed":
                    break
            assert reply["pose_data"]["pose"]


async def test_legacy_duplicate_camera_id_is_refused(server):
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.ws_connect(f"{server.url}/ws/camera?camera_id=cam_dup") as first:
            assert (await first.receive_json(timeout=10))["type"] == "connection_successful"
            async with http.ws_connect(f"{server.url}/ws/camera?camera_id=cam_dup") as second:
                reply = await second.receive_json(timeout=10)
                assert reply["type"] == "error" and "cam_dup" in reply["error"]

"""The core media path over real aiortc peers, the real app and real MediaPipe."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import aiohttp
import cv2
import numpy as np
from auth import AUTH_HEADERS
from contract_client import (
    PersonTrack,
    connect_camera,
    connect_monitor,
    nose_on_face,
    person_jpeg_base64,
)
from harness import wait_for


async def test_camera_receives_pose_with_nose_on_face(server):
    """The contract's acceptance check: >= 85% of frames sent come back with the nose on the face."""
    frames = 40
    track = PersonTrack(fps=10)
    camera = await connect_camera(server.url, track, "camera_12345")
    on_face = 0
    try:
        assert camera.camera_id == "camera_12345"
        while True:
            message = await camera.next_message("frame_processed")
            assert message["camera_id"] == "camera_12345"
            assert (message["width"], message["height"]) == (640, 480)
            people = message["pose_data"]["pose"]
            if people:
                assert [k["id"] for k in people[0]["keypoints"]] == list(range(33))
                assert people[0]["keypoints"][32]["name"] == "right_foot_index"
            sent = track.lookup(message["frame_pts"])
            assert sent is not None, "frame_pts does not name a frame the camera sent"
            if sent[2] >= frames:
                break
            on_face += nose_on_face(message, sent[1])
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
            async with http.get(f"{server.url}/cameras") as response:
                assert "camera_12345" in (await response.json())["cameras"]
            async with http.get(f"{server.url}/get-image/camera_12345") as response:
                assert response.status == 200
            async with http.get(f"{server.url}/latest_image/camera_12345") as response:
                assert (await response.json())["camera_id"] == "camera_12345"
    finally:
        await camera.close()
    print(f"nose on the face for {on_face}/{frames} frames sent")
    assert on_face >= 0.85 * frames, f"nose on the face in {on_face}/{frames} frames sent"


async def test_monitor_receives_video_and_the_same_messages(server):
    camera = await connect_camera(server.url, PersonTrack(fps=10))
    monitor = await connect_monitor(server.url, camera.camera_id)
    try:
        first = await monitor.next_message("frame_processed")
        assert first["camera_id"] == camera.camera_id
        # The camera got the very same message (same frame_pts) on its own channel.
        while True:
            own = await camera.next_message("frame_processed")
            if own["frame_pts"] >= first["frame_pts"]:
                break
        assert own["frame_pts"] == first["frame_pts"]
        assert own["pose_data"] == first["pose_data"]
        timing = await monitor.next_message("video_timing")
        assert timing["clock_rate"] == 90000
        await wait_for(lambda: monitor.frame_count >= 10, timeout=15)
        frame = monitor.frames[-1]
        assert (frame.width, frame.height) == (640, 480)
        assert frame.to_ndarray(format="gray").mean() > 20  # a picture, not black
    finally:
        await monitor.close()
        await camera.close()


async def test_camera_leaving_closes_its_monitors_and_updates_the_list(server):
    camera = await connect_camera(server.url, PersonTrack(fps=10), "cam_leaving")
    monitor = await connect_monitor(server.url, "cam_leaving")
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.ws_connect(f"{server.url}/ws/monitor") as ws:
            assert (await ws.receive_json())["cameras"] == ["cam_leaving"]
            await monitor.next_message("frame_processed")
            await camera.close()
            while True:
                message = await ws.receive_json(timeout=15)
                if message["type"] == "cameras_list":
                    break
            assert message["cameras"] == []
    await wait_for(lambda: monitor.pc.connectionState == "closed", timeout=15)
    await monitor.close()


async def test_silent_camera_is_removed_after_the_stall_timeout(start_server):
    running = await start_server(stall_timeout_s=1.0)

    class FrozenTrack(PersonTrack):
        async def recv(self):  # sends a few frames, then nothing
            if self._index >= 5:
                await asyncio.Event().wait()
            return await super().recv()

    camera = await connect_camera(running.url, FrozenTrack(fps=10), "cam_frozen")
    try:
        await camera.next_message("frame_processed")
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:

            async def listed() -> list[str]:
                async with http.get(f"{running.url}/cameras") as response:
                    return (await response.json())["cameras"]

            async def none_listed() -> bool:
                return await listed() == []

            assert await listed() == ["cam_frozen"]
            await wait_for(none_listed, interval=0.1, what="the silent camera removed")
    finally:
        await camera.close()
        await running.server.close()


async def test_legacy_ws_camera_is_a_camera_like_any_other(server):
    jpeg = person_jpeg_base64(3)
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.ws_connect(f"{server.url}/ws/camera?camera_id=legacy_cam") as ws:
            hello = await ws.receive_json(timeout=10)
            assert hello["type"] == "connection_successful"
            assert hello["camera_id"] == "legacy_cam"
            await ws.send_json({"type": "frame", "timestamp": 1.0, "image_data": jpeg})
            result = await _next_of(ws, "frame_processed")
            assert result["camera_id"] == "legacy_cam"
            assert len(result["pose_data"]["pose"][0]["keypoints"]) == 33
            async with http.get(f"{server.url}/cameras") as response:
                assert "legacy_cam" in (await response.json())["cameras"]
            # a monitor can watch it
            monitor = await connect_monitor(server.url, "legacy_cam")
            try:
                for i in range(40):
                    await ws.send_json(
                        {
                            "type": "frame",
                            "timestamp": 1.0 + i / 10,
                            "image_data": "data:image/jpeg;base64," + jpeg,
                        }
                    )
                    if monitor.frame_count >= 3:
                        break
                    await asyncio.sleep(0.1)  # pacing the camera
                assert monitor.frame_count >= 3
                await monitor.next_message("frame_processed")
            finally:
                await monitor.close()


async def test_original_komi_clients_get_every_field_they_read(server):
    """The original KOMI webcam client and monitor, message for message: the camera is
    named `client_id` in `frame_processed`, `connection_successful` carries a `message`,
    and `/ws/monitor` sends `cameras_list` then `status_update`s."""
    jpeg = person_jpeg_base64(4)
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.ws_connect(f"{server.url}/ws/monitor") as monitor:
            first = await monitor.receive_json(timeout=10)
            assert first["type"] == "cameras_list" and isinstance(first["cameras"], list)
            async with http.ws_connect(f"{server.url}/ws/camera") as ws:  # no id: assigned
                hello = await ws.receive_json(timeout=10)
                assert hello["type"] == "connection_successful"
                camera_id = hello["camera_id"]
                assert camera_id.startswith("camera_") and hello["client_id"] == camera_id
                assert isinstance(hello["message"], str) and hello["message"]
                await ws.send_str(
                    json.dumps({"type": "frame", "timestamp": time.time(), "image_data": jpeg})
                )
                result = await _next_of(ws, "frame_processed")
                assert result["client_id"] == camera_id == result["camera_id"]
                assert isinstance(result["timestamp"], float)
                keypoints = result["pose_data"]["pose"][0]["keypoints"]
                assert [k["name"] for k in keypoints][:3] == ["nose", "left_eye_inner", "left_eye"]
                listed = await _next_of(monitor, "cameras_list")
                while camera_id not in listed["cameras"]:
                    listed = await _next_of(monitor, "cameras_list")
                status = await _next_of(monitor, "status_update")
                while status["camera_id"] != camera_id:
                    status = await _next_of(monitor, "status_update")
                assert status["camera_id"] == camera_id and status["has_new_image"] is True
                assert isinstance(status["timestamp"], float)
                assert status["pose_data"]["pose"], "the pose the camera got"


async def _next_of(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict:
    while True:
        message = await ws.receive_json(timeout=15)
        if message.get("type") == kind:
            return message


async def test_image_endpoints_serve_the_newest_frame(server):
    camera = await connect_camera(server.url, PersonTrack(fps=10), "cam_images")
    try:
        await camera.next_message("frame_processed")
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
            async with http.get(f"{server.url}/latest_image/cam_images") as response:
                assert response.status == 200
                latest = await response.json()
            assert latest["camera_id"] == "cam_images"
            assert latest["pose_data"]["pose"], "pose_data of the newest analysis"
            image = cv2.imdecode(
                np.frombuffer(base64.b64decode(latest["image_data"]), np.uint8), cv2.IMREAD_COLOR
            )
            assert image.shape == (480, 640, 3)
            async with http.get(f"{server.url}/get-image/cam_images") as response:
                assert response.status == 200
                assert response.content_type == "image/jpeg"
                body = await response.read()
            assert cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR) is not None
    finally:
        await camera.close()


async def test_ws_monitor_pushes_camera_list_and_status_updates(server):
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.ws_connect(f"{server.url}/ws/monitor") as ws:
            assert await ws.receive_json(timeout=5) == {"type": "cameras_list", "cameras": []}
            camera = await connect_camera(server.url, PersonTrack(fps=10), "cam_ws")
            try:
                listed = await _next_of(ws, "cameras_list")
                assert listed["cameras"] == ["cam_ws"]
                status = await _next_of(ws, "status_update")
                assert status["camera_id"] == "cam_ws"
                assert status["has_new_image"] is True
                assert "pose" in status["pose_data"]
            finally:
                await camera.close()
            assert (await _next_of(ws, "cameras_list"))["cameras"] == []

"""A camera and a monitor client written only from ../shared/design.md, as outsiders would.

They use aiortc and aiohttp directly (not komi_rtc's own camera peer) so the tests check
the wire contract, not our client against itself.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import av
import cv2
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from auth import ADMIN_TOKEN
from skimage import data as skdata

TIME_BASE = fractions.Fraction(1, 90000)
ASTRONAUT = skdata.astronaut()
# The face of skimage's astronaut, in the 512x512 photo's pixels (x0, y0, x1, y1).
FACE_BOX = (170, 50, 280, 180)


@dataclass(frozen=True)
class Placement:
    """Where the 512x512 photo was drawn in a frame."""

    x: int
    y: int
    size: int

    def face_box(self) -> tuple[float, float, float, float]:
        scale = self.size / 512
        x0, y0, x1, y1 = FACE_BOX
        return (self.x + x0 * scale, self.y + y0 * scale, self.x + x1 * scale, self.y + y1 * scale)


def person_frame(index: int, width: int = 640, height: int = 480) -> tuple[np.ndarray, Placement]:
    """A frame of the astronaut moving around; returns the RGB frame and where she is."""
    t = index / 10.0
    size = int(min(width, height) * (0.75 + 0.1 * np.sin(t * 0.7)))
    x = int((width - size) / 2 + (width - size) / 2 * 0.8 * np.sin(t * 0.5))
    y = int((height - size) / 2 + (height - size) / 2 * 0.8 * np.cos(t * 0.9))
    frame = np.full((height, width, 3), 30, np.uint8)
    frame[y : y + size, x : x + size] = cv2.resize(ASTRONAUT, (size, size))
    return frame, Placement(x, y, size)


def person_jpeg_base64(index: int = 0) -> str:
    """A frame of the moving astronaut as the original KOMI clients send it."""
    import base64

    bgr = cv2.cvtColor(person_frame(index)[0], cv2.COLOR_RGB2BGR)
    return base64.b64encode(cv2.imencode(".jpg", bgr)[1].tobytes()).decode()


class PersonTrack(MediaStreamTrack):
    """Streams the moving astronaut at `fps`; remembers each frame's pts and placement."""

    kind = "video"

    def __init__(self, fps: float = 10.0, width: int = 640, height: int = 480) -> None:
        super().__init__()
        self.fps = fps
        self.size = (width, height)
        self.sent: dict[int, tuple[float, Placement, int]] = {}  # pts -> (time, where, index)
        self.first_pts: int | None = None
        self._index = 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._index / self.fps
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing the camera, not synchronisation
        rgb, placement = person_frame(self._index, *self.size)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = int((time.monotonic() - self._start) * 90000) + self._index  # distinct
        frame.time_base = TIME_BASE
        if self.first_pts is None:
            self.first_pts = frame.pts
        self.sent[frame.pts] = (time.monotonic(), placement, self._index)
        self._index += 1
        return frame

    def lookup(self, frame_pts: int) -> tuple[float, Placement, int] | None:
        """aiortc receivers count pts from the first frame they got (rounded to a tick)."""
        if self.first_pts is None:
            return None
        for delta in (0, -1, 1, -2, 2):
            found = self.sent.get(self.first_pts + frame_pts + delta)
            if found is not None:
                return found
        return None


@dataclass
class ContractPeer:
    pc: RTCPeerConnection
    messages: asyncio.Queue[dict[str, Any]]
    camera_id: str
    channel: Any
    frames: list[av.VideoFrame] = field(default_factory=list)
    held: list[dict[str, Any]] = field(default_factory=list)

    async def next_message(self, kind: str, timeout: float = 15.0) -> dict[str, Any]:
        """The oldest unread message of this type; other types stay for their readers."""
        for i, message in enumerate(self.held):
            if message.get("type") == kind:
                return self.held.pop(i)
        async with asyncio.timeout(timeout):
            while True:
                message = await self.messages.get()
                if message.get("type") == kind:
                    return message
                self.held.append(message)
                del self.held[:-200]

    def drop_held(self, kind: str) -> None:
        """Forget unread messages of this type (those sent before a change being tested)."""
        self.held = [message for message in self.held if message.get("type") != kind]

    def send(self, payload: Any) -> None:
        self.channel.send(payload if isinstance(payload, str) else json.dumps(payload))

    async def close(self) -> None:
        await self.pc.close()


async def post_offer(
    base_url: str, body: dict[str, Any], token: str = ADMIN_TOKEN
) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.post(f"{base_url}/offer", json=body) as response:
            return response.status, await response.json()


def _wire_channel(pc: RTCPeerConnection) -> tuple[Any, asyncio.Queue[dict[str, Any]]]:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    channel = pc.createDataChannel("komi")

    @channel.on("message")
    def on_message(raw: str) -> None:
        queue.put_nowait(json.loads(raw))

    return channel, queue


async def connect_camera(
    base_url: str,
    track: MediaStreamTrack,
    camera_id: str | None = None,
    token: str = ADMIN_TOKEN,
    station: str | None = None,
    person: str | None = None,
    rewrite_offer: Callable[[str], str] | None = None,
) -> ContractPeer:
    """A camera streaming `track`; `rewrite_offer` changes its offer's SDP before it is
    sent (e.g. hiding its addresses, as a browser does)."""
    pc = RTCPeerConnection()
    pc.addTrack(track)
    channel, queue = _wire_channel(pc)
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    body: dict[str, Any] = {
        "sdp": rewrite_offer(sdp) if rewrite_offer else sdp,
        "type": "offer",
        "role": "camera",
    }
    if camera_id is not None:
        body["camera_id"] = camera_id
    if station is not None:
        body["station"] = station
    if person is not None:
        body["person"] = person
    status, answer = await post_offer(base_url, body, token)
    if status != 200:
        await pc.close()
        raise AssertionError(f"offer refused: {status} {answer}")
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
    return ContractPeer(pc, queue, answer["camera_id"], channel)


async def connect_monitor(
    base_url: str,
    camera_id: str,
    token: str = ADMIN_TOKEN,
    rewrite_offer: Callable[[str], str] | None = None,
) -> ContractPeer:
    """A monitor of `camera_id`; `rewrite_offer` as for `connect_camera`."""
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    channel, queue = _wire_channel(pc)
    peer_frames: list[av.VideoFrame] = []

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        async def read() -> None:
            try:
                while True:
                    peer_frames.append(await track.recv())
                    del peer_frames[:-5]  # keep the newest few
                    peer.frame_count += 1
            except Exception:
                return

        peer.reader = asyncio.ensure_future(read())

    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    status, answer = await post_offer(
        base_url,
        {
            "sdp": rewrite_offer(sdp) if rewrite_offer else sdp,
            "type": "offer",
            "role": "monitor",
            "camera_id": camera_id,
        },
        token,
    )
    if status != 200:
        await pc.close()
        raise AssertionError(f"monitor offer refused: {status} {answer}")
    peer = MonitorPeerClient(pc, queue, camera_id, channel, peer_frames)
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
    return peer


@dataclass
class MonitorPeerClient(ContractPeer):
    frame_count: int = 0
    reader: Any = None

    async def close(self) -> None:
        await self.pc.close()
        if self.reader is not None:
            self.reader.cancel()
            await asyncio.gather(self.reader, return_exceptions=True)


def nose_on_face(message: dict[str, Any], placement: Placement) -> bool:
    people = message["pose_data"]["pose"]
    if not people:
        return False
    nose = people[0]["keypoints"][0]
    assert nose["name"] == "nose"
    x0, y0, x1, y1 = placement.face_box()
    return x0 <= nose["x"] <= x1 and y0 <= nose["y"] <= y1

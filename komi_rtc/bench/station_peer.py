"""One camera of a station benchmark, in its own process (so its clock can be set off).

`python -m komi_rtc.bench.station_peer --server URL --camera-id ID --station ST --view VIEW
--epoch T --duration S --out FILE.json [--clock-offset S] [--fail-after S]`

Streams the rendered person at `time.time() - epoch` (every view of a station shows the
same instant), with aiortc's sender-report clock moved by `--clock-offset` seconds (a
camera whose clock is wrong), and, after `--fail-after` seconds, empty frames (the view
fails). Writes when each frame was really captured and every station message received.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import os
import time
from typing import Any

import aiohttp
import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

from ..media.rtp_timestamps import lookup_pts
from ..protocol import Offer
from ..synthetic.exercise_video import ExercisingPersonSource

_TIME_BASE = fractions.Fraction(1, 90000)


def shift_sender_clock(offset_s: float) -> None:
    """Every RTCP sender report this process sends says its clock reads `offset_s` more."""
    import aiortc.clock as clock

    original = clock.current_ntp_time
    shift = int(offset_s * 2**32)
    clock.current_ntp_time = lambda: original() + shift  # type: ignore[assignment]


class ViewTrack(MediaStreamTrack):
    kind = "video"

    def __init__(
        self, source: ExercisingPersonSource, fps: float, epoch: float, fail_after: float | None
    ) -> None:
        super().__init__()
        self.source = source
        self.fps = fps
        self.epoch = epoch
        self.fail_at = time.time() + fail_after if fail_after is not None else None
        self.captured: dict[int, float] = {}
        self._start = time.monotonic()
        self._next: float | None = None

    async def recv(self) -> av.VideoFrame:
        now = time.monotonic()
        if self._next is None:
            self._next = now
        elif self._next > now:
            await asyncio.sleep(self._next - now)  # pacing the camera
        self._next = max(self._next + 1 / self.fps, time.monotonic() - 1 / self.fps)
        wall = time.time()  # the instant shown; the pts is taken at the same instant
        pts = int((time.monotonic() - self._start) * 90000)
        if self.fail_at is not None and wall >= self.fail_at:
            rgb = np.full((self.source._height, self.source._width, 3), 90, np.uint8)
        else:
            rgb = await asyncio.get_running_loop().run_in_executor(
                None, self.source.render_at, wall - self.epoch
            )
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = pts
        frame.time_base = _TIME_BASE
        self.captured[frame.pts] = wall
        return frame


async def run(args: argparse.Namespace) -> dict[str, Any]:
    source = ExercisingPersonSource(args.width, args.height, args.fps, args.exercise, args.view)
    track = ViewTrack(source, args.fps, args.epoch, args.fail_after)
    pc = RTCPeerConnection()
    pc.addTrack(track)
    channel = pc.createDataChannel("komi")
    station_messages: list[list[Any]] = []
    frame_arrivals: dict[int, float] = {}
    station_reps: list[dict[str, Any]] = []
    camera_reps = 0

    @channel.on("message")
    def on_message(raw: str) -> None:
        nonlocal camera_reps
        message = json.loads(raw)
        now = time.time()
        kind = message.get("type")
        if kind == "frame_processed":
            frame_arrivals[message["frame_pts"]] = now
        elif kind == "station_processed":
            station_messages.append(
                [
                    now,
                    message["frames"],
                    message["sync_error_ms"],
                    "pose3d" in message,
                    message.get("captured", {}),
                ]
            )
        elif kind == "rep_completed":
            if message.get("station_id"):
                station_reps.append(message["rep"])
            else:
                camera_reps += 1

    await pc.setLocalDescription(await pc.createOffer())
    body = Offer(pc.localDescription.sdp, "camera", args.camera_id, station=args.station).to_wire()
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(f"{args.server}/offer", json=body) as response:
            answer = await response.json()
            if response.status != 200:
                raise SystemExit(f"offer refused: {response.status} {answer}")
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
    await asyncio.sleep(args.duration)  # streaming for the session's length
    await pc.close()
    first = min(track.captured) if track.captured else 0
    true_capture = {}
    for _, frames, *_ in station_messages:
        pts = frames.get(args.camera_id)
        if pts is not None:
            found = lookup_pts(track.captured, pts + first)
            if found is not None:
                true_capture[str(pts)] = found
    return {
        "camera_id": args.camera_id,
        "station_messages": station_messages,
        "frame_arrivals": {str(k): v for k, v in frame_arrivals.items()},
        "true_capture": true_capture,
        "station_reps": station_reps,
        "camera_reps": camera_reps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m komi_rtc.bench.station_peer")
    parser.add_argument("--server", required=True)
    parser.add_argument("--camera-id", required=True)
    parser.add_argument("--station", required=True)
    parser.add_argument("--view", default="side_left")
    parser.add_argument("--exercise", default="squat")
    parser.add_argument("--epoch", type=float, required=True)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--clock-offset", type=float, default=0.0)
    parser.add_argument("--fail-after", type=float, default=None)
    parser.add_argument("--token", default=os.environ.get("KOMI_TOKEN"))
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.clock_offset:
        shift_sender_clock(args.clock_offset)
    result = asyncio.run(run(args))
    with open(args.out, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()

"""One benchmark peer process: a camera (the real camera peer) or a monitor.

`python -m komi_rtc.bench.peer camera|monitor --server URL --camera-id ID --duration S
--out FILE.json`; writes what it measured when the duration is over.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import os
import signal
import struct
import time
from pathlib import Path
from typing import Any

import aiohttp
import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

from ..camera.peer import CameraPeer, CapturedTrack
from ..media.rtp_timestamps import RTP_CLOCK_RATE
from ..media.video_sources import open_source
from ..protocol import Offer


class ReplayedLoop:
    """The demo person's whole loop (a set and its rest), rendered once before streaming and
    then replayed: a load generator on the server's own 2 cores should spend them on video,
    not on drawing a person (about half a peer's CPU)."""

    def __init__(self, source: Any, fps: float) -> None:
        count = max(1, round(source.performance.loop_seconds * fps))
        self.description = source.description + " (replayed)"
        self._frames = [source.read() for _ in range(count)]
        self._index = 0

    def read(self) -> Any:
        frame = self._frames[self._index % len(self._frames)]
        self._index += 1
        return frame

    @property
    def frames(self) -> list[Any]:
        return self._frames

    def close(self) -> None:
        self._frames = []


_TIME_BASE = fractions.Fraction(1, RTP_CLOCK_RATE)


class PreEncodedLoop:
    """The replayed loop encoded once to VP8, as aiortc's own encoder would send it, with a
    keyframe every second (a new decoder, or one that lost a packet, starts there): the load
    generator then sends video without encoding it, as a real camera's hardware encoder
    would, and its CPU is left to the nodes it measures."""

    def __init__(self, loop: ReplayedLoop, fps: float, bitrate: int = 500_000) -> None:
        self.description = loop.description + ", pre-encoded VP8"
        height, width = loop.frames[0].shape[:2]
        codec = av.CodecContext.create("libvpx", "w")
        codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
        codec.bit_rate = bitrate
        codec.time_base = _TIME_BASE
        codec.gop_size = max(1, round(fps))
        codec.qmin, codec.qmax = 2, 56
        codec.options = {  # aiortc's Vp8Encoder settings: the same stream, encoded ahead
            "bufsize": str(bitrate),
            "cpu-used": "-6",
            "deadline": "realtime",
            "lag-in-frames": "0",
            "minrate": str(bitrate),
            "maxrate": str(bitrate),
            "noise-sensitivity": "4",
            "overshoot-pct": "15",
            "partitions": "0",
            "static-thresh": "1",
            "undershoot-pct": "100",
        }
        self.packets: list[bytes] = []
        for index, rgb in enumerate(loop.frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts = round(index * RTP_CLOCK_RATE / fps)
            frame.time_base = codec.time_base
            if index == 0:
                frame.pict_type = av.video.frame.PictureType.I  # the loop restarts cleanly
            self.packets.append(b"".join(bytes(p) for p in codec.encode(frame)))
        if not all(self.packets):
            raise RuntimeError("the VP8 encoder held frames back: one packet a frame expected")

    def read(self) -> Any:
        raise RuntimeError("pre-encoded: the track sends packets")

    def close(self) -> None:
        self.packets = []

    def save(self, path: Path) -> None:
        """Write the packets (a JSON line, then each packet after its 4-byte length), so a
        benchmark renders and encodes the loop once for all its camera processes: eight
        processes each rendering it took both cores for about a minute."""
        with open(path, "wb") as handle:
            header = {"description": self.description, "count": len(self.packets)}
            handle.write(json.dumps(header).encode() + b"\n")
            for packet in self.packets:
                handle.write(struct.pack("!I", len(packet)) + packet)

    @classmethod
    def load(cls, path: Path) -> PreEncodedLoop:
        """The loop `save` wrote."""
        loop = cls.__new__(cls)
        with open(path, "rb") as handle:
            header = json.loads(handle.readline())
            loop.description = header["description"]
            loop.packets = []
            for _ in range(header["count"]):
                (size,) = struct.unpack("!I", handle.read(4))
                loop.packets.append(handle.read(size))
        return loop


class PreEncodedTrack(CapturedTrack):
    """Sends the pre-encoded loop's packets at `fps`, stamped like captured frames; each
    connection's track starts at the loop's first packet, a keyframe."""

    def __init__(self, loop: PreEncodedLoop, fps: float) -> None:
        super().__init__(loop, fps)  # type: ignore[arg-type]
        self._packets = loop.packets
        self._index = 0

    async def recv(self) -> av.Packet:  # type: ignore[override]
        await self.paced()
        data = self._packets[self._index % len(self._packets)]
        self._index += 1
        packet = av.Packet(data)
        packet.pts = self.stamp()
        packet.time_base = _TIME_BASE
        return packet


class PreEncodedCameraPeer(CameraPeer):
    def make_track(self) -> CapturedTrack:
        return PreEncodedTrack(self.source, self.fps)  # type: ignore[arg-type]


async def run_camera(args: argparse.Namespace) -> dict[str, Any]:
    pre_encoded = args.pre_encoded or args.loop_file is not None
    source: Any
    if args.loop_file is not None:
        source = PreEncodedLoop.load(args.loop_file)
    else:
        source = open_source("demo", args.width, args.height, args.fps)
        if args.replay or args.pre_encoded:
            source = ReplayedLoop(source, args.fps)
        if args.pre_encoded:
            source = PreEncodedLoop(source, args.fps)
    peer = (PreEncodedCameraPeer if pre_encoded else CameraPeer)(
        args.server,
        args.camera_id,
        source,
        args.fps,
        token=args.token,
        exercise=args.exercise,
    )
    peer.messages = asyncio.Queue()
    task = asyncio.create_task(peer.run())
    start = time.monotonic()
    results: list[list[float]] = []
    reps = 0
    person_tied = args.person is None
    stop = asyncio.Event()  # SIGTERM: the benchmark has its window; write what was measured
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        while time.monotonic() - start < args.duration and not stop.is_set():
            try:
                message = await asyncio.wait_for(peer.messages.get(), 0.5)
            except asyncio.TimeoutError:
                continue
            if not person_tied and message.get("type") == "frame_processed":
                person_tied = await _tie_person(args)
            if message.get("type") == "rep_completed":
                reps += 1
            if message.get("type") == "frame_processed" and "latency_ms" in message:
                timing = message.get("timing", {})
                tracking = message.get("tracking") or {}
                results.append(
                    [
                        round(time.monotonic() - start, 3),
                        message["latency_ms"],
                        timing.get("inference_ms"),
                        timing.get("server_ms"),
                        1 if message.get("pose_data", {}).get("pose") else 0,  # keypoints
                        1 if tracking.get("source") == "flow" else 0,
                    ]
                )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        sent = peer.frames_sent()
        await peer.close()
    return {
        "role": "camera",
        "camera_id": args.camera_id,
        "start_monotonic": start,  # the results' times count from here (one clock per machine)
        "frames_sent": sent,
        "reps": reps,
        "results": results,
        "duration": args.duration,
    }


async def _tie_person(args: argparse.Namespace) -> bool:
    """Tie the camera to a person and restart its exercise, so its reps are recorded."""
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    async with aiohttp.ClientSession(headers=headers) as http:
        base = f"{args.server}/cameras/{args.camera_id}"
        async with http.post(f"{base}/person", json={"person": args.person}) as response:
            if response.status != 200:
                return False
        if args.exercise:
            async with http.post(f"{base}/exercise", json={"exercise": args.exercise}):
                pass
    return True


async def run_monitor(args: argparse.Namespace) -> dict[str, Any]:
    start = time.monotonic()
    frames: list[float] = []
    messages = 0
    pc: RTCPeerConnection | None = None
    reader: asyncio.Task[None] | None = None
    while time.monotonic() - start < args.duration and pc is None:
        candidate = RTCPeerConnection()
        candidate.addTransceiver("video", direction="recvonly")
        channel = candidate.createDataChannel("komi")

        @channel.on("message")
        def on_message(raw: str) -> None:
            nonlocal messages
            messages += 1

        @candidate.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            async def read() -> None:
                while True:
                    await track.recv()
                    frames.append(round(time.monotonic() - start, 3))

            nonlocal reader
            reader = asyncio.ensure_future(read())

        await candidate.setLocalDescription(await candidate.createOffer())
        headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.post(
                f"{args.server}/offer",
                json=Offer(candidate.localDescription.sdp, "monitor", args.camera_id).to_wire(),
            ) as response:
                answer = await response.json()
        if response.status != 200:
            await candidate.close()
            await asyncio.sleep(0.5)  # the camera is not streaming yet: ask again
            continue
        await candidate.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        pc = candidate
    remaining = args.duration - (time.monotonic() - start)
    if remaining > 0:
        await asyncio.sleep(remaining)  # measuring for the run's duration
    if reader is not None:
        reader.cancel()
    if pc is not None:
        await pc.close()
    return {
        "role": "monitor",
        "camera_id": args.camera_id,
        "frames": frames,
        "messages": messages,
        "duration": args.duration,
    }


def write_loop_file(path: Path, width: int, height: int, fps: float) -> None:
    """Render the demo loop and encode it once, for every camera process of a benchmark."""
    PreEncodedLoop(ReplayedLoop(open_source("demo", width, height, fps), fps), fps).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m komi_rtc.bench.peer")
    parser.add_argument("role", choices=("camera", "monitor"))
    parser.add_argument("--server", required=True)
    parser.add_argument("--camera-id", required=True)
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--width", type=int, default=640, help="camera: frame width (640)")
    parser.add_argument("--height", type=int, default=480, help="camera: frame height (480)")
    parser.add_argument(
        "--replay", action="store_true", help="camera: render the demo loop once, then replay it"
    )
    parser.add_argument(
        "--pre-encoded",
        action="store_true",
        help="camera: encode the replayed loop to VP8 once, then send its packets",
    )
    parser.add_argument(
        "--loop-file",
        type=Path,
        default=None,
        help="camera: send the pre-encoded loop in this file (written by PreEncodedLoop.save)",
    )
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument(
        "--token", default=os.environ.get("KOMI_TOKEN"), help="access token ($KOMI_TOKEN)"
    )
    parser.add_argument("--exercise", default=None, help="camera: analyse this exercise")
    parser.add_argument("--person", default=None, help="camera: record its sets for this person")
    args = parser.parse_args()
    run = run_camera if args.role == "camera" else run_monitor
    result = asyncio.run(run(args))
    with open(args.out, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()

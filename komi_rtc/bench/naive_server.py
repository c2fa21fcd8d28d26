"""The naive design, for the benchmark's side-by-side ratio: no KOMI optimisations.

As aiortc's server example applies a video transform, pose estimation runs inside the
track's `recv()` on the event loop, with one shared estimator and aiortc's stock jitter
buffer; monitors get the transformed track through aiortc's MediaRelay (buffered, its
default). Speaks enough of the contract (`POST /offer` for cameras and monitors,
`frame_processed`) for the same peers. `python -m komi_rtc.bench.naive_server --port 8100`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import av
from aiohttp import web
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay

from ..pose.model_choice import PoseSettings, create_estimator
from ..protocol.messages import OfferAnswer


class PoseTransformTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, track: MediaStreamTrack, camera_id: str, state: dict[str, Any]) -> None:
        super().__init__()
        self.track, self.camera_id, self.state = track, camera_id, state
        self.channel: Any = None

    async def recv(self) -> Any:
        frame = await self.track.recv()
        assert isinstance(frame, av.VideoFrame)
        received = time.time()
        rgb = frame.to_ndarray(format="rgb24")
        poses = self.state["estimator"].estimate(rgb, int(time.monotonic() * 1000))  # blocks
        if self.channel is not None and self.channel.readyState == "open":
            now = time.time()
            self.channel.send(
                json.dumps(
                    {
                        "type": "frame_processed",
                        "camera_id": self.camera_id,
                        "frame_pts": frame.pts,
                        "timestamp": now,
                        "width": frame.width,
                        "height": frame.height,
                        "pose_data": {"pose": [p.to_json() for p in poses], "timestamp": now},
                        "timing": {"receive": received},
                    }
                )
            )
        return frame


def create_app() -> web.Application:
    state: dict[str, Any] = {
        "estimator": create_estimator(PoseSettings(legacy=True, max_keyframe_interval=1)),
        "pcs": set(),
        "tasks": set(),
        "cameras": {},
    }
    relay = MediaRelay()

    async def offer(request: web.Request) -> web.Response:
        body = await request.json()
        camera_id = body.get("camera_id") or "camera"
        pc = RTCPeerConnection()
        state["pcs"].add(pc)
        if body.get("role") == "monitor":
            source = state["cameras"].get(camera_id)
            if source is None:
                await pc.close()
                return web.json_response({"error": "unknown camera"}, status=404)
            await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], "offer"))
            pc.addTrack(relay.subscribe(source))
            await pc.setLocalDescription(await pc.createAnswer())
            return web.json_response(
                OfferAnswer(pc.localDescription.sdp, "answer", camera_id).to_wire()
            )
        holder: dict[str, Any] = {}

        @pc.on("datachannel")
        def on_datachannel(channel: Any) -> None:
            holder["channel"] = channel
            if "track" in holder:
                holder["track"].channel = channel

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            transformed = PoseTransformTrack(track, camera_id, state)
            transformed.channel = holder.get("channel")
            holder["track"] = transformed
            state["cameras"][camera_id] = transformed
            sink = relay.subscribe(transformed)

            async def consume() -> None:  # like MediaBlackhole: keeps the transform running
                try:
                    while True:
                        await sink.recv()
                except Exception:
                    return

            task = asyncio.ensure_future(consume())
            state["tasks"].add(task)
            task.add_done_callback(state["tasks"].discard)

        await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return web.json_response(
            OfferAnswer(pc.localDescription.sdp, "answer", camera_id).to_wire()
        )

    async def index(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "service": "naive-baseline"})

    async def shutdown(app: web.Application) -> None:
        for task in list(state["tasks"]):
            task.cancel()
        await asyncio.gather(*(pc.close() for pc in state["pcs"]))

    app = web.Application()
    app.router.add_post("/offer", offer)
    app.router.add_get("/", index)
    app.on_shutdown.append(shutdown)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m komi_rtc.bench.naive_server")
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args()
    web.run_app(create_app(), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()

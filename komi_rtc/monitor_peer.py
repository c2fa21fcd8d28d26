"""A monitor's peer connection: the camera's video relayed plus the camera's messages.

The monitor track hands out the camera session's newest decoded frame, so a camera is
decoded once however many monitors watch it, and a slow monitor skips frames instead of
queueing them.
"""

from __future__ import annotations

import json
import logging

import av
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from .camera_session import CameraSession, DataChannelSink
from .control import handle_control_message
from .rtp_timestamps import RTP_CLOCK_RATE, SenderTimestampOrigin

logger = logging.getLogger(__name__)


class MonitorTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, session: CameraSession, on_origin: MonitorPeer) -> None:
        super().__init__()
        self._session = session
        self._seen = 0
        self.origin = SenderTimestampOrigin()
        self._peer = on_origin

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self.origin.observe() is not None:
            self._peer.announce_timing()
        try:
            self._seen, item = await self._session.newest.wait_newer(self._seen)
        except EOFError:
            self.stop()
            raise MediaStreamError from None
        self.origin.handed_out(item.pts)
        return item.frame


class MonitorPeer:
    """Owned by its camera session: closed when the camera goes or the monitor leaves."""

    def __init__(self, session: CameraSession, pc: RTCPeerConnection, peer_id: str) -> None:
        self.session = session
        self.pc = pc
        self.peer_id = peer_id
        self.track = MonitorTrack(session, self)
        self.sink: DataChannelSink | None = None
        self._closed = False
        session.add_close_listener(self, self._camera_gone)

        @pc.on("datachannel")
        def on_datachannel(channel: object) -> None:
            self.sink = DataChannelSink(channel)
            session.sinks.add(self.sink)
            self.announce_timing()  # aiortc hands the channel over already open

            @channel.on("open")  # type: ignore[attr-defined]
            def on_open() -> None:
                self.announce_timing()

            @channel.on("message")  # type: ignore[attr-defined]
            def on_message(raw: str | bytes) -> None:
                # a trainer may ping or choose the camera's exercise from the monitor
                reply = handle_control_message(session, raw)
                if reply is not None and self.sink is not None:
                    self.sink.send_text(reply)

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                session.spawn_closer(self.close(), f"monitor {peer_id} close")

    def announce_timing(self) -> None:
        """Tell the page how RTP timestamps of its video relate to `frame_pts`."""
        if self.sink is None or self.track.origin.origin is None:
            return
        self.sink.send_text(
            json.dumps(
                {
                    "type": "video_timing",
                    "camera_id": self.session.camera_id,
                    "rtp_timestamp_offset": self.track.origin.origin,
                    "clock_rate": RTP_CLOCK_RATE,
                }
            )
        )

    async def _camera_gone(self) -> None:
        if self.sink is not None:
            self.sink.send_text(
                json.dumps({"type": "camera_disconnected", "camera_id": self.session.camera_id})
            )
        await self.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.session.remove_close_listener(self)
        if self.sink is not None:
            self.session.sinks.discard(self.sink)
        self.track.stop()
        await self.pc.close()
        logger.info("[%s] monitor %s left", self.session.camera_id, self.peer_id)

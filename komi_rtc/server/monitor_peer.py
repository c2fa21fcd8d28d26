"""A monitor's peer connection: the camera's video relayed plus the camera's messages.

A WebRTC camera's encoded VP8 or H.264 frames are forwarded as they are
(`video_forwarding.py`) when the monitor takes that codec. Otherwise (a /ws/camera camera, a
monitor without the camera's codec, `--reencode-monitors`) the monitor track
hands out the camera session's newest decoded frame, re-encoded per monitor: a camera is
still decoded once however many monitors watch it, and a slow monitor skips frames
instead of queueing them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender
from aiortc.mediastreams import MediaStreamError

from ..media.aiortc_adapter import (
    close_peer_connection,
    negotiated_codecs,
    redirect_keyframe_requests,
)
from ..media.rtp_timestamps import RTP_CLOCK_RATE, SenderTimestampOrigin
from ..media.video_codecs import can_show, monitor_codec_preferences
from ..media.video_forwarding import EncodedVideoTap, ForwardedVideoTrack
from ..protocol.messages import (
    CameraDisconnected,
    ErrorMessage,
    PersonSet,
    VideoTiming,
    encode,
)
from .access import Grant
from .camera_session import CameraSession
from .control import accept_one_channel, handle_control_message
from .limits import MessageRate
from .message_sinks import DataChannelSink

logger = logging.getLogger(__name__)


class MonitorTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, session: CameraSession, on_origin: Callable[[], None]) -> None:
        super().__init__()
        self._session = session
        self._seen = 0
        self.origin = SenderTimestampOrigin()
        self._on_origin = on_origin

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self.origin.observe() is not None:
            self._on_origin()
        try:
            self._seen, item = await self._session.newest.wait_newer(self._seen)
        except EOFError:
            self.stop()
            raise MediaStreamError from None
        self.origin.handed_out(item.pts)
        return item.frame


class MonitorPeer:
    """Owned by its camera session: closed when the camera goes or the monitor leaves."""

    def __init__(
        self,
        session: CameraSession,
        pc: RTCPeerConnection,
        peer_id: str,
        grant: Grant,
        *,
        on_closed: Callable[[], None] | None = None,
        rate: MessageRate | None = None,
        connect_timeout_s: float = 0.0,
    ) -> None:
        self.session = session
        self.pc = pc
        self.peer_id = peer_id
        self._on_closed = on_closed
        session.monitor_peers.add(self)  # counted from the offer on, channel open or not
        self.track: MonitorTrack | ForwardedVideoTrack | None = None
        self.sink: DataChannelSink | None = None
        self._closed = False
        session.add_close_listener(self, self._camera_gone)
        # a monitor that never connects gives its place back (a slot of the camera's
        # --max-monitors-per-camera and of its address) instead of holding it for aiortc's
        # ICE timeouts
        self._connect_deadline: asyncio.TimerHandle | None = None
        if connect_timeout_s > 0:
            self._connect_deadline = asyncio.get_running_loop().call_later(
                connect_timeout_s, self._not_connected, connect_timeout_s
            )
        bound: list[DataChannelSink] = []

        @pc.on("datachannel")
        def on_datachannel(channel: Any) -> None:
            if not accept_one_channel(channel, bound, f"[{session.camera_id}] {peer_id}"):
                return
            self.sink = DataChannelSink(channel)
            bound.append(self.sink)
            session.subscribe(self.sink)
            if session.person is not None:  # a monitor joining later learns who this is
                self.sink.send_text(encode(PersonSet(session.camera_id, session.person)))
            self.announce_timing()  # aiortc hands the channel over already open

            @channel.on("open")  # type: ignore[attr-defined]
            def on_open() -> None:
                self.announce_timing()

            @channel.on("message")  # type: ignore[attr-defined]
            def on_message(raw: str | bytes) -> None:
                # a trainer may ping or choose the camera's exercise from the monitor
                if rate is not None and not rate.allow():
                    if rate.refused == 1 and self.sink is not None:
                        self.sink.send_text(encode(ErrorMessage(rate.error)))
                    return
                reply = handle_control_message(session, raw, grant)
                if reply is not None and self.sink is not None:
                    self.sink.send_text(encode(reply))

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState == "connected" and self._connect_deadline is not None:
                self._connect_deadline.cancel()
                self._connect_deadline = None
            if pc.connectionState in ("failed", "closed"):
                session.spawn_closer(self.close(), f"monitor {peer_id} close")

    @property
    def closed(self) -> bool:
        return self._closed

    def prepare_video(self, tap: EncodedVideoTap | None) -> Any:
        """Before the monitor's offer is read: the transceiver its first video section will
        use, offering the camera's own codec first when it can be forwarded (a browser
        lists VP8 before H.264: an H.264 camera is still forwarded to it)."""
        transceiver = self.pc.addTransceiver("video", direction="sendonly")
        capabilities = RTCRtpSender.getCapabilities("video")
        if tap is not None and tap.usable and capabilities is not None:
            transceiver.setCodecPreferences(
                monitor_codec_preferences(tap.codec_parameters, capabilities.codecs)
            )
        return transceiver

    def add_video(self, transceiver: Any, tap: EncodedVideoTap | None) -> str:
        """Send the camera's video on the offer's video transceiver: forwarded when the tap
        can and the monitor answered with a codec that shows it (`can_show`), else
        re-encoded. Returns which, for the log."""
        codecs = negotiated_codecs(transceiver)
        camera = tap.codec_parameters if tap is not None else None
        if tap is not None and tap.usable and camera and codecs and can_show(camera, codecs[0]):
            self.track = ForwardedVideoTrack(tap, self.announce_timing)
        else:
            self.track = MonitorTrack(self.session, self.announce_timing)
        sender = self.pc.addTrack(self.track)
        self.track.origin.sender = sender
        if isinstance(self.track, ForwardedVideoTrack):
            # no encoder here to make a keyframe: a monitor's request goes to the camera
            redirect_keyframe_requests(sender, self.track.keyframe_requested)
            return "forwarded"
        return "re-encoded"

    def announce_timing(self) -> None:
        """Tell the page how RTP timestamps of its video relate to `frame_pts`."""
        if self.sink is None or self.track is None or self.track.origin.origin is None:
            return
        self.sink.send_text(
            encode(VideoTiming(self.session.camera_id, self.track.origin.origin, RTP_CLOCK_RATE))
        )

    def _not_connected(self, timeout_s: float) -> None:
        self._connect_deadline = None
        if self._closed or self.pc.connectionState == "connected":
            return
        logger.info(
            "[%s] monitor %s not connected within %g s: closed",
            self.session.camera_id,
            self.peer_id,
            timeout_s,
        )
        self.session.spawn_closer(self.close(), f"monitor {self.peer_id} close")

    async def _camera_gone(self) -> None:
        if self.sink is not None:
            self.sink.send_text(encode(CameraDisconnected(self.session.camera_id)))
        await self.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._connect_deadline is not None:
            self._connect_deadline.cancel()
            self._connect_deadline = None
        self.session.monitor_peers.discard(self)
        self.session.remove_close_listener(self)
        if self.sink is not None:
            self.session.unsubscribe(self.sink)
        if self.track is not None:
            self.track.stop()
        await close_peer_connection(self.pc)
        if self._on_closed is not None:
            self._on_closed()
        logger.info("[%s] monitor %s left", self.session.camera_id, self.peer_id)

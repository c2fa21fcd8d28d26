"""Monitors get the camera's own encoded VP8 or H.264 frames: no re-encoding per monitor.

Re-encoding the decoded video for every monitor costs about 5% of a core per monitor at
640x480 and 15 fps, and blurs the picture once more. The camera's jitter buffer already
holds each encoded frame, so a tap hands it to every monitor's track as an `av.Packet`,
which aiortc's sender packetizes as it is (`Encoder.pack`). A monitor starts at a keyframe:
joining, or losing a picture (its PLI), asks the camera for one. The frame's pts is the one
the decoded frame and `frame_pts` carry, so `video_timing` and the overlay work unchanged.

H.264 goes the same way: the jitter buffer holds an access unit in Annex B (aiortc's
depacketizer writes start codes), which aiortc's H264 packetizer splits into NAL units and
sends as FU-A and STAP-A packets again. A monitor starts at an IDR picture; one that comes
without its SPS and PPS (some encoders send them once) gets the camera's last ones in front.
A monitor is offered the camera's codec first when its offer lists it with a profile that
decodes the camera's (`video_codecs.monitor_codec_preferences`).

Used only when the monitor answers with a codec that shows the camera's stream as it is
(`video_codecs.can_show`); otherwise, and for /ws/camera cameras, monitors get the decoded
frames re-encoded (`monitor_peer.py`).
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCRtpCodecParameters
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket

from ..protocol.image_headers import H264_NAL_IDR, H264_NAL_PPS, H264_NAL_SPS, h264_nal_units
from .aiortc_adapter import can_request_keyframe, request_keyframe
from .rtp_timestamps import RTP_CLOCK_RATE, SenderTimestampOrigin
from .video_codecs import FORWARDED_CODECS, H264
from .video_codecs import VP8 as VP8

logger = logging.getLogger(__name__)

_START_CODE = b"\x00\x00\x00\x01"
_TIME_BASE = fractions.Fraction(1, RTP_CLOCK_RATE)
_KEYFRAME_REQUEST_INTERVAL_S = 0.3  # PLIs closer than this are one request
_KEYFRAME_RETRY_S = 1.0  # a monitor still without a keyframe this long asks again
_MAX_QUEUED_FRAMES = 30  # a monitor this far behind restarts at the next keyframe


class RtpTimestampMapper:
    """RTP timestamps to pts counted from the first frame, across the 32-bit wrap: the
    mapping aiortc's receiver applies before decoding (a test holds the two equal)."""

    def __init__(self) -> None:
        self._origin: int | None = None
        self._last = 0

    def map(self, timestamp: int) -> int:
        if self._origin is None:
            self._origin = timestamp
        elif timestamp < self._last:
            self._origin -= 1 << 32
        self._last = timestamp
        return timestamp - self._origin


def is_vp8_keyframe(data: bytes) -> bool:
    """VP8 payload header: bit 0 of the first byte is 0 for a keyframe (RFC 7741)."""
    return bool(data) and not data[0] & 0x01


class H264ParameterSets:
    """The camera's last SPS and PPS, put in front of an IDR access unit that lacks them,
    so a monitor starting there can decode it."""

    def __init__(self) -> None:
        self._sps: bytes | None = None
        self._pps: bytes | None = None

    def keyframe(self, data: bytes) -> tuple[bytes, bool]:
        """(the access unit as a monitor gets it, whether it is an IDR picture)."""
        types = set()
        for unit in h264_nal_units(data):
            kind = unit[0] & 0x1F
            types.add(kind)
            if kind == H264_NAL_SPS:
                self._sps = unit
            elif kind == H264_NAL_PPS:
                self._pps = unit
        if H264_NAL_IDR not in types:
            return data, False
        missing = b""
        if H264_NAL_SPS not in types and self._sps is not None:
            missing += _START_CODE + self._sps
        if H264_NAL_PPS not in types and self._pps is not None:
            missing += _START_CODE + self._pps
        return missing + data, True


class EncodedVideoTap:
    """One per WebRTC camera: fed by its jitter buffer, feeds its monitors' tracks."""

    def __init__(
        self,
        camera_id: str,
        receiver: Any,
        codecs: list[Any],
        spawn: Callable[[Awaitable[None], str], None],
    ) -> None:
        self.camera_id = camera_id
        self.codec_parameters: RTCRtpCodecParameters | None = codecs[0] if codecs else None
        self.codec = codecs[0].mimeType if codecs else None
        self._h264 = H264ParameterSets()
        self._payload_types = {c.payloadType: c.mimeType for c in codecs}
        self._receiver = receiver
        self._spawn = spawn
        self._mapper = RtpTimestampMapper()  # so forwarded pts equal the decoded frames' pts
        self._tracks: set[ForwardedVideoTrack] = set()
        self._ssrc: int | None = None
        self._keyframe_wanted = False
        self._last_request = float("-inf")
        self._warned_codec = False
        self.frames = 0
        self.keyframes = 0
        self.keyframe_requests = 0

    @property
    def usable(self) -> bool:
        return self.codec in FORWARDED_CODECS and can_request_keyframe(self._receiver)

    def on_frame(self, frame: JitterFrame, packet: RtpPacket) -> None:
        """Called by the jitter buffer for every completed frame, in order."""
        pts = self._mapper.map(frame.timestamp)
        self._ssrc = packet.ssrc
        if self.codec not in FORWARDED_CODECS:
            return
        if self._payload_types.get(packet.payload_type) != self.codec:
            if not self._warned_codec:
                self._warned_codec = True
                logger.warning(
                    "[%s] camera sends payload type %d, not %s: monitors get no forwarded video",
                    self.camera_id,
                    packet.payload_type,
                    self.codec,
                )
            return
        self.frames += 1
        data = frame.data
        if self.codec == H264:
            data, keyframe = self._h264.keyframe(data)
        else:
            keyframe = is_vp8_keyframe(data)
        if keyframe:
            self.keyframes += 1
            self._keyframe_wanted = False  # every track waiting for one gets this one
        waiting = False
        for track in self._tracks:  # offer() never adds or removes tracks
            track.offer(data, pts, keyframe)
            waiting = waiting or track.waiting_for_keyframe
        if self._keyframe_wanted or (
            waiting and time.monotonic() - self._last_request > _KEYFRAME_RETRY_S
        ):
            self.request_keyframe()  # also again if a request or its keyframe was lost

    def request_keyframe(self) -> None:
        """Ask the camera for a keyframe (an RTCP PLI), at most every 0.3 s."""
        now = time.monotonic()
        if self._ssrc is None or now - self._last_request < _KEYFRAME_REQUEST_INTERVAL_S:
            self._keyframe_wanted = True  # asked again with the next frame
            return
        self._keyframe_wanted = False
        self._last_request = now
        self.keyframe_requests += 1
        self._spawn(self._send_pli(self._ssrc), "keyframe-request")

    async def _send_pli(self, ssrc: int) -> None:
        try:
            await request_keyframe(self._receiver, ssrc)
        except Exception as exc:  # noqa: BLE001 - the connection is closing; nothing to do
            logger.debug("[%s] keyframe request not sent: %s", self.camera_id, exc)

    def subscribe(self, track: ForwardedVideoTrack) -> None:
        self._tracks.add(track)
        self.request_keyframe()

    def unsubscribe(self, track: ForwardedVideoTrack) -> None:
        self._tracks.discard(track)

    def close(self) -> None:
        for track in tuple(self._tracks):
            track.stop()
        self._tracks.clear()


class ForwardedVideoTrack(MediaStreamTrack):
    """A monitor's video: the camera's encoded frames from the newest keyframe on."""

    kind = "video"

    def __init__(self, tap: EncodedVideoTap, on_origin: Callable[[], None]) -> None:
        super().__init__()
        self.origin = SenderTimestampOrigin()
        self._tap = tap
        self._on_origin = on_origin
        self._queue: deque[tuple[bytes, int]] = deque()
        self._wake = asyncio.Event()
        self._need_keyframe = True
        tap.subscribe(self)

    def offer(self, data: bytes, pts: int, keyframe: bool) -> None:
        if self._need_keyframe:
            if not keyframe:
                return
            self._need_keyframe = False
        if len(self._queue) >= _MAX_QUEUED_FRAMES:  # the monitor stalled: start afresh
            self._queue.clear()
            self._need_keyframe = True
            self._tap.request_keyframe()
            return
        self._queue.append((data, pts))
        self._wake.set()

    @property
    def waiting_for_keyframe(self) -> bool:
        return self._need_keyframe

    def keyframe_requested(self) -> None:
        """The monitor lost a picture (its PLI reached our sender): ask the camera."""
        self._tap.request_keyframe()

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        if self.origin.observe() is not None:
            self._on_origin()
        while not self._queue:
            self._wake.clear()
            await self._wake.wait()
            if self.readyState != "live":
                raise MediaStreamError
        data, pts = self._queue.popleft()
        packet = av.Packet(data)
        packet.pts = pts
        packet.time_base = _TIME_BASE
        self.origin.handed_out(pts)
        return packet

    def stop(self) -> None:
        self._tap.unsubscribe(self)
        super().stop()
        self._wake.set()

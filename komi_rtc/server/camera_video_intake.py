"""A camera's video before the decoder: frames released at their RTP marker (our jitter
buffer, not aiortc's one frame late), tapped for the monitors (forwarded, not re-encoded),
and refused when they state a picture above the size caps."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..media.aiortc_adapter import install_marker_release, negotiated_codecs
from ..media.video_codecs import H264, VP8
from ..media.video_forwarding import EncodedVideoTap
from ..protocol import KomiError
from ..protocol.image_headers import h264_access_unit_sizes, vp8_keyframe_dimensions
from ..protocol.messages import ErrorMessage, encode
from .camera_session import CameraSession
from .config import ServerConfig
from .limits import check_frame_size

logger = logging.getLogger(__name__)


def install_jitter_buffer(session: CameraSession, transceiver: Any, config: ServerConfig) -> None:
    """Our jitter buffer releases frames at their marker and taps them for monitors."""
    receiver = transceiver.receiver
    tap = None
    if config.forward_video:
        tap = EncodedVideoTap(
            session.camera_id, receiver, negotiated_codecs(transceiver), session.spawn
        )
    installed = install_marker_release(
        receiver,
        release_on_marker=config.early_frame_release,
        on_frame=tap.on_frame if tap is not None else None,
        admit=_frame_size_guard(session, transceiver, config),
    )
    if installed and tap is not None:
        session.attach_video_tap(tap)


def _frame_size_guard(
    session: CameraSession, transceiver: Any, config: ServerConfig
) -> Callable[[Any, Any], bool]:
    """Refuse a VP8 keyframe or an H.264 sequence parameter set stating a picture above
    the size caps before it reaches the decoder, and end that camera with an error it
    can read. An SPS that cannot be read is refused the same way (the decoder would
    allocate whatever it states)."""
    codecs = {c.payloadType: c.mimeType for c in negotiated_codecs(transceiver)}

    def refuse(reason: str, why: str = "video above the size limit") -> bool:
        if not session.ending:  # once: every later keyframe is refused quietly
            logger.warning("[%s] %s; closing the camera", session.camera_id, reason)
            session.end_with_error(encode(ErrorMessage(reason)), why)
        return False

    def admit(frame: Any, packet: Any) -> bool:
        if session.capture_clock.rtp_origin is None:
            # aiortc hands the decoder's frames pts = RTP timestamp - the first one's
            session.capture_clock.rtp_origin = frame.timestamp
        if session.ending:
            return False
        codec = codecs.get(packet.payload_type)
        sizes: list[tuple[int, int, int, int] | None]
        if codec == H264:
            sizes = [
                (s.width, s.height, s.coded_width, s.coded_height) if s else None
                for s in h264_access_unit_sizes(frame.data)
            ]
        elif codec == VP8:
            vp8 = vp8_keyframe_dimensions(frame.data)
            sizes = [] if vp8 is None else [(*vp8, *vp8)]
        else:
            return True  # nothing else is negotiated for a camera
        for size in sizes:
            if size is None:
                return refuse(
                    "video: an H.264 sequence parameter set that cannot be read",
                    "an unreadable H.264 SPS",
                )
            width, height, coded_width, coded_height = size
            try:
                check_frame_size(
                    width, height, config.max_frame_side, config.max_frame_pixels, "video"
                )
                check_frame_size(
                    coded_width,
                    coded_height,
                    config.max_frame_side,
                    config.max_frame_pixels,
                    "video as coded (whole 16x16 macroblocks)",
                )
            except KomiError as exc:
                return refuse(str(exc))
        return True

    return admit

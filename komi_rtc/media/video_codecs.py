"""Which video codecs a camera may send, and which monitor codec shows a camera's stream as
it is.

A camera sends VP8 (every browser's default) or H.264 with packetization-mode 1 in the
Constrained Baseline, Baseline, Main, Constrained High or High profile (phones' hardware
encoders, OBS, Larix, GStreamer, IP cameras). Both state their picture size before anything
is decoded (the VP8 keyframe header, the H.264 sequence parameter set), and both can be
forwarded to monitors without re-encoding. The camera's own codec order decides when it
offers both (a browser lists VP8 first). aiortc negotiates only the H.264 profiles of its
codec table: `aiortc_adapter.register_h264_profiles` adds Main, High and High 4:4:4.
"""

from __future__ import annotations

from aiortc import RTCRtpCodecCapability, RTCRtpCodecParameters
from aiortc.sdp import H264Profile, parse_h264_profile_level_id

from ..protocol.sdp_requests import SdpCodec

VP8 = "video/VP8"
H264 = "video/H264"
RTX = "video/rtx"
FORWARDED_CODECS = (VP8, H264)

_P = H264Profile
CAMERA_H264_PROFILES = frozenset(
    {
        _P.PROFILE_CONSTRAINED_BASELINE,
        _P.PROFILE_BASELINE,
        _P.PROFILE_MAIN,
        _P.PROFILE_CONSTRAINED_HIGH,
        _P.PROFILE_HIGH,
    }
)
ACCEPTED_CODECS = (
    "VP8, or H.264 with packetization-mode=1 in the Constrained Baseline, Baseline, Main or "
    "High profile"
)
# which H.264 decoders show a stream of each profile (ITU-T H.264 A.2: a High decoder
# decodes Main and Constrained High, a High 4:4:4 Predictive one High too; every one decodes
# Constrained Baseline). Chromium receives 42001f, 42e01f, 4d001f and f4001f.
_DECODED_BY: dict[H264Profile, frozenset[H264Profile]] = {
    _P.PROFILE_CONSTRAINED_BASELINE: frozenset(_P),
    _P.PROFILE_BASELINE: frozenset({_P.PROFILE_BASELINE}),
    _P.PROFILE_MAIN: frozenset({_P.PROFILE_MAIN, _P.PROFILE_HIGH, _P.PROFILE_PREDICTIVE_HIGH_444}),
    _P.PROFILE_CONSTRAINED_HIGH: frozenset(
        {_P.PROFILE_CONSTRAINED_HIGH, _P.PROFILE_HIGH, _P.PROFILE_PREDICTIVE_HIGH_444}
    ),
    _P.PROFILE_HIGH: frozenset({_P.PROFILE_HIGH, _P.PROFILE_PREDICTIVE_HIGH_444}),
    _P.PROFILE_PREDICTIVE_HIGH_444: frozenset({_P.PROFILE_PREDICTIVE_HIGH_444}),
}

Codec = RTCRtpCodecParameters | RTCRtpCodecCapability


def h264_profile(parameters: dict[str, object]) -> H264Profile | None:
    """The profile a `profile-level-id` names (absent: Constrained Baseline, as WebRTC reads
    it); None unless packetization-mode is 1 (single NAL units only: not sent by WebRTC
    encoders, and aiortc packetizes in mode 1), or for an unreadable id."""
    if str(parameters.get("packetization-mode", "0")) != "1":
        return None
    try:
        return parse_h264_profile_level_id(str(parameters.get("profile-level-id", "42e01f")))[0]
    except ValueError:
        return None


def camera_may_send(codec: Codec | SdpCodec) -> bool:
    """VP8, or H.264 in mode 1 of a profile in CAMERA_H264_PROFILES."""
    mime = (codec.mime_type if isinstance(codec, SdpCodec) else codec.mimeType).lower()
    if mime == VP8.lower():
        return True
    if mime != H264.lower():
        return False
    return h264_profile(dict(codec.parameters or {})) in CAMERA_H264_PROFILES


def camera_codec_preferences(
    capabilities: list[RTCRtpCodecCapability], offered: list[SdpCodec]
) -> list[RTCRtpCodecCapability]:
    """What a camera's answer may name: VP8 and the H.264 profiles a camera may send (and
    RTX, for retransmissions), in the order the camera's offer lists them."""
    order = [c.mime_type.lower() for c in offered]

    def rank(codec: RTCRtpCodecCapability) -> int:
        mime = codec.mimeType.lower()
        return order.index(mime) if mime in order else len(order)

    accepted = [c for c in capabilities if camera_may_send(c)]
    rtx = [c for c in capabilities if c.mimeType.lower() == RTX.lower()]
    return sorted(accepted, key=rank) + rtx


def can_show(camera: RTCRtpCodecParameters, monitor: Codec) -> bool:
    """Whether a monitor receiving `monitor` can be sent the camera's `camera` stream as it
    is: VP8 to VP8; H.264 to an H.264 decoder of a profile that decodes the camera's."""
    mime = camera.mimeType.lower()
    if mime != monitor.mimeType.lower():
        return False
    if mime == VP8.lower():
        return True
    if mime != H264.lower():
        return False
    sent = h264_profile(dict(camera.parameters or {}))
    taken = h264_profile(dict(monitor.parameters or {}))
    return sent is not None and taken is not None and taken in _DECODED_BY.get(sent, ())


def monitor_codec_preferences(
    camera: RTCRtpCodecParameters | None, capabilities: list[RTCRtpCodecCapability]
) -> list[RTCRtpCodecCapability]:
    """Every codec we can send, those that show the camera's stream as it is first: the
    monitor's answer then names the camera's codec when its offer lists it anywhere (a
    browser lists VP8 before H.264)."""
    if camera is None:
        return list(capabilities)
    first = [c for c in capabilities if can_show(camera, c)]
    return first + [c for c in capabilities if c not in first]

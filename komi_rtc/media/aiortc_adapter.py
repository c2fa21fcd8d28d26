"""Every private aiortc name KOMI relies on, in one place, each feature-detected.

aiortc has no public API for what the media path needs, so this module reaches into it:
- the receiver's jitter buffer (`_RTCRtpReceiver__jitter_buffer`, the buffer's `_origin`,
  `_packets`, `_capacity`, `_is_video`, `_remove_frame`, a packet's `_data`): replaced by
  `MarkerReleaseJitterBuffer` below;
- a transceiver's negotiated codecs (`_codecs`);
- asking a camera for a keyframe (`RTCRtpReceiver._send_rtcp_pli`);
- a monitor's keyframe requests (`RTCRtpSender._send_keyframe`), redirected to the camera;
- the RTP timestamp a sender adds to every pts (`_RTCRtpSender__rtp_timestamp`,
  `_RTCRtpSender__packet_count`);
- a receiver's RTCP handler (`_handle_rtcp_packet`), tapped for sender reports: they map
  the camera's RTP timestamps to its own wall clock (capture-time sync of stations);
- aiortc's codec table (`aiortc.codecs.CODECS`), to which the H.264 profiles aiortc leaves
  out (Main, High, High 4:4:4) are added: OBS, GStreamer's x264enc and IP cameras send
  High, and browsers decode it (`register_h264_profiles`);
- the dynamic payload types (`aiortc.rtp.DYNAMIC_PAYLOAD_TYPES`, 96 to 127): Chromium numbers
  its later codecs 35 to 63 (RFC 5761 allows them with rtcp-mux), and aiortc answers such a
  codec with its own number, which may be one the browser gave another codec: Chromium then
  refuses the whole answer ("Duplicate payload type with conflicting codec name");
- trickled ICE candidates (`aiortc.sdp.candidate_from_sdp`), for WHIP's PATCH;
- the end of a peer's ICE candidates, held back while none of them is usable
  (`accept_offer`): aioice drops an ICE component with no remote candidate at the end of
  candidates, so it gathers none of its own for it (an answer without candidates), and
  fails at once instead of learning the peer's address from its checks;
- the DTLS context (`RTCCertificate._create_ssl_context`), whose cipher list is widened to
  the ECDHE-RSA suites: aiortc, the DTLS client of every answer, offers ECDSA suites only,
  and a peer whose certificate is RSA (GStreamer's webrtcbin) answers "no shared cipher".
- a sender's RTCP output (`_send_rtcp`, and `_RTCRtpSender__lsr`, what its round-trip
  estimate compares receiver reports with): the camera peer's sender reports are
  restamped with capture time (aiortc stamps the moment its last packet was sent).
tests/test_aiortc_adapter.py fails loudly when an aiortc release renames any of them; the
pin in pyproject.toml holds aiortc to the versions those tests passed on. When a name is
missing at run time, the caller falls back (stock jitter buffer, re-encoded monitors,
unforwarded PLIs) with one warning.

## The jitter buffer
Release a video frame as soon as its last packet arrives, not one frame later.

aiortc's JitterBuffer hands a frame on only when the first packet of the *next* frame
arrives, which adds a whole frame interval (67 ms at 15 fps) to every result. A frame whose
packets are all present from the buffer's origin up to the packet with the RTP marker bit
(the last packet of a video frame) is complete: this subclass releases it then. Anything
else (loss, reordering) falls back to aiortc's own logic, so behaviour under loss is
unchanged.

The same buffer can also hand every completed encoded frame to a tap (`on_frame`), so the
camera's encoded video can be forwarded to monitors without re-encoding
(`video_forwarding.py`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtcpSrPacket, RtpPacket

logger = logging.getLogger(__name__)

_RECEIVER_JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"
_RECEIVER_SEND_PLI = "_send_rtcp_pli"
_TRANSCEIVER_CODECS = "_codecs"
_SENDER_SEND_KEYFRAME = "_send_keyframe"
_SENDER_LAST_RTP_TIMESTAMP = "_RTCRtpSender__rtp_timestamp"
_SENDER_PACKET_COUNT = "_RTCRtpSender__packet_count"
_RECEIVER_HANDLE_RTCP = "_handle_rtcp_packet"
_SENDER_SEND_RTCP = "_send_rtcp"
_SENDER_LAST_SR = "_RTCRtpSender__lsr"
NTP_EPOCH_OFFSET_S = 2208988800  # 1900-01-01 to 1970-01-01

# (encoded frame, the packet that completed it): called for every frame the buffer releases
FrameTap = Callable[[JitterFrame, RtpPacket], None]
# False: drop the frame (e.g. a keyframe larger than the server accepts); the packet that
# completed it says its payload type, so its codec
FrameCheck = Callable[[JitterFrame, RtpPacket], bool]


class MarkerReleaseJitterBuffer(JitterBuffer):
    def __init__(
        self,
        capacity: int,
        *,
        is_video: bool = True,
        release_on_marker: bool = True,
        on_frame: FrameTap | None = None,
        admit: FrameCheck | None = None,
    ) -> None:
        super().__init__(capacity=capacity, is_video=is_video)
        self._release_on_marker = release_on_marker
        self.on_frame = on_frame
        self._admit = admit

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        pli_flag, frame = super().add(packet)
        if frame is not None and not frame.data:
            # padding-only packets (Chromium probes bandwidth with them) make an empty
            # frame, which FFmpeg's H.264 decoder takes as end of stream: it decodes nothing
            # after it, ever
            return pli_flag, None
        if frame is not None and self._admit is not None and not self._admit(frame, packet):
            return False, None  # refused before the decoder or any monitor sees it
        if frame is not None and self.on_frame is not None:
            self.on_frame(frame, packet)
        return pli_flag, frame

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        if not self._release_on_marker:
            return super()._remove_frame(sequence_number)
        if self._origin is None:
            return None
        packets = []
        timestamp = None
        for count in range(self.capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is None:
                break
            if timestamp is None:
                timestamp = packet.timestamp
            elif packet.timestamp != timestamp:
                break
            packets.append(packet)
            if packet.marker:
                self.remove(count + 1)
                return JitterFrame(
                    data=b"".join(p._data for p in packets),  # type: ignore[attr-defined]
                    timestamp=timestamp,
                )
        return super()._remove_frame(sequence_number)


def install_marker_release(
    receiver: Any,
    *,
    release_on_marker: bool = True,
    on_frame: FrameTap | None = None,
    admit: FrameCheck | None = None,
) -> bool:
    """Swap a video receiver's jitter buffer before packets arrive; False if aiortc changed
    (the stock buffer then stays: frames one interval later and no tap)."""
    current = getattr(receiver, _RECEIVER_JITTER_BUFFER, None)
    if type(current) is not JitterBuffer or not getattr(current, "_is_video", False):
        logger.warning("aiortc's receiver changed: keeping its stock jitter buffer")
        return False
    setattr(
        receiver,
        _RECEIVER_JITTER_BUFFER,
        MarkerReleaseJitterBuffer(
            capacity=current.capacity,
            is_video=True,
            release_on_marker=release_on_marker,
            on_frame=on_frame,
            admit=admit,
        ),
    )
    return True


# ------------------------------------------------------------ codecs, keyframes, RTP state

# profile-level-id of the H.264 profiles added to aiortc's own two (42001f Baseline and
# 42e01f Constrained Baseline), at level 3.1 as aiortc's: Main (4d001f, Chromium sends
# it), High (64001f: OBS, x264enc, IP cameras), Constrained High (640c1f, what browsers
# call High) and High 4:4:4 Predictive (f4001f: what Chromium lists to receive High).
# aiortc matches profiles, not levels; its H264 decoder (FFmpeg's) decodes them all.
EXTRA_H264_PROFILES = ("4d001f", "64001f", "640c1f", "f4001f")
_registered_h264 = False


def register_h264_profiles() -> bool:
    """Add EXTRA_H264_PROFILES, packetization-mode 1, to aiortc's codec table (once, for
    every peer connection of the process: aiortc negotiates from that table). False when
    aiortc changed (only its own H.264 profiles are then negotiated)."""
    global _registered_h264
    if _registered_h264:
        return True
    try:
        from aiortc.codecs import CODECS
        from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecParameters
    except ImportError:
        logger.warning("aiortc's codec table moved: only its own H.264 profiles are taken")
        return False
    video = CODECS.get("video")
    if not isinstance(video, list) or not video:
        logger.warning("aiortc's codec table changed: only its own H.264 profiles are taken")
        return False
    present = {str(c.parameters.get("profile-level-id", "")).lower() for c in video}
    payload_type = max(c.payloadType or 0 for c in video) + 1
    for profile_level_id in EXTRA_H264_PROFILES:
        if profile_level_id in present:
            continue
        video.append(
            RTCRtpCodecParameters(
                mimeType="video/H264",
                clockRate=90000,
                payloadType=payload_type,
                rtcpFeedback=[
                    RTCRtcpFeedback(type="nack"),
                    RTCRtcpFeedback(type="nack", parameter="pli"),
                    RTCRtcpFeedback(type="goog-remb"),
                ],
                parameters={
                    "level-asymmetry-allowed": "1",
                    "packetization-mode": "1",
                    "profile-level-id": profile_level_id,
                },
            )
        )
        video.append(
            RTCRtpCodecParameters(
                mimeType="video/rtx",
                clockRate=90000,
                payloadType=payload_type + 1,
                parameters={"apt": payload_type},
            )
        )
        payload_type += 2
    _registered_h264 = True
    return True


# payload types an offer may number its codecs with (RFC 3551: 96-127; with rtcp-mux, RFC
# 5761 section 4 frees 35-63, which Chromium uses once 96-127 are taken)
DYNAMIC_PAYLOAD_TYPES = (*range(35, 64), *range(96, 128))


def accept_low_dynamic_payload_types() -> bool:
    """Answer a codec numbered 35 to 63 with the offer's number, as one numbered 96 to 127
    (for every peer connection of the process). False when aiortc changed."""
    from aiortc import rtp

    current = getattr(rtp, "DYNAMIC_PAYLOAD_TYPES", None)
    if current is None or 96 not in current:
        logger.warning("aiortc's payload types changed: codecs numbered 35-63 may clash")
        return False
    rtp.DYNAMIC_PAYLOAD_TYPES = DYNAMIC_PAYLOAD_TYPES  # type: ignore[assignment]
    return True


# aiortc's own suites (its certificates are ECDSA), then the same with RSA certificates
DTLS_CIPHERS = (
    b"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-SHA:"
    b"ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305:"
    b"ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA"
)
_DTLS_CONTEXT = "_create_ssl_context"


def accept_rsa_dtls_peers() -> bool:
    """Let our DTLS handshakes (every peer connection of the process) agree on an ECDHE-RSA
    suite with a peer whose certificate is RSA. False when aiortc changed (such peers then
    fail at DTLS, after ICE)."""
    from aiortc.rtcdtlstransport import RTCCertificate

    create = getattr(RTCCertificate, _DTLS_CONTEXT, None)
    if not callable(create):
        logger.warning("aiortc's DTLS changed: peers with RSA certificates cannot connect")
        return False
    if getattr(create, "komi_rsa_suites", False):
        return True

    def create_with_rsa_suites(certificate: Any, srtp_profiles: Any) -> Any:
        context = create(certificate, srtp_profiles)
        context.set_cipher_list(DTLS_CIPHERS)
        return context

    create_with_rsa_suites.komi_rsa_suites = True  # type: ignore[attr-defined]
    setattr(RTCCertificate, _DTLS_CONTEXT, create_with_rsa_suites)
    return True


END_OF_CANDIDATES = "a=end-of-candidates"


async def accept_offer(pc: Any, sdp: str) -> bool:
    """`pc.setRemoteDescription(offer)`, with the offer's end of candidates passed on only
    to the ICE transports that have a usable remote candidate. True when one is left
    waiting for the peer's checks (peer-reflexive candidates).

    A page that was not granted the camera (a monitor, Firefox's or Chromium's) hides its
    host addresses behind mDNS `.local` names; from here they rarely resolve (aioice asks
    the local network, and gives up after a second), and some offers carry no candidate at
    all. Firefox's offer then says `a=end-of-candidates`; aioice takes that to mean the
    component is not used, removes it, gathers no local candidate for it (the answer has
    none) and fails ICE before the browser's first check arrives. Chromium leaves the end
    out, which is why its offers work. Without the end, aioice pairs with the address the
    browser's checks come from, as RFC 8445 section 7.3.1.3 intends; a peer that never
    checks is closed by its owner's connect timeout."""
    from aiortc import RTCSessionDescription

    lines = sdp.split("\n")
    ended = any(line.rstrip("\r") == END_OF_CANDIDATES for line in lines)
    if ended:
        sdp = "\n".join(line for line in lines if line.rstrip("\r") != END_OF_CANDIDATES)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
    if ended:
        return await end_of_candidates(pc)
    return any(not t.getRemoteCandidates() for t in _ice_transports(pc))


def _ice_transports(pc: Any) -> list[Any]:
    """The distinct ICE transports of `pc` (one when bundled), in media order."""
    transports: list[Any] = []
    dtls = [t.receiver.transport for t in pc.getTransceivers()]
    if pc.sctp is not None:
        dtls.append(pc.sctp.transport)
    for transport in dtls:
        ice = getattr(transport, "transport", None)
        if ice is not None and ice not in transports:
            transports.append(ice)
    return transports


async def add_ice_candidate(pc: Any, mid: str | None, candidate_line: str) -> None:
    """A trickled remote candidate (`candidate:...`, the text of an `a=candidate:` line)
    for the media section `mid`; ValueError for one that aiortc cannot parse or take
    (e.g. after the end of candidates)."""
    from aiortc.sdp import candidate_from_sdp

    try:
        candidate = candidate_from_sdp(candidate_line.removeprefix("candidate:"))
    except (ValueError, IndexError, AssertionError) as exc:  # it asserts 8 fields
        raise ValueError(f"not an ICE candidate: {exc!r}") from None
    candidate.sdpMid = mid
    candidate.sdpMLineIndex = 0 if mid is None else None
    await pc.addIceCandidate(candidate)


async def end_of_candidates(pc: Any) -> bool:
    """The remote peer has sent all its candidates (`a=end-of-candidates`): passed on to
    each ICE transport that has one (see `accept_offer`); True when a transport has none
    and keeps waiting for the peer's checks."""
    waiting = False
    for transport in _ice_transports(pc):
        if transport.getRemoteCandidates():
            await transport.addRemoteCandidate(None)
        else:
            waiting = True
    return waiting


def negotiated_codecs(transceiver: Any) -> list[Any]:
    """The codecs a transceiver negotiated, first one used to send; [] if aiortc changed."""
    codecs = getattr(transceiver, _TRANSCEIVER_CODECS, None)
    return list(codecs) if isinstance(codecs, list) else []


def can_request_keyframe(receiver: Any) -> bool:
    """Whether `request_keyframe` can reach the camera behind this receiver."""
    return callable(getattr(receiver, _RECEIVER_SEND_PLI, None))


async def request_keyframe(receiver: Any, media_ssrc: int) -> None:
    """Send an RTCP PLI to the camera: it answers with a keyframe."""
    await getattr(receiver, _RECEIVER_SEND_PLI)(media_ssrc)


def redirect_keyframe_requests(sender: Any, on_request: Callable[[], None]) -> bool:
    """Call `on_request` when the monitor behind `sender` asks for a keyframe (a PLI or
    FIR), instead of aiortc asking an encoder that forwarding does not have. False when
    aiortc changed (the monitor's requests are then not forwarded)."""
    if not callable(getattr(sender, _SENDER_SEND_KEYFRAME, None)):
        logger.warning("aiortc's sender changed: monitor keyframe requests are not forwarded")
        return False
    setattr(sender, _SENDER_SEND_KEYFRAME, on_request)
    return True


def sender_rtp_timestamp(sender: Any) -> int | None:
    """The RTP timestamp of the last packet a sender sent; None before any was sent."""
    if getattr(sender, _SENDER_PACKET_COUNT, 0) == 0:
        return None
    value = getattr(sender, _SENDER_LAST_RTP_TIMESTAMP, None)
    return value if isinstance(value, int) else None


# (sender wall clock in unix seconds, the RTP timestamp it maps to) per RTCP sender report
SenderReportTap = Callable[[float, int], None]


def tap_sender_reports(receiver: Any, on_report: SenderReportTap) -> bool:
    """Call `on_report(wall_s, rtp_timestamp)` for every RTCP sender report the camera
    behind `receiver` sends, after aiortc has handled it. False when aiortc changed (sync
    then falls back to arrival times)."""
    handle = getattr(receiver, _RECEIVER_HANDLE_RTCP, None)
    if not callable(handle):
        logger.warning("aiortc's receiver changed: no sender reports, frames synced on arrival")
        return False

    async def tapped(packet: Any) -> None:
        await handle(packet)
        if isinstance(packet, RtcpSrPacket):
            info = packet.sender_info
            wall = info.ntp_timestamp / 2**32 - NTP_EPOCH_OFFSET_S
            on_report(wall, int(info.rtp_timestamp))

    setattr(receiver, _RECEIVER_HANDLE_RTCP, tapped)
    return True


# an RTP timestamp of the sender's stream -> when that frame was captured (unix seconds,
# the sender's clock), or None while the sender cannot tell yet
CaptureTimeOfRtp = Callable[[int], float | None]


def stamp_sender_reports(sender: Any, capture_time_of: CaptureTimeOfRtp) -> bool:
    """Make the RTCP sender reports of `sender` map their RTP timestamp to the capture time
    of that frame (`capture_time_of`) instead of the moment aiortc sent its last packet
    (which adds the encoding and sending delay, different per camera). A report that
    `capture_time_of` cannot map yet is held back (the receiver places frames at their
    arrival until the first report). False when aiortc changed: its reports then keep the
    send time."""
    send = getattr(sender, _SENDER_SEND_RTCP, None)
    if not callable(send) or not _has_sender_rtp_state(sender):
        logger.warning("aiortc's sender changed: sender reports keep the send time")
        return False

    async def stamped(packets: list[Any]) -> None:
        restamped = []
        for packet in packets:
            if isinstance(packet, RtcpSrPacket):
                captured = capture_time_of(packet.sender_info.rtp_timestamp)
                if captured is None:
                    return  # held back: a report of the wrong time would mislead the server
                ntp = ntp_timestamp(captured)
                info = dataclasses.replace(packet.sender_info, ntp_timestamp=ntp)
                packet = dataclasses.replace(packet, sender_info=info)
                # what the remote's receiver reports echo, for aiortc's round-trip time
                setattr(sender, _SENDER_LAST_SR, (ntp >> 16) & 0xFFFFFFFF)
            restamped.append(packet)
        await send(restamped)

    setattr(sender, _SENDER_SEND_RTCP, stamped)
    return True


def _has_sender_rtp_state(sender: Any) -> bool:
    """The sender state restamping relies on: its last RTP timestamp and packet count (how
    the camera learns its RTP origin, `sender_rtp_timestamp`) and its last report."""
    return all(
        isinstance(getattr(sender, name, None), int)
        for name in (_SENDER_PACKET_COUNT, _SENDER_LAST_RTP_TIMESTAMP)
    ) and hasattr(sender, _SENDER_LAST_SR)


def ntp_timestamp(unix_s: float) -> int:
    """Unix seconds as a 64-bit NTP timestamp (32.32 fixed point from 1900)."""
    return int((unix_s + NTP_EPOCH_OFFSET_S) * 2**32) & 0xFFFFFFFFFFFFFFFF


async def close_peer_connection(pc: Any) -> None:
    """`pc.close()`, finished even if the caller is cancelled meanwhile: a second close()
    waits on the first one's future, and cancelling that waiter cancels the future, so the
    first close (often aiortc's own, after the remote hung up) then fails with
    InvalidStateError ("Task exception was never retrieved")."""
    import asyncio

    await asyncio.shield(pc.close())

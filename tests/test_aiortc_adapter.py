"""The aiortc adapter: every private aiortc name it uses exists in the installed aiortc
(these fail loudly when an aiortc release renames one; pyproject.toml pins aiortc to the
versions they passed on), and the early-release jitter buffer fed real RTP packets."""

from __future__ import annotations

import inspect

import pytest
from aiortc import RTCPeerConnection, VideoStreamTrack
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import RtpPacket

from komi_rtc.media import aiortc_adapter
from komi_rtc.media.aiortc_adapter import (
    MarkerReleaseJitterBuffer,
    can_request_keyframe,
    install_marker_release,
    negotiated_codecs,
    redirect_keyframe_requests,
    sender_rtp_timestamp,
    stamp_sender_reports,
    tap_sender_reports,
)


def _packet(seq: int, timestamp: int, marker: bool, data: bytes) -> RtpPacket:
    packet = RtpPacket(sequence_number=seq, timestamp=timestamp, marker=int(marker))
    packet._data = data  # depayloaded data, as aiortc's receiver sets it
    return packet


def test_frame_is_released_at_its_marker_packet():
    buffer = MarkerReleaseJitterBuffer(capacity=128, is_video=True)
    assert buffer.add(_packet(100, 9000, False, b"a"))[1] is None
    assert buffer.add(_packet(101, 9000, False, b"b"))[1] is None
    frame = buffer.add(_packet(102, 9000, True, b"c"))[1]
    assert frame is not None and frame.data == b"abc" and frame.timestamp == 9000
    # the next frame is released on its own marker too
    frame = buffer.add(_packet(103, 12000, True, b"d"))[1]
    assert frame is not None and frame.data == b"d" and frame.timestamp == 12000


def test_incomplete_frame_waits_and_loss_falls_back_to_aiortc():
    buffer = MarkerReleaseJitterBuffer(capacity=128, is_video=True)
    assert buffer.add(_packet(200, 9000, False, b"a"))[1] is None
    assert buffer.add(_packet(202, 9000, True, b"c"))[1] is None  # 201 missing
    frame = buffer.add(_packet(201, 9000, False, b"b"))[1]  # retransmitted
    assert frame is not None and frame.data == b"abc"


def test_installs_into_a_real_receiver():
    class _Transport:
        state = "new"

        def _register_rtp_receiver(self, *args):
            pass

    receiver = RTCRtpReceiver("video", _Transport())
    assert install_marker_release(receiver)
    assert isinstance(receiver._RTCRtpReceiver__jitter_buffer, MarkerReleaseJitterBuffer)


def test_every_released_frame_reaches_the_tap_in_order():
    seen = []
    buffer = MarkerReleaseJitterBuffer(
        capacity=128, on_frame=lambda frame, packet: seen.append((frame.data, packet.ssrc))
    )
    buffer.add(_packet(300, 9000, False, b"a"))
    buffer.add(_packet(301, 9000, True, b"b"))
    buffer.add(_packet(302, 12000, True, b"c"))
    assert [data for data, _ in seen] == [b"ab", b"c"]


def test_stock_release_still_taps():
    seen = []
    buffer = MarkerReleaseJitterBuffer(
        capacity=128, release_on_marker=False, on_frame=lambda frame, packet: seen.append(frame)
    )
    assert buffer.add(_packet(400, 9000, True, b"a"))[1] is None  # stock: waits for the next
    frame = buffer.add(_packet(401, 12000, True, b"b"))[1]
    assert frame is not None and frame.data == b"a" and seen == [frame]


# ------------------------------------------------------------ the private names, one by one


def test_jitter_buffer_internals_the_subclass_reads_exist():
    buffer = JitterBuffer(capacity=128, is_video=True)
    for name in ("_origin", "_packets", "_capacity", "_is_video"):
        assert hasattr(buffer, name), f"aiortc's JitterBuffer has no {name} any more"
    assert callable(getattr(JitterBuffer, "_remove_frame", None))
    assert "packet._data" in inspect.getsource(RTCRtpReceiver), (
        "aiortc's receiver no longer stores depayloaded data in RtpPacket._data"
    )


@pytest.fixture
async def negotiated_pair():
    """Two real peer connections with one VP8 video transceiver, offer and answer applied."""
    sender_pc, receiver_pc = RTCPeerConnection(), RTCPeerConnection()
    sender_pc.addTrack(VideoStreamTrack())
    await sender_pc.setLocalDescription(await sender_pc.createOffer())
    await receiver_pc.setRemoteDescription(sender_pc.localDescription)
    await receiver_pc.setLocalDescription(await receiver_pc.createAnswer())
    await sender_pc.setRemoteDescription(receiver_pc.localDescription)
    yield sender_pc, receiver_pc
    await sender_pc.close()
    await receiver_pc.close()


async def test_negotiated_codecs_reads_the_transceivers_codecs(negotiated_pair):
    _, receiver_pc = negotiated_pair
    codecs = negotiated_codecs(receiver_pc.getTransceivers()[0])
    assert codecs, "aiortc's RTCRtpTransceiver has no _codecs list any more"
    assert codecs[0].mimeType == "video/VP8"


async def test_receiver_can_ask_the_camera_for_a_keyframe(negotiated_pair):
    _, receiver_pc = negotiated_pair
    receiver = receiver_pc.getTransceivers()[0].receiver
    assert can_request_keyframe(receiver), "aiortc's receiver has no _send_rtcp_pli any more"
    assert inspect.iscoroutinefunction(RTCRtpReceiver._send_rtcp_pli)


async def test_monitor_keyframe_requests_can_be_redirected(negotiated_pair):
    sender_pc, _ = negotiated_pair
    sender = sender_pc.getTransceivers()[0].sender
    assert callable(getattr(RTCRtpSender, "_send_keyframe", None))
    # aiortc calls _send_keyframe when an RTCP PLI or FIR arrives for this sender
    assert "self._send_keyframe()" in inspect.getsource(RTCRtpSender)
    calls = []
    assert redirect_keyframe_requests(sender, lambda: calls.append(1))
    sender._send_keyframe()
    assert calls == [1]


async def test_sender_rtp_state_names_exist(negotiated_pair):
    sender_pc, _ = negotiated_pair
    sender = sender_pc.getTransceivers()[0].sender
    for name in (aiortc_adapter._SENDER_LAST_RTP_TIMESTAMP, aiortc_adapter._SENDER_PACKET_COUNT):
        assert hasattr(sender, name), f"aiortc's RTCRtpSender has no {name} any more"
    assert sender_rtp_timestamp(sender) is None  # nothing sent yet
    # restamping sender reports: aiortc sends its RTCP through this method of the instance,
    # after noting the report's NTP time for its round-trip estimate
    assert callable(getattr(sender, aiortc_adapter._SENDER_SEND_RTCP))
    assert hasattr(sender, aiortc_adapter._SENDER_LAST_SR)
    assert "await self._send_rtcp(packets)" in inspect.getsource(RTCRtpSender._run_rtcp)
    setattr(sender, aiortc_adapter._SENDER_PACKET_COUNT, 1)
    setattr(sender, aiortc_adapter._SENDER_LAST_RTP_TIMESTAMP, 1234)
    assert sender_rtp_timestamp(sender) == 1234


async def test_sender_reports_are_tapped_from_a_real_receiver(negotiated_pair):
    """The RTCP handler the tap wraps is the one aiortc's transport calls, and a sender
    report becomes (sender wall clock, RTP timestamp)."""
    import time

    from aiortc.rtp import RtcpSenderInfo, RtcpSrPacket

    _, receiver_pc = negotiated_pair
    receiver = receiver_pc.getTransceivers()[0].receiver
    assert callable(getattr(receiver, aiortc_adapter._RECEIVER_HANDLE_RTCP))
    assert "recipient._handle_rtcp_packet" in inspect.getsource(
        __import__("aiortc.rtcdtlstransport", fromlist=["x"])
    )
    seen = []
    assert tap_sender_reports(receiver, lambda wall, rtp: seen.append((wall, rtp)))
    now = time.time()
    ntp = int((now + aiortc_adapter.NTP_EPOCH_OFFSET_S) * 2**32)
    info = RtcpSenderInfo(ntp_timestamp=ntp, rtp_timestamp=123456, packet_count=1, octet_count=9)
    await receiver._handle_rtcp_packet(RtcpSrPacket(ssrc=1, sender_info=info))
    assert len(seen) == 1 and abs(seen[0][0] - now) < 1e-3 and seen[0][1] == 123456


def test_a_changed_aiortc_falls_back_instead_of_failing():
    class Changed:
        pass

    assert negotiated_codecs(Changed()) == []
    assert not can_request_keyframe(Changed())
    assert not redirect_keyframe_requests(Changed(), lambda: None)
    assert sender_rtp_timestamp(Changed()) is None
    assert not install_marker_release(Changed())
    assert not tap_sender_reports(Changed(), lambda wall, rtp: None)
    assert not stamp_sender_reports(Changed(), lambda rtp: None)


def test_h264_profiles_beyond_aiortcs_own_are_negotiated():
    from aiortc.codecs import CODECS

    assert aiortc_adapter.register_h264_profiles()
    assert aiortc_adapter.register_h264_profiles()  # once only
    profiles = [c.parameters.get("profile-level-id") for c in CODECS["video"] if c.name == "H264"]
    assert profiles == ["42001f", "42e01f", *aiortc_adapter.EXTRA_H264_PROFILES]
    payload_types = [c.payloadType for c in CODECS["video"]]
    assert len(payload_types) == len(set(payload_types))


def test_codecs_numbered_35_to_63_keep_their_numbers():
    from aiortc import rtp
    from aiortc.rtcpeerconnection import find_common_codecs
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    assert aiortc_adapter.accept_low_dynamic_payload_types()
    assert 41 in rtp.DYNAMIC_PAYLOAD_TYPES and 96 in rtp.DYNAMIC_PAYLOAD_TYPES
    local = [RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=109)]
    remote = [RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=41)]
    assert find_common_codecs(local, remote)[0].payloadType == 41


def test_dtls_offers_rsa_suites_too():
    from aiortc.rtcdtlstransport import SRTP_AES128_CM_SHA1_80, RTCCertificate
    from OpenSSL import SSL

    assert callable(getattr(RTCCertificate, "_create_ssl_context", None))
    assert aiortc_adapter.accept_rsa_dtls_peers()
    assert aiortc_adapter.accept_rsa_dtls_peers()  # wrapped once
    context = RTCCertificate.generateCertificate()._create_ssl_context([SRTP_AES128_CM_SHA1_80])
    suites = SSL.Connection(context).get_cipher_list()
    assert "ECDHE-RSA-AES128-GCM-SHA256" in suites and "ECDHE-ECDSA-AES128-GCM-SHA256" in suites


def test_an_empty_frame_of_padding_packets_is_not_released():
    """FFmpeg's H.264 decoder takes an empty packet for the end of the stream."""
    buffer = MarkerReleaseJitterBuffer(capacity=128, is_video=True)
    assert buffer.add(_packet(400, 9000, True, b""))[1] is None
    frame = buffer.add(_packet(401, 12000, True, b"x"))[1]
    assert frame is not None and frame.data == b"x"


async def test_trickled_candidates_reach_the_ice_transport():
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    offer_pc = RTCPeerConnection()
    offer_pc.addTransceiver("video", direction="sendonly")
    await offer_pc.setLocalDescription(await offer_pc.createOffer())
    from aiortc import RTCSessionDescription

    await pc.setRemoteDescription(RTCSessionDescription(offer_pc.localDescription.sdp, "offer"))
    mid = pc.getTransceivers()[0].mid
    await aiortc_adapter.add_ice_candidate(
        pc, mid, "candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host"
    )
    with pytest.raises(ValueError):
        await aiortc_adapter.add_ice_candidate(pc, mid, "candidate:1 1 udp")
    await aiortc_adapter.end_of_candidates(pc)
    await pc.close()
    await offer_pc.close()


async def test_sender_reports_map_rtp_timestamps_to_capture_time_not_send_time():
    """A camera whose frames reach the encoder 250 ms after capture: aiortc would stamp its
    sender reports with the send time; the camera peer's track restamps them, so the RTP
    timestamp of every frame the receiver gets maps to the moment it was captured."""
    import asyncio
    import time

    import numpy as np

    from komi_rtc.camera.captured_track import CapturedTrack
    from komi_rtc.media.capture_timeline import CaptureTimeline

    pipeline_delay_s = 0.25

    class LateCamera:
        """A live source whose frames were captured 250 ms before they are handed out."""

        description = "late camera"

        def __init__(self) -> None:
            self.captured: list[float] = []  # monotonic s, in the order handed out

        def read_captured(self) -> tuple[np.ndarray, float]:
            captured = time.monotonic() - pipeline_delay_s
            self.captured.append(captured)
            shade = (len(self.captured) * 7) % 256
            return np.full((120, 160, 3), shade, np.uint8), captured

        def read(self) -> np.ndarray:
            return self.read_captured()[0]

        def close(self) -> None:
            pass

    camera = LateCamera()
    timeline = CaptureTimeline(fps=10)
    track = CapturedTrack(camera, 10, timeline)
    sender_pc, receiver_pc = RTCPeerConnection(), RTCPeerConnection()
    received_rtp: list[int] = []  # RTP timestamp of each frame the receiver completed
    reports: list[tuple[float, int, float]] = []  # (sender's wall s, its RTP ts, arrival)
    reading: asyncio.Task | None = None

    @receiver_pc.on("track")
    def on_track(remote) -> None:
        nonlocal reading
        receiver = next(t.receiver for t in receiver_pc.getTransceivers() if t.receiver.track)
        assert install_marker_release(
            receiver, on_frame=lambda frame, packet: received_rtp.append(frame.timestamp)
        )
        assert tap_sender_reports(
            receiver, lambda wall, rtp: reports.append((wall, rtp, time.time()))
        )

        async def drain() -> None:
            while True:
                await remote.recv()

        reading = asyncio.create_task(drain())

    try:
        track.attach(sender_pc.addTrack(track))
        await sender_pc.setLocalDescription(await sender_pc.createOffer())
        await receiver_pc.setRemoteDescription(sender_pc.localDescription)
        await receiver_pc.setLocalDescription(await receiver_pc.createAnswer())
        await sender_pc.setRemoteDescription(receiver_pc.localDescription)
        async with asyncio.timeout(20):
            while len(reports) < 3 or len(received_rtp) < 20:
                await asyncio.sleep(0.05)  # polling for the reports, with a deadline
    finally:
        if reading is not None:
            reading.cancel()
        await sender_pc.close()
        await receiver_pc.close()
    truth = [timeline.clock.wall_of_monotonic(m) for m in camera.captured]
    for wall, rtp_at_report, arrived in reports:
        # the send time would be within a few ms of the arrival; capture is 250 ms earlier
        assert arrived - wall >= pipeline_delay_s - 0.01, (arrived, wall)
        errors_ms = [
            abs(wall + ((rtp - rtp_at_report + 2**31) % 2**32 - 2**31) / 90000 - truth[i]) * 1000
            for i, rtp in enumerate(received_rtp)
        ]
        assert max(errors_ms) < 0.1, errors_ms  # 90 kHz ticks and NTP rounding only

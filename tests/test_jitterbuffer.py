"""The early-release jitter buffer, fed real RTP packets."""

from __future__ import annotations

from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import RtpPacket

from komi_rtc.jitterbuffer import MarkerReleaseJitterBuffer, install_marker_release


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

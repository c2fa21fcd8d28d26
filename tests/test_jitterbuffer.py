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

"""Monitors get the camera's own VP8 frames; keyframes are asked of the camera when needed."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
from aiortc import RTCRtpCodecParameters
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtp import RtpPacket
from contract_client import PersonTrack, connect_camera, connect_monitor
from harness import wait_for

from komi_rtc.media.video_forwarding import (
    VP8,
    EncodedVideoTap,
    ForwardedVideoTrack,
    RtpTimestampMapper,
    is_vp8_keyframe,
)
from komi_rtc.server.app_keys import REGISTRY


def test_vp8_keyframe_bit():
    assert is_vp8_keyframe(bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A]))  # P bit 0: keyframe
    assert not is_vp8_keyframe(bytes([0x31, 0x02, 0x00]))  # P bit 1: interframe
    assert not is_vp8_keyframe(b"")


def test_pts_mapping_equals_aiortcs_own():
    """Forwarded frames must carry the pts the decoded frames (and `frame_pts`) carry."""
    from aiortc.rtcrtpreceiver import TimestampMapper

    ours, theirs = RtpTimestampMapper(), TimestampMapper()
    timestamps = [2**32 - 12000, 2**32 - 6000, 2**32 - 6000, 0, 6000, 5999, 12000]
    assert [ours.map(t) for t in timestamps] == [theirs.map(t) for t in timestamps]


async def test_a_monitor_without_a_keyframe_keeps_asking_then_starts_at_one():
    sent: list[int] = []

    class CameraReceiver:  # only records the PLIs; the tap and the track are under test
        async def _send_rtcp_pli(self, ssrc: int) -> None:
            sent.append(ssrc)

    tasks: list[asyncio.Future] = []
    vp8 = RTCRtpCodecParameters(mimeType=VP8, clockRate=90000, payloadType=96)
    tap = EncodedVideoTap(
        "cam", CameraReceiver(), [vp8], lambda coro, name: tasks.append(asyncio.ensure_future(coro))
    )
    track = ForwardedVideoTrack(tap, lambda: None)
    packet = RtpPacket(payload_type=96, ssrc=1234)
    for i in range(33):  # 2.2 s of a camera at 15 fps whose keyframe request got lost
        tap.on_frame(JitterFrame(bytes([0x31, 0, 0]), 90_000 + 6000 * i), packet)
        await asyncio.sleep(1 / 15)  # pacing the camera
    await asyncio.gather(*tasks)
    assert sent and set(sent) == {1234}
    assert 2 <= len(sent) <= 4, sent  # on joining, then about once a second
    assert track.waiting_for_keyframe
    tap.on_frame(JitterFrame(bytes([0x30, 0, 0]), 90_000 + 6000 * 33), packet)
    tap.on_frame(JitterFrame(bytes([0x31, 0, 0]), 90_000 + 6000 * 34), packet)
    first, second = await track.recv(), await track.recv()
    assert (first.pts, second.pts) == (6000 * 33, 6000 * 34)  # from the keyframe on
    assert bytes(first) == bytes([0x30, 0, 0])
    track.stop()


def _picture(monitor) -> np.ndarray:
    frame = monitor.frames[-1]
    assert (frame.width, frame.height) == (640, 480)
    return frame.to_ndarray(format="gray")


async def test_monitor_joining_later_gets_the_cameras_frames_from_a_keyframe(server, caplog):
    caplog.set_level(logging.INFO, logger="komi_rtc.server.monitor_offers")
    camera = await connect_camera(server.url, PersonTrack(fps=15), "fwd_cam")
    try:
        await camera.next_message("frame_processed")
        await camera.next_message("frame_processed")  # the camera's first keyframe has gone by
        session = server.app[REGISTRY].get("fwd_cam")
        tap = session.video_tap
        assert tap is not None and tap.usable
        before = (tap.keyframes, tap.keyframe_requests)
        monitor = await connect_monitor(server.url, "fwd_cam")
        try:
            # aiortc's camera sends a keyframe every 3000 frames: the monitor decodes only
            # because joining asked the camera for one
            await wait_for(lambda: monitor.frame_count >= 10, timeout=15)
            assert tap.keyframe_requests > before[1] and tap.keyframes > before[0]
            assert 40 < _picture(monitor).mean() < 200, "the person, not a black or blank frame"
            assert any("connected (video forwarded)" in r.getMessage() for r in caplog.records)
            await monitor.next_message("frame_processed")

            # a monitor that loses a picture sends a PLI: it reaches the camera
            requests, keyframes = tap.keyframe_requests, tap.keyframes
            receiver = next(t.receiver for t in monitor.pc.getTransceivers() if t.kind == "video")
            ssrc = next(iter(receiver.getSynchronizationSources())).source
            await receiver._send_rtcp_pli(ssrc)
            await wait_for(lambda: tap.keyframes > keyframes, timeout=10)
            assert tap.keyframe_requests > requests
            count = monitor.frame_count
            await wait_for(lambda: monitor.frame_count >= count + 5, timeout=10)
        finally:
            await monitor.close()
    finally:
        await camera.close()


async def test_reencoded_monitors_still_work(start_server, caplog):
    caplog.set_level(logging.INFO, logger="komi_rtc.server.monitor_offers")
    running = await start_server(forward_video=False)
    camera = await connect_camera(running.url, PersonTrack(fps=10), "reenc_cam")
    try:
        await camera.next_message("frame_processed")
        assert running.app[REGISTRY].get("reenc_cam").video_tap is None
        monitor = await connect_monitor(running.url, "reenc_cam")
        try:
            await wait_for(lambda: monitor.frame_count >= 5, timeout=15)
            assert 40 < _picture(monitor).mean() < 200
            assert any("connected (video re-encoded)" in r.getMessage() for r in caplog.records)
        finally:
            await monitor.close()
    finally:
        await camera.close()
        await running.server.close()


async def test_forwarding_with_aiortcs_own_release_timing(start_server):
    """`--stock-jitter-buffer`: frames are released one frame later, and still forwarded."""
    running = await start_server(early_frame_release=False)
    camera = await connect_camera(running.url, PersonTrack(fps=15), "stock_cam")
    try:
        await camera.next_message("frame_processed")
        assert running.app[REGISTRY].get("stock_cam").video_tap is not None
        monitor = await connect_monitor(running.url, "stock_cam")
        try:
            await wait_for(lambda: monitor.frame_count >= 5, timeout=15)
            assert 40 < _picture(monitor).mean() < 200
        finally:
            await monitor.close()
    finally:
        await camera.close()
        await running.server.close()

"""The camera peer's capture timeline: video files replayed on their own timeline, in step
across the cameras of one process and from a given start; webcams read with the moment
their frame was captured."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from komi_rtc.camera.captured_track import CapturedTrack
from komi_rtc.media.capture_timeline import CaptureTimeline
from komi_rtc.media.frame_source import SourceError
from komi_rtc.media.video_file import VideoFileSource
from komi_rtc.media.webcam import WebcamSource

SHADE_STEP = 6  # frame i of a numbered clip is grey level i * SHADE_STEP


def numbered_clip(path: Path, frames: int, fps: float, size: tuple[int, int] = (64, 48)) -> Path:
    """A clip whose frame i is uniformly grey level i * SHADE_STEP (readable after MJPG)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for index in range(frames):
        writer.write(np.full((size[1], size[0], 3), index * SHADE_STEP, np.uint8))
    writer.release()
    return path


def frame_number(rgb: np.ndarray) -> int:
    return round(float(rgb.mean()) / SHADE_STEP)


def test_a_video_file_hands_out_any_frame_of_its_looping_timeline(tmp_path):
    clip = VideoFileSource(str(numbered_clip(tmp_path / "c.avi", 10, 20)), 64, 48, 5)
    try:
        assert clip.frame_rate == 20  # the file's own, not the fallback
        wanted = [0, 1, 4, 9, 10, 13, 3, 25, 25, 0]  # forward, past the end, back
        assert [frame_number(clip.frame(i)) for i in wanted] == [i % 10 for i in wanted]
        assert [frame_number(clip.read()) for _ in range(12)] == [*range(10), 0, 1]
    finally:
        clip.close()


async def test_two_files_on_one_timeline_show_the_same_instant_with_the_same_capture_time(
    tmp_path,
):
    """Two recordings of one moment (20 fps) replayed at 10 fps by two cameras of one
    process: each instant shows the same frame of both, stamped with the same capture
    time, on the recordings' timeline from the start given (here 1.25 s ago)."""
    left = numbered_clip(tmp_path / "left.avi", 40, 20)
    right = numbered_clip(tmp_path / "right.avi", 40, 20)
    timeline = CaptureTimeline(10, start_s=time.time() - 1.25)
    start = timeline.start_s
    tracks = [
        CapturedTrack(VideoFileSource(str(path), 64, 48, 10), 10, timeline)
        for path in (left, right)
    ]
    try:
        shown: list[list[tuple[int, float]]] = [[], []]
        for _ in range(12):
            for track, frames in zip(tracks, shown, strict=True):
                rgb, captured = await track.capture()
                frames.append((frame_number(rgb), captured))
        assert shown[0] == shown[1]
        numbers = [number for number, _ in shown[0]]
        # every other frame of the recording (20 fps at 10), from where the start puts it
        assert 24 <= numbers[0] <= 28 and all(
            (b - a) % 40 == 2 for a, b in zip(numbers, numbers[1:], strict=False)
        ), numbers
        for number, captured in shown[0]:
            assert (captured - start) * 20 == pytest.approx(round((captured - start) * 20))
            assert round((captured - start) * 20) % 40 == number  # the recording's own time
    finally:
        for track in tracks:
            track.stop()
            track._source.close()


async def test_a_recording_waits_for_a_start_in_the_future(tmp_path):
    clip = numbered_clip(tmp_path / "clip.avi", 10, 10)
    timeline = CaptureTimeline(10, start_s=time.time() + 0.6)
    track = CapturedTrack(VideoFileSource(str(clip), 64, 48, 10), 10, timeline)
    try:
        rgb, captured = await track.capture()
        assert frame_number(rgb) == 0 and captured == timeline.start_s
        assert time.time() >= timeline.start_s - 0.005
    finally:
        track.stop()
        track._source.close()


async def test_a_webcam_hands_out_a_frame_captured_after_it_was_asked_for(tmp_path):
    """Read on its own thread (here from a file OpenCV opens like a device): the frame comes
    with its capture time, never one from before the request; when frames stop, reading
    fails with a SourceError instead of hanging."""
    camera = WebcamSource(str(numbered_clip(tmp_path / "cam.avi", 400, 30)), 64, 48)
    try:
        loop = asyncio.get_running_loop()
        asked = time.monotonic()
        rgb, captured = await loop.run_in_executor(None, camera.read_captured)
        assert rgb.shape == (48, 64, 3) and asked <= captured <= time.monotonic()
        with pytest.raises(SourceError, match="no frame"):
            async with asyncio.timeout(15):
                while True:  # the file ends: the "camera" stops delivering
                    await loop.run_in_executor(None, camera.read_captured)
    finally:
        camera.close()
    with pytest.raises(SourceError):
        camera.read_captured()

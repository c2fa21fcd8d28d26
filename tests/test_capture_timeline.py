"""The camera peer's capture timeline: video files replayed on their own timeline, in step
across the cameras of one process and from a given start; webcams read with the moment
their frame was captured."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

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
        shown: list[dict[int, tuple[int, float]]] = [{}, {}]  # instant -> (frame, captured)
        for _ in range(12):
            for track, frames in zip(tracks, shown, strict=True):
                rgb, captured = await track.capture()
                frames[track._instant] = (frame_number(rgb), captured)  # type: ignore[index]
        # a camera running late skips an instant (a busy machine): compare the ones both took
        both = sorted(set(shown[0]) & set(shown[1]))
        assert len(both) >= 8 and both[0] >= 12, shown  # 1.25 s after the start, at 10 fps
        for instant in both:
            assert shown[0][instant] == shown[1][instant]
            number, captured = shown[0][instant]
            # every other frame of the 20 fps recording, stamped with the recording's time
            assert number == (2 * instant) % 40
            assert captured == pytest.approx(start + instant / 10, abs=1e-6)
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


class PacedClip:
    """A clip OpenCV reads, delivering frames at `fps` the way a camera does (a grab waits
    for the next frame), then failing: a webcam for a machine without one."""

    def __init__(self, path: Path, fps: float) -> None:
        self._capture = cv2.VideoCapture(str(path))
        self._interval = 1 / fps
        self._next = time.monotonic()

    def grab(self) -> bool:
        wait = self._next - time.monotonic()
        if wait > 0:
            time.sleep(wait)  # pacing: the camera's next frame
        self._next = max(self._next, time.monotonic()) + self._interval
        return self._capture.grab()

    def __getattr__(self, name: str) -> Any:  # isOpened, retrieve, get, set, release
        return getattr(self._capture, name)


async def test_a_webcam_hands_out_a_frame_captured_after_it_was_asked_for(tmp_path):
    """Read on its own thread: the frame comes with its capture time, never one from
    before the request, and is the newest (read at 10 fps from a 30 fps camera, frames are
    a third apart, not queued); when frames stop, reading fails with a SourceError instead
    of hanging."""
    clip = numbered_clip(tmp_path / "cam.avi", 60, 30)
    camera = WebcamSource(str(clip), 64, 48, device=PacedClip(clip, 30))
    try:
        loop = asyncio.get_running_loop()
        asked = time.monotonic()
        rgb, captured = await loop.run_in_executor(None, camera.read_captured)
        assert rgb.shape == (48, 64, 3) and asked <= captured <= time.monotonic()
        numbers = [frame_number(rgb)]
        for _ in range(4):
            await asyncio.sleep(0.1)  # pacing: a 10 fps reader
            numbers.append(frame_number(camera.read()))
        steps = [b - a for a, b in zip(numbers, numbers[1:], strict=False)]
        # about 3 apart: the newest frames (a reader of queued buffers would step by 1)
        assert all(step >= 2 for step in steps), numbers
        with pytest.raises(SourceError, match="no frame"):
            async with asyncio.timeout(15):
                while True:  # the file ends: the "camera" stops delivering
                    await loop.run_in_executor(None, camera.read_captured)
    finally:
        camera.close()
    with pytest.raises(SourceError):
        camera.read_captured()

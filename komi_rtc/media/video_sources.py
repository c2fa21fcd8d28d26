"""Where a camera peer's frames come from: a webcam (`webcam.py`), a video file
(`video_file.py`), an image, or the demo (a rendered person exercising,
`komi_rtc.synthetic`); `open_source` picks one from what a person typed.

Every source returns RGB uint8 frames of the requested size; `read()` blocks (run it in a
thread). Files loop forever, so a machine without a webcam can stream indefinitely.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from ..synthetic import MOTIONS, ExercisingPersonSource
from .frame_source import FrameSource, LiveSource, RecordedSource, SourceError
from .video_file import VideoFileSource
from .webcam import WebcamSource, first_working_camera

__all__ = [  # the source types live in frame_source.py; named here for the callers
    "FrameSource",
    "LiveSource",
    "MovingPersonSource",
    "RecordedSource",
    "SourceError",
    "VideoFileSource",
    "WebcamSource",
    "demo_source",
    "open_source",
    "render_moving_person",
]

DEMO_EXERCISE, DEMO_VIEW = "squat", "side_left"  # found in every frame, counted exactly
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


class MovingPersonSource:
    """A still photo of a person gliding and bobbing in the frame, so poses change."""

    def __init__(self, image_path: Path, width: int, height: int, fps: float) -> None:
        image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        if image is None:
            raise SourceError(f"cannot read image {image_path}")
        self.description = f"moving image {image_path.name}"
        self._rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        self._width, self._height, self._fps = width, height, fps
        self._index = 0

    def read(self) -> np.ndarray:
        t = self._index / self._fps
        self._index += 1
        return render_moving_person(self._rgb, self._width, self._height, t)

    def close(self) -> None:
        pass


def render_moving_person(rgb: np.ndarray, width: int, height: int, t: float) -> np.ndarray:
    """Place the photo at a size and offset that vary smoothly with `t` (seconds)."""
    size = int(min(width, height) * (0.72 + 0.08 * math.sin(t * 0.9)))
    person = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[...] = (40, 44, 52)
    x = int((width - size) / 2 + (width - size) / 2 * 0.8 * math.sin(t * 0.6))
    y = int((height - size) / 2 + (height - size) / 2 * 0.8 * math.sin(t * 1.1))
    canvas[y : y + size, x : x + size] = person
    return canvas


def demo_source(spec: str, width: int, height: int, fps: float) -> ExercisingPersonSource:
    """`demo`, `demo:EXERCISE` or `demo:EXERCISE:VIEW` (front, side_left, side_right): a
    rendered person doing reps of a catalog exercise; raises SourceError for a bad spec."""
    _, _, rest = spec.partition(":")
    exercise, _, view = rest.partition(":")
    if not rest:
        exercise, view = DEMO_EXERCISE, DEMO_VIEW
    elif not view:  # the exercise's own view: front if it has one, else its left side
        views = MOTIONS[exercise]["views"] if exercise in MOTIONS else ["side"]
        view = "front" if "front" in views else "side_left"
    try:
        return ExercisingPersonSource(width, height, fps, exercise, view)
    except (ValueError, KeyError) as exc:
        raise SourceError(
            f"--source {spec}: {exc}; views are front, side_left and side_right"
        ) from None


def open_source(spec: str | int | None, width: int, height: int, fps: float) -> FrameSource:
    """`demo[:EXERCISE[:VIEW]]`, an image (animated), a video file (a recording: its own
    frame rate, else `fps`), a webcam index, or None: the first webcam."""
    if isinstance(spec, str) and (spec == "demo" or spec.startswith("demo:")):
        return demo_source(spec, width, height, fps)
    if spec is None:
        return WebcamSource(first_working_camera(), width, height)
    if isinstance(spec, int) or str(spec).isdigit():
        return WebcamSource(int(spec), width, height)
    path = Path(spec)
    if not path.exists():
        raise SourceError(f"no such file: {path}")
    if path.suffix.lower() in _IMAGE_SUFFIXES:
        return MovingPersonSource(path, width, height, fps)
    return VideoFileSource(str(path), width, height, fps)

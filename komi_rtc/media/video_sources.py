"""Where a camera peer's frames come from: a webcam, a video or image file, or the demo
(a rendered person exercising, `komi_rtc.synthetic`).

Every source returns RGB uint8 frames of the requested size; `read()` blocks (run it in a
thread). Files loop forever, so a machine without a webcam can stream indefinitely.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from ..synthetic import MOTIONS, ExercisingPersonSource

DEMO_EXERCISE, DEMO_VIEW = "squat", "side_left"  # found in every frame, counted exactly
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


class FrameSource(Protocol):
    description: str

    def read(self) -> np.ndarray:
        """The next RGB frame (H, W, 3); raises SourceError when the source fails."""
        ...

    def close(self) -> None: ...


class SourceError(RuntimeError):
    pass


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


class CaptureSource:
    """A webcam index or a video file through OpenCV; files rewind at their end."""

    def __init__(self, target: int | str, width: int, height: int) -> None:
        self._capture = cv2.VideoCapture(target)
        if not self._capture.isOpened():
            raise SourceError(f"cannot open video source {target!r}")
        self._is_file = isinstance(target, str)
        if not self._is_file:
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self._size = (width, height)
        self.description = f"camera {target}" if not self._is_file else f"file {target}"

    def read(self) -> np.ndarray:
        ok, frame = self._capture.read()
        if not ok and self._is_file:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._capture.read()
        if not ok or frame is None:
            raise SourceError(f"{self.description}: no frame")
        if (frame.shape[1], frame.shape[0]) != self._size:
            frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        self._capture.release()


def first_working_camera(limit: int = 8) -> int:
    for index in range(limit):
        capture = cv2.VideoCapture(index)
        try:
            if capture.isOpened() and capture.read()[0]:
                return index
        finally:
            capture.release()
    raise SourceError("no webcam found; use --source FILE or --source demo")


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
    """`demo[:EXERCISE[:VIEW]]`, an image (animated), a video file, a webcam index, or None:
    the first webcam."""
    if isinstance(spec, str) and (spec == "demo" or spec.startswith("demo:")):
        return demo_source(spec, width, height, fps)
    if spec is None:
        return CaptureSource(first_working_camera(), width, height)
    if isinstance(spec, int) or str(spec).isdigit():
        return CaptureSource(int(spec), width, height)
    path = Path(spec)
    if not path.exists():
        raise SourceError(f"no such file: {path}")
    if path.suffix.lower() in _IMAGE_SUFFIXES:
        return MovingPersonSource(path, width, height, fps)
    return CaptureSource(str(path), width, height)

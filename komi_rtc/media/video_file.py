"""A video file as a recording: any frame of its own timeline, looping.

A camera peer replays a file on its capture timeline: the frame shown at an instant is the
file's frame of that instant (`index = floor(t * frame_rate)`), whatever the peer's fps, so
several files of one synchronised recording stay in step. Frames are reached by grabbing
forward (no decoding), rewinding at the end: exact for every codec, unlike seeking.
"""

from __future__ import annotations

import math
import threading

import cv2
import numpy as np

from .frame_source import SourceError

_MAX_PLAUSIBLE_FPS = 1000.0


class VideoFileSource:
    def __init__(self, path: str, width: int, height: int, fallback_fps: float) -> None:
        """`fallback_fps`: the frame rate when the file does not state one."""
        self._capture = cv2.VideoCapture(path)
        if not self._capture.isOpened():
            raise SourceError(f"cannot open video source {path!r}")
        stated = self._capture.get(cv2.CAP_PROP_FPS)
        plausible = math.isfinite(stated) and 0 < stated <= _MAX_PLAUSIBLE_FPS
        self.frame_rate = float(stated) if plausible else fallback_fps
        self._size = (width, height)
        self.description = f"file {path}"
        self._position = 0  # the index the next decoded frame has
        self._frame_count: int | None = None  # known once the end was reached
        self._next = 0  # read()'s next index
        self._lock = threading.Lock()
        self._closed = False

    def frame(self, index: int) -> np.ndarray:
        """Frame `index` (0 is the first; past the end the file starts again), RGB."""
        if index < 0:
            raise ValueError("a frame index is never negative")
        # a peer reads in an executor thread and may close meanwhile: OpenCV aborts the
        # process when a capture is released during a read
        with self._lock:
            if self._closed:
                raise SourceError(f"{self.description}: closed")
            return self._frame(index)

    def _frame(self, index: int) -> np.ndarray:
        while True:
            if self._frame_count is not None:
                index %= self._frame_count
            if index < self._position:
                self._rewind()
            while self._position < index and self._capture.grab():
                self._position += 1
            ok, bgr = (False, None) if self._position < index else self._capture.read()
            if ok and bgr is not None:
                self._position += 1
                break
            if self._position == 0:
                raise SourceError(f"{self.description}: no frame")
            self._frame_count = self._position  # the end: now the length is known
            self._rewind()
        if (bgr.shape[1], bgr.shape[0]) != self._size:
            bgr = cv2.resize(bgr, self._size, interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    @property
    def frame_count(self) -> int | None:
        """The number of frames, once a read has reached the end."""
        return self._frame_count

    def read(self) -> np.ndarray:
        """The frame after the last one read (frame by frame, looping)."""
        rgb = self.frame(self._next)
        self._next += 1
        return rgb

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._capture.release()

    def _rewind(self) -> None:
        self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
        self._position = 0

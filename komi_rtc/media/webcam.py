"""A USB webcam whose frames come with the moment they were captured.

OpenCV hands out the oldest of the buffers the driver has queued: a camera delivering 30
fps and read at 10 has its queue full, so a frame read "now" was captured a few frames
earlier, by an amount that differs from camera to camera. Here a thread grabs every frame
as the camera delivers it (a grab dequeues without decoding) and decodes only the first
frame grabbed after a frame was asked for: the frame handed out is at most one camera
interval old, and its capture time is known. That time is the driver's buffer timestamp
when it is on `time.monotonic()`'s clock (Linux V4L2: when the frame's first bytes came
in), else the moment the grab returned.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from typing import Any

import cv2
import numpy as np

from .frame_source import SourceError

logger = logging.getLogger(__name__)

READ_TIMEOUT_S = 5.0  # a camera that delivers nothing this long has failed
_FAILED_GRABS = 50  # grabs failing in a row before the camera is given up
_RETRY_S = 0.02  # between failed grabs
_PLAUSIBLE_BUFFER_AGE_S = 0.5  # a buffer timestamp older (or newer) is on another clock


class WebcamSource:
    """A webcam index (or any OpenCV capture target) read on its own thread; `close()` stops
    the thread and releases the device."""

    def __init__(self, target: int | str, width: int, height: int, device: Any = None) -> None:
        """`device`: an opened capture to read instead of opening `target` (anything with
        OpenCV's isOpened/grab/retrieve/get/set/release: a test paces a file like a camera)."""
        self._capture = device if device is not None else cv2.VideoCapture(target)
        if not self._capture.isOpened():
            raise SourceError(f"cannot open video source {target!r}")
        if isinstance(target, int):
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self._size = (width, height)
        self.description = f"camera {target}"
        self._wanted: queue.SimpleQueue[Future[tuple[np.ndarray, float]]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._failure: str | None = None
        self._thread = threading.Thread(target=self._grab_frames, name=f"webcam {target}")
        self._thread.daemon = True  # close() joins it; a crash never keeps the process alive
        self._thread.start()

    def read_captured(self) -> tuple[np.ndarray, float]:
        """The first frame captured after this call (blocks for at most one camera
        interval) and when it was captured (`time.monotonic()` seconds); SourceError when
        the camera fails."""
        if self._failure is not None:
            raise SourceError(self._failure)
        wanted: Future[tuple[np.ndarray, float]] = Future()
        self._wanted.put(wanted)
        if self._failure is not None:  # failed meanwhile, after refusing what was waiting
            self._fail(self._failure)
        try:
            return wanted.result(timeout=READ_TIMEOUT_S)
        except TimeoutError:
            raise SourceError(f"{self.description}: no frame for {READ_TIMEOUT_S:g} s") from None

    def read(self) -> np.ndarray:
        return self.read_captured()[0]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=READ_TIMEOUT_S)
        self._fail("the camera was closed")

    def _grab_frames(self) -> None:
        failed = 0
        try:
            while not self._stop.is_set():
                if not self._capture.grab():
                    failed += 1
                    if failed >= _FAILED_GRABS:
                        self._fail(f"{self.description}: no frame (unplugged?)")
                        return
                    time.sleep(_RETRY_S)  # pacing retries of a camera that hiccuped
                    continue
                failed = 0
                captured = self._capture_time(time.monotonic())
                try:
                    wanted = self._wanted.get_nowait()
                except queue.Empty:
                    continue  # nobody asked: this frame is skipped undecoded
                ok, bgr = self._capture.retrieve()
                if not ok or bgr is None:
                    wanted.set_exception(SourceError(f"{self.description}: no frame"))
                    continue
                if (bgr.shape[1], bgr.shape[0]) != self._size:
                    bgr = cv2.resize(bgr, self._size, interpolation=cv2.INTER_AREA)
                wanted.set_result((cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), captured))
        except Exception as exc:  # an OpenCV error: the camera is unusable
            logger.exception("%s failed", self.description)
            self._fail(f"{self.description}: {exc}")
        finally:
            self._capture.release()

    def _capture_time(self, grabbed_at: float) -> float:
        """The driver's timestamp of the grabbed buffer when it is on the monotonic clock
        (plausibly just before the grab returned), else when the grab returned."""
        stamp = self._capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        if grabbed_at - _PLAUSIBLE_BUFFER_AGE_S <= stamp <= grabbed_at:
            return stamp
        return grabbed_at

    def _fail(self, reason: str) -> None:
        """Refuse every frame asked for now and later with `reason`."""
        if self._failure is None:
            self._failure = reason
        while True:
            try:
                wanted = self._wanted.get_nowait()
            except queue.Empty:
                return
            if not wanted.done():
                wanted.set_exception(SourceError(self._failure))


def first_working_camera(limit: int = 8) -> int:
    for index in range(limit):
        capture = cv2.VideoCapture(index)
        try:
            if capture.isOpened() and capture.read()[0]:
                return index
        finally:
            capture.release()
    raise SourceError("no webcam found; use --source FILE or --source demo")

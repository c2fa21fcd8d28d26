"""A pool of pose worker processes, so inference uses every core and never the event loop.

Each camera is pinned to one worker (its estimator keeps tracking state) and owns one
shared-memory slot: the newest frame is written there once and the worker reads it in
place, so a frame crosses processes without pickling or re-encoding. Cameras take a
worker's turn in order and hand over their newest frame only when they hold it, so a worker
serves its cameras fairly and no frame waits in a queue.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np

from .estimator import ModelError, Pose, PoseEstimator
from .followed_person import close_searchers
from .keyframes import KeyframeTracker
from .model_choice import PoseSettings, create_estimator
from .native_log import filter_native_stderr

logger = logging.getLogger(__name__)

_START_TIMEOUT_S = 120.0


class WorkerFailed(RuntimeError):
    """The worker process died or could not analyse a frame."""


@dataclass(frozen=True)
class PoseResult:
    """`inference_ms`: the worker's time on this frame (model, or flow when `tracked`);
    `since_model`: frames since the model last ran (0 on a model frame); `person_id`: whom
    the camera follows (a new number when it follows someone else)."""

    poses: list[Pose]
    inference_ms: float
    tracked: bool = False
    since_model: int = 0
    person_id: int | None = None


# ---------------------------------------------------------------- worker process side


def _frame_view(buffer: memoryview, fmt: str, width: int, height: int) -> np.ndarray:
    if fmt == "rgb24":
        return np.ndarray((height, width, 3), dtype=np.uint8, buffer=buffer)
    return np.ndarray((height * 3 // 2, width), dtype=np.uint8, buffer=buffer)


def _worker_main(conn: Connection, settings: PoseSettings) -> None:
    """Serve analyse requests until told to stop or the pipe closes. Ctrl-C in a terminal
    signals the whole process group: a worker ignores it and is stopped by the server, in
    order (a worker that died of it was restarted mid-shutdown, with a traceback)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import cv2

    # one core's worth of work per worker: OpenCV's own thread pool split each optical flow
    # over two threads and spent 1.5 ms of CPU where one thread spends 0.85 (same points)
    cv2.setNumThreads(1)
    filter_native_stderr()
    try:
        spare: PoseEstimator | None = create_estimator(settings)  # loaded before "ready"
    except ModelError as exc:
        conn.send(("failed", str(exc)))
        return
    conn.send(("ready", os.getpid()))
    trackers: dict[str, KeyframeTracker] = {}
    slots: dict[str, SharedMemory] = {}
    rgb_buffers: dict[str, np.ndarray] = {}
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            break
        kind = request[0]
        if kind == "stop":
            break
        if kind == "forget":
            camera_id = request[1]
            tracker = trackers.pop(camera_id, None)
            if tracker is not None:
                tracker.close()
            slot = slots.pop(camera_id, None)
            if slot is not None:
                slot.close()
            rgb_buffers.pop(camera_id, None)
            continue
        _, request_id, camera_id, slot_name, fmt, width, height, timestamp_ms, movement = request
        served: KeyframeTracker | None = None
        try:
            slot = slots.get(camera_id)
            if slot is None or slot.name != slot_name:
                if slot is not None:
                    slot.close()
                # Spawned workers share the server's resource tracker; the server unlinks.
                slot = SharedMemory(name=slot_name)
                slots[camera_id] = slot
            frame = _frame_view(slot.buf, fmt, width, height)  # type: ignore[arg-type]
            tracker = trackers.get(camera_id)
            if tracker is None:
                first = spare if spare is not None else create_estimator(settings)
                spare = None
                tracker = KeyframeTracker(first, settings.max_keyframe_interval)
                trackers[camera_id] = tracker
            started = time.perf_counter()
            to_rgb: Callable[[], np.ndarray]
            if fmt == "yuv420p":
                luma = frame[:height]  # the Y plane, in place
                rgb = rgb_buffers.get(camera_id)
                if rgb is None or rgb.shape[:2] != (height, width):
                    rgb = rgb_buffers[camera_id] = np.empty((height, width, 3), np.uint8)
                # converted only when the model runs on this frame
                to_rgb = functools.partial(cv2.cvtColor, frame, cv2.COLOR_YUV2RGB_I420, dst=rgb)
            else:
                luma = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
                to_rgb = functools.partial(np.asarray, frame)

            served = tracker
            found = tracker.process(luma, to_rgb, timestamp_ms, movement)
            inference_ms = (time.perf_counter() - started) * 1000.0
            del frame, luma, to_rgb
            reply: tuple = (
                "result",
                request_id,
                [p.keypoints for p in found.poses],
                inference_ms,
                found.tracked,
                found.since_model,
                found.person_id,
            )
        except Exception as exc:  # noqa: BLE001 - reported to the owner, worker lives on
            reply = ("error", request_id, f"{type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except (OSError, EOFError):  # the server is gone (killed): nobody to answer, stop
            break
        if served is not None:
            try:  # the result is on its way; the frame's other work is done now
                served.after_result()
            except Exception as exc:  # noqa: BLE001 - the camera's next frames go on
                logger.warning("[%s] pose worker: work after the result failed: %s", camera_id, exc)
    for tracker in trackers.values():
        tracker.close()
    if spare is not None:
        spare.close()
    close_searchers()
    for slot in slots.values():
        slot.close()


# ---------------------------------------------------------------- server process side


class _Worker:
    """One process, its pipe, and a thread that hands results to the waiting futures."""

    def __init__(self, index: int, settings: PoseSettings) -> None:
        self.index = index
        self.cameras: set[str] = set()
        self._settings = settings
        self._pending: dict[int, asyncio.Future[PoseResult]] = {}
        self._lock = threading.Lock()
        self._stopping = False
        self._process: Any = None
        self._conn: Connection | None = None
        self._reader: threading.Thread | None = None
        self._turns: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}

    def turn(self) -> asyncio.Lock:
        """The worker's turn: cameras take it in arrival order (asyncio.Lock is FIFO) and
        hand over the frame only once they hold it, so no frame waits in a queue to go stale.
        One lock per event loop (tests run several loops against one pool)."""
        loop = asyncio.get_running_loop()
        lock = self._turns.get(loop)
        if lock is None:
            self._turns = {lp: lk for lp, lk in self._turns.items() if not lp.is_closed()}
            lock = self._turns[loop] = asyncio.Lock()
        return lock

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe(duplex=True)
        process = context.Process(
            target=_worker_main,
            args=(child, self._settings),
            name=f"komi-pose-{self.index}",
            daemon=True,
        )
        process.start()
        child.close()
        if not parent.poll(_START_TIMEOUT_S):
            process.kill()
            raise WorkerFailed(f"pose worker {self.index} did not start")
        try:
            status = parent.recv()
        except EOFError:
            raise WorkerFailed(f"pose worker {self.index} exited while starting") from None
        if status[0] != "ready":
            process.join(5)
            raise ModelError(status[1])
        with self._lock:
            self._process, self._conn = process, parent
        self._reader = threading.Thread(
            target=self._read_results, name=f"komi-pose-reader-{self.index}", daemon=True
        )
        self._reader.start()
        logger.info("pose worker %d ready (pid %d)", self.index, status[1])

    def submit(self, future: asyncio.Future[PoseResult], request: tuple[Any, ...]) -> None:
        with self._lock:
            if self._conn is None:
                raise WorkerFailed(f"pose worker {self.index} is not running")
            self._pending[request[1]] = future
            self._conn.send(request)

    def send(self, request: tuple[Any, ...]) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.send(request)
                except OSError:
                    pass

    def _read_results(self) -> None:
        conn = self._conn
        assert conn is not None
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            kind, request_id = message[0], message[1]
            future = self._pending.pop(request_id, None)
            if future is None:
                continue
            if kind == "result":
                value: PoseResult | WorkerFailed = PoseResult(
                    [Pose(k) for k in message[2]], *message[3:7]
                )
            else:
                value = WorkerFailed(message[2])
            _settle_threadsafe(future, value)
        self._on_exit()

    def _on_exit(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._conn = None
            stopping = self._stopping
        for future in pending.values():
            _settle_threadsafe(future, WorkerFailed(f"pose worker {self.index} exited"))
        if not stopping:
            logger.error("pose worker %d died; starting a new one", self.index)
            try:
                self.start()
            except Exception:
                logger.exception("pose worker %d could not be restarted", self.index)

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            conn, process = self._conn, self._process
        if conn is not None:
            try:
                conn.send(("stop",))
            except OSError:
                pass
        if process is not None:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(1)
        if conn is not None:
            conn.close()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(5)


def _settle_threadsafe(future: asyncio.Future[PoseResult], value: Any) -> None:
    try:
        future.get_loop().call_soon_threadsafe(_settle, future, value)
    except RuntimeError:
        pass  # that event loop is closed: nobody waits any more


def _settle(future: asyncio.Future[PoseResult], value: PoseResult | WorkerFailed) -> None:
    if future.done():
        return
    if isinstance(value, WorkerFailed):
        future.set_exception(value)
    else:
        future.set_result(value)


SLOT_PREFIX = "komi_frame_"
_slot_numbers = itertools.count(1)


def _slot_name() -> str:
    """Frame slots are named for this process, so a leak is attributable (tests count them)."""
    return f"{SLOT_PREFIX}{os.getpid()}_{next(_slot_numbers)}"


class CameraPoseChannel:
    """A camera's link to its worker: one shared-memory slot, one frame in flight."""

    def __init__(self, pool: PoseWorkerPool, worker: _Worker, camera_id: str) -> None:
        self.camera_id = camera_id
        self._pool = pool
        self._worker = worker
        self._slot: SharedMemory | None = None
        self._closed = False
        self._in_flight = 0

    def _ensure_slot(self, size: int) -> SharedMemory:
        if self._slot is None or self._slot.size < size:
            if self._slot is not None:
                self._slot.close()
                self._slot.unlink()
            self._slot = SharedMemory(create=True, size=size, name=_slot_name())
        return self._slot

    def write_rgb(self, rgb: np.ndarray) -> tuple[str, int, int]:
        height, width = rgb.shape[:2]
        slot = self._ensure_slot(height * width * 3)
        np.ndarray(rgb.shape, np.uint8, buffer=slot.buf)[...] = rgb
        return "rgb24", width, height

    def write_yuv420p(self, planes: Any, width: int, height: int) -> tuple[str, int, int]:
        """Copy the three planes of a yuv420p av.VideoFrame into the slot, dropping padding."""
        slot = self._ensure_slot(width * height * 3 // 2)
        offset = 0
        for plane, (plane_w, plane_h) in zip(
            planes,
            ((width, height), (width // 2, height // 2), (width // 2, height // 2)),
            strict=True,
        ):
            source = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
            target: np.ndarray = np.ndarray(
                (plane_h, plane_w), np.uint8, buffer=slot.buf, offset=offset
            )
            target[...] = source[:plane_h, :plane_w]
            offset += plane_w * plane_h
        return "yuv420p", width, height

    def turn(self) -> asyncio.Lock:
        """Hold this while writing a frame and analysing it (see _Worker.turn)."""
        return self._worker.turn()

    @property
    def busy(self) -> bool:
        """A frame of this camera is with the worker."""
        return self._in_flight > 0

    async def analyse(
        self, layout: tuple[str, int, int], timestamp_ms: int, signal: float | None = None
    ) -> PoseResult:
        """Analyse the frame last written; raises WorkerFailed. `timestamp_ms`: the frame's
        capture time (the model's smoothing uses the real intervals); `signal`: the analysis's
        joint angle, so the model runs near a repetition's turning point (keyframes.py)."""
        if self._closed or self._slot is None:
            raise WorkerFailed("camera channel is closed")
        future: asyncio.Future[PoseResult] = asyncio.get_running_loop().create_future()
        fmt, width, height = layout
        request_id = next(self._pool._request_ids)
        self._worker.submit(
            future,
            (
                "analyse",
                request_id,
                self.camera_id,
                self._slot.name,
                fmt,
                width,
                height,
                timestamp_ms,
                signal,
            ),
        )
        self._in_flight += 1
        try:
            return await future
        finally:
            self._in_flight -= 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._worker.send(("forget", self.camera_id))
        self._worker.cameras.discard(self.camera_id)
        if self._slot is not None:
            self._slot.close()
            self._slot.unlink()
            self._slot = None


class PoseWorkerPool:
    """Owns the worker processes; `start()` blocks until every model is loaded."""

    def __init__(self, workers: int | None = None, settings: PoseSettings | None = None) -> None:
        self.size = workers or os.cpu_count() or 1
        self.settings = settings or PoseSettings()
        self._workers = [_Worker(i, self.settings) for i in range(self.size)]
        self._request_ids = itertools.count(1)

    def start(self) -> None:
        started = time.perf_counter()
        try:
            for worker in self._workers:
                worker.start()
        except BaseException:
            self.stop()
            raise
        logger.info(
            "%d pose worker(s) ready in %.1f s (model: %s)",
            self.size,
            time.perf_counter() - started,
            self.settings.describe(),
        )

    def worker_pids(self) -> list[int]:
        """The running worker processes' ids (benchmarks read their CPU time)."""
        return [w._process.pid for w in self._workers if w._process is not None]

    def open_camera(self, camera_id: str) -> CameraPoseChannel:
        """Pin the camera to the worker with the fewest cameras."""
        worker = min(self._workers, key=lambda w: (len(w.cameras), w.index))
        worker.cameras.add(camera_id)
        return CameraPoseChannel(self, worker, camera_id)

    def stop(self) -> None:
        for worker in self._workers:
            worker.stop()

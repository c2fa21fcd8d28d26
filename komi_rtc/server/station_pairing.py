"""Pairing a station's analysed frames by capture time (docs/protocol.md, "Stations").

Frames are paired within half a capture interval of the cameras (media/capture_clock.py); a
group waits for its missing views at most `MAX_WAIT_S` (longer on a busy server, whose
cameras analyse the same instants in turn: station_instants.py), then goes on with the
views that are there.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..media.capture_clock import fundamental_step

MAX_WAIT_S = 0.15  # a group waits this long for a late view, then goes on without it
MAX_WAIT_BUSY_S = 1.5  # ... or, on a server analysing frames further apart, up to this
MAX_WAITING = 8  # frames of one camera waiting for partners; the oldest is let go first
DEFAULT_INTERVAL_S = 1 / 15
MIN_INTERVAL_S = 1 / 240  # closer capture times are one frame seen twice, not an interval
INTERVAL_WINDOW = 32  # analysed frames whose smallest capture step is the capture interval


@dataclass
class ViewItem:
    """One camera's analysed frame, as a station sees it."""

    camera_id: str
    captured: float  # server clock
    pts: int
    poses: list[dict[str, Any]]
    width: int
    height: int
    analysis: dict[str, Any] | None
    reps: list[dict[str, Any]]
    arrived: float = field(default_factory=time.monotonic)
    capture_interval_s: float | None = None  # the camera's, from its received frames
    clock: str | None = None  # the camera's clock, as its offer named it
    camera_captured: float | None = None  # capture time in that clock (s)

    def after(self, other: ViewItem) -> float:
        """How much later (s) this frame was captured than `other`: on their own clock
        when both cameras name one (exact: the estimate of its offset to the server's
        clock moves while a busy server analyses one instant's views a second apart),
        else on the server's clock."""
        if (
            self.clock is not None
            and self.clock == other.clock
            and self.camera_captured is not None
            and other.camera_captured is not None
        ):
            return self.camera_captured - other.camera_captured
        return self.captured - other.captured

    def keypoints(self) -> np.ndarray | None:
        """The most prominent person as (33, 3): x px, y px, confidence."""
        if not self.poses:
            return None

        def area(pose: dict[str, Any]) -> float:
            xs = [k["x"] for k in pose["keypoints"]]
            ys = [k["y"] for k in pose["keypoints"]]
            return (max(xs) - min(xs)) * (max(ys) - min(ys))

        pose = max(self.poses, key=area)
        return np.array(
            [[k["x"], k["y"], k.get("confidence", 1.0)] for k in pose["keypoints"]], np.float64
        )


class Pairer:
    """Groups the newest frames of a station's cameras whose capture times lie within half
    a capture interval (the cameras' own, learnt from the capture times, not the interval
    of the analysed frames, which grows under load); never holds a frame longer than
    `max_wait_s`."""

    def __init__(
        self, emit: Callable[[list[ViewItem]], None], max_wait_s: float = MAX_WAIT_S
    ) -> None:
        self._emit = emit
        self._max_wait_s = max_wait_s
        self.cameras: list[str] = []
        self._waiting: dict[str, deque[ViewItem]] = {}
        self._last_captured: dict[str, float] = {}
        self._last_item: dict[str, ViewItem] = {}
        self._interval: dict[str, float] = {}  # capture interval (s) of each camera
        self._steps: dict[str, deque[float]] = {}
        self._last_arrival: dict[str, float] = {}
        self._arrival_step: dict[str, float] = {}  # seconds between a camera's analysed frames
        self._timer: asyncio.TimerHandle | None = None

    @property
    def tolerance_s(self) -> float:
        """Half the shortest capture interval of the station's cameras: two frames further
        apart than that are of different instants, however slowly they are analysed."""
        intervals = [self._interval.get(c, DEFAULT_INTERVAL_S) for c in self.cameras]
        return 0.5 * min(intervals, default=DEFAULT_INTERVAL_S)

    @property
    def wait_s(self) -> float:
        """How long a frame waits for the other views: `max_wait_s`, or, when the cameras'
        frames are analysed further apart than that (a busy server, whose cameras then take
        the same instants in rounds: station_instants.py), twice the longest step between a
        camera's analysed frames (a round's last view comes up to a step after its first,
        more when a worker is slow), up to `MAX_WAIT_BUSY_S`."""
        steps = [self._arrival_step[c] for c in self.cameras if c in self._arrival_step]
        busy = 2.0 * max(steps, default=0.0)
        return min(MAX_WAIT_BUSY_S, max(self._max_wait_s, busy))

    @property
    def analysed_step_s(self) -> float | None:
        """The longest of the cameras' steps between analysed frames (seconds)."""
        steps = [self._arrival_step[c] for c in self.cameras if c in self._arrival_step]
        return max(steps) if steps else None

    def set_cameras(self, cameras: list[str]) -> None:
        self.cameras = list(cameras)
        for camera_id in list(self._waiting):
            if camera_id not in cameras:
                del self._waiting[camera_id]

    def add(self, item: ViewItem) -> None:
        previous = self._last_captured.get(item.camera_id)
        if previous is not None and MIN_INTERVAL_S <= item.captured - previous < 1.0:
            # analysed frames are whole capture intervals apart (a busy worker skips
            # frames): the smallest recent step is at most the capture interval, and the
            # camera's received frame rate tells it when no two analysed frames are adjacent
            steps = self._steps.setdefault(item.camera_id, deque(maxlen=INTERVAL_WINDOW))
            steps.append(item.captured - previous)
            self._interval[item.camera_id] = fundamental_step(steps) or DEFAULT_INTERVAL_S
        hint = item.capture_interval_s
        if hint is not None and MIN_INTERVAL_S <= hint < self._interval.get(item.camera_id, 1.0):
            self._interval[item.camera_id] = hint
        self._last_captured[item.camera_id] = item.captured
        self._last_item[item.camera_id] = item
        last_arrival = self._last_arrival.get(item.camera_id)
        if last_arrival is not None and item.arrived - last_arrival < MAX_WAIT_BUSY_S:
            step = item.arrived - last_arrival
            old = self._arrival_step.get(item.camera_id, step)
            self._arrival_step[item.camera_id] = 0.7 * old + 0.3 * step
        self._last_arrival[item.camera_id] = item.arrived
        queue = self._waiting.setdefault(item.camera_id, deque())
        if len(queue) >= MAX_WAITING:
            _carry_reps(queue.popleft(), queue[0] if queue else item)
        queue.append(item)
        self._pair(item)
        self._expire()

    def _nearest(self, camera_id: str, item: ViewItem) -> ViewItem | None:
        queue = self._waiting.get(camera_id)
        if not queue:
            return None
        best = min(queue, key=lambda i: abs(i.after(item)))
        return best if abs(best.after(item)) <= self.tolerance_s else None

    def _take(self, group: list[ViewItem]) -> None:
        for item in group:
            queue = self._waiting[item.camera_id]
            while any(waiting is item for waiting in queue):
                # this frame and older ones of that camera are done (they come in order)
                skipped = queue.popleft()
                if skipped is not item:
                    _carry_reps(skipped, item)
        self._emit(group)

    def _pair(self, item: ViewItem) -> None:
        """Emit every group that is complete: each other camera either has a frame of
        the instant or has already sent a later one (frames of a camera come in capture
        order, so none of that instant will come); oldest first."""
        del item  # any waiting frame may be complete now, not only the new one
        while True:
            waiting = sorted(
                (i for queue in self._waiting.values() for i in queue), key=lambda i: i.captured
            )
            for candidate in waiting:
                group = self._complete(candidate)
                if group is not None:
                    self._take(group)
                    break
            else:
                return

    def _complete(self, item: ViewItem) -> list[ViewItem] | None:
        group = [item]
        for camera_id in self.cameras:
            if camera_id == item.camera_id:
                continue
            partner = self._nearest(camera_id, item)
            if partner is not None:
                group.append(partner)
                continue
            last = self._last_item.get(camera_id)
            if last is None or last.after(item) <= self.tolerance_s:
                return None  # wait for it (bounded by _expire)
        return group

    def _expire(self) -> None:
        now = time.monotonic()
        while True:
            waiting = [q[0] for q in self._waiting.values() if q]
            if not waiting:
                break
            oldest = min(waiting, key=lambda i: i.arrived)
            wait_s = self.wait_s
            if now - oldest.arrived < wait_s:
                self._schedule(oldest.arrived + wait_s - now)
                return
            group = [oldest]
            for camera_id in self.cameras:
                if camera_id != oldest.camera_id:
                    partner = self._nearest(camera_id, oldest)
                    if partner is not None:
                        group.append(partner)
            self._take(group)

    def _schedule(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(max(0.0, delay), self._expire)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._waiting.clear()


def _carry_reps(skipped: ViewItem, later: ViewItem) -> None:
    """A frame left out of every group may still have completed a rep: the camera's next
    grouped frame carries it, or the station would never count (or confirm) that rep."""
    if skipped.reps:
        later.reps[:0] = skipped.reps

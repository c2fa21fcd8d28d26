"""When a camera peer's cameras capture: one host clock and one grid of instants for all the
cameras of a process.

A station pairs frames by capture time, so the cameras of one PC should capture at the same
instants and say so on the same clock. `HostClock` reads the machine's wall clock (unix
seconds) through `time.monotonic()`, so a clock step (NTP) never makes a camera's
timestamps run backwards; a webcam's buffer timestamps (monotonic) convert into it.
`CaptureTimeline` is the grid `start + k / fps` every camera of the process is paced on: a
frame of instant k is taken at the same moment by every camera, and a recording (a video
file) shows the frame of its own timeline at `k / fps`, so files of one synchronised
recording replay in step, within one process (a shared start) or across processes and
machines (`--start-at`).
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time


class HostClock:
    """The wall clock in unix seconds, advancing with `time.monotonic()` from one reading."""

    def __init__(self) -> None:
        self._wall_minus_monotonic = time.time() - time.monotonic()
        # named in each camera's offer: the server estimates one offset for the cameras of
        # one clock (media/capture_clock.py); random, so it says nothing about the host
        self.id = f"clock-{secrets.token_hex(8)}"

    def now(self) -> float:
        return time.monotonic() + self._wall_minus_monotonic

    def wall_of_monotonic(self, monotonic_s: float) -> float:
        return monotonic_s + self._wall_minus_monotonic

    def monotonic_of_wall(self, wall_s: float) -> float:
        return wall_s - self._wall_minus_monotonic


class CaptureTimeline:
    """Instants `start_s + k * interval_s` (unix seconds); `start_s` None: the first instant
    asked for starts it (the process's cameras share the moment the first one streams)."""

    def __init__(
        self, fps: float, start_s: float | None = None, clock: HostClock | None = None
    ) -> None:
        if not fps > 0:
            raise ValueError("fps must be positive")
        self.interval_s = 1.0 / fps
        self.start_s = start_s
        self.clock = clock or HostClock()

    def next_instant(self, after: int | None, from_start: bool = False) -> tuple[int, float]:
        """The instant to capture next after instant `after` (None: the first): the one after
        it, or the last one passed when that is later (a late camera skips, never bursts).
        `from_start`: no instant before the start (a recording waits for it)."""
        now = self.clock.now()
        if self.start_s is None:
            self.start_s = now
        index = math.floor((now - self.start_s) / self.interval_s)
        if after is not None:
            index = max(index, after + 1)
        if from_start:
            index = max(index, 0)
        return index, self.start_s + index * self.interval_s

    async def wait_for(self, at_s: float) -> None:
        """Sleep until `at_s` on this clock (pacing a camera; returns at once if passed)."""
        delay = at_s - self.clock.now()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing: the timeline's next instant

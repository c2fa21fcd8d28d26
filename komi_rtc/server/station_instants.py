"""A busy server analyses the same instants of every camera of a station, in rounds.

When the workers cannot analyse every frame, each camera analysing its own newest frame gives
groups of one view (on Pose2Sim's lab footage under load, 93% of groups held one view), and
a shared grid of instants still gave mostly one or two views a group: a camera that got a
worker late had moved on to the next instant. 3-D needs the views of one instant, and with
two views a whole-body mirrored labelling cannot be told from the right one. So the cameras
of a station that share a clock (one process's: their capture times compare exactly) take
part in rounds: the first camera to get a worker picks the newest instant every camera has
received, each camera analyses its own frame of that instant, and a camera done with a round
waits (bounded, `wait_s`) for the others before it starts the next. A server that keeps up
analyses every camera's newest frame without rounds. Pure bookkeeping, owned by a Station.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

# a camera whose newest frame is this much older than the others' is not waited for (on a
# starved machine a station's cameras' frames were seen arriving up to 2 s apart)
STALLED_S = 3.0


@dataclass
class _Round:
    instant: float  # capture time (server clock) every camera analyses this round
    pending: set[str]  # cameras that have not analysed it yet
    deadline: float  # monotonic: after this the round is over for everyone
    done: asyncio.Event = field(default_factory=asyncio.Event)


class SharedInstants:
    """Which frame of a station camera to analyse, and whether a camera waits for a round."""

    def __init__(self) -> None:
        self._round: _Round | None = None
        self._analysed_until: dict[str, float] = {}  # camera -> capture time analysed last
        self.rounds = 0
        self.rounds_complete = 0

    def choose(
        self,
        camera_id: str,
        candidates: list[tuple[float, T]],
        newest: dict[str, float],
        interval_s: float,
        busy: bool,
        wait_s: float,
    ) -> T | None:
        """This camera's frame to analyse, or None when the round's instant has not arrived
        from it yet or is gone from it (its worker then waits for its next frame).
        `candidates`: its last frames (capture time, frame; oldest first); `newest`: the
        newest capture time each camera of the station has received (this one included);
        `interval_s`: the cameras' capture interval; `busy`: the server analyses frames
        further apart than that; `wait_s`: how long a round may wait for its slowest
        camera."""
        newest_time, newest_frame = candidates[-1]
        last = self._analysed_until.get(camera_id, float("-inf"))
        half = 0.5 * interval_s
        if not busy or interval_s <= 0:
            self._finish()
            self._analysed_until[camera_id] = newest_time
            return newest_frame
        current = self._round
        now = time.monotonic()
        if current is None or current.done.is_set() or now > current.deadline:
            current = self._start(newest, [t for t, _ in candidates], half, now, wait_s)
        if camera_id not in current.pending:  # far behind the others: not in this round
            if newest_time <= last + half:
                return None
            self._analysed_until[camera_id] = newest_time
            return newest_frame
        capture_time, frame = min(candidates, key=lambda c: abs(c[0] - current.instant))
        if abs(capture_time - current.instant) > half or capture_time <= last + half:
            if newest_time < current.instant - half:
                return None  # this camera's frame of the instant is still on its way
            # that instant is gone here (a dropped frame): sit this round out rather than
            # analyse another instant, which no other view would pair with
            self._leave_round(current, camera_id)
            return None
        self._leave_round(current, camera_id)
        self._analysed_until[camera_id] = capture_time
        return frame

    def _leave_round(self, current: _Round, camera_id: str) -> None:
        current.pending.discard(camera_id)
        if not current.pending:
            self._finish()

    async def wait_turn(self, camera_id: str) -> None:
        """Before taking a worker: a camera that has analysed the current round's instant
        waits until every camera has (or the round's time is up), so that the next round
        starts from an instant all of them have."""
        current = self._round
        if current is None or camera_id in current.pending or current.done.is_set():
            return
        remaining = current.deadline - time.monotonic()
        if remaining > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(current.done.wait(), remaining)

    def forget(self, camera_id: str) -> None:
        """A camera left the station: the round does not wait for it."""
        self._analysed_until.pop(camera_id, None)
        if self._round is not None:
            self._leave_round(self._round, camera_id)

    def close(self) -> None:
        self._finish()

    def _start(
        self, newest: dict[str, float], own: list[float], half: float, now: float, wait_s: float
    ) -> _Round:
        """A round at the newest instant that every camera has received and none has
        analysed yet; when a camera is behind, the first of this camera's frames past
        everything analysed (one clock: every camera captures at the same instants).
        Cameras whose newest frame is `STALLED_S` older than the others' are not waited for."""
        self._finish()
        latest = max(newest.values())
        live = {c: t for c, t in newest.items() if latest - t <= STALLED_S}
        done = max((self._analysed_until.get(c, float("-inf")) for c in live), default=0.0)
        instant = min(live.values())
        if instant <= done + half:
            instant = next((t for t in own if t > done + half), done + 2 * half)
        self._round = _Round(instant, set(live), now + wait_s)
        self.rounds += 1
        return self._round

    def _finish(self) -> None:
        current = self._round
        if current is not None and not current.done.is_set():
            if not current.pending:
                self.rounds_complete += 1
            current.done.set()

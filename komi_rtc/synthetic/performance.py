"""A person performing an exercise over time: sets of reps with pauses, looping forever.

Time is in seconds from the start. Each loop is a lead-in at rest, a set of reps (down, hold
at the peak, up, pause) and a rest; the truth a benchmark needs (when each rep ends) comes
from the same timetable that moves the joints.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from .motions import MOTIONS, pose_at
from .skeleton import Joints


@dataclass(frozen=True)
class Tempo:
    """Seconds for each phase of a set."""

    down: float = 1.1  # rest to peak
    hold: float = 0.25  # at the peak
    up: float = 1.1  # peak back to rest
    pause: float = 0.5  # at rest between reps
    lead_in: float = 1.5  # at rest before the set
    set_rest: float = 1.5  # at rest after the set


@dataclass(frozen=True)
class RepTiming:
    """One repetition: seconds from the start of the performance."""

    start: float
    peak: float  # the middle of the hold at the peak
    end: float


def _smooth(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)


class ExercisePerformance:
    """Sets of `reps_per_set` reps of a catalog exercise, repeated forever.

    A hold (an exercise without a movement, the plank) stays at its peak and has no reps.
    Raises KeyError for an exercise the motion table does not know.
    """

    def __init__(
        self,
        exercise: str,
        view: str = "side",
        reps_per_set: int = 5,
        tempo: Tempo = Tempo(),
        errors: Collection[str] = (),
    ) -> None:
        self.exercise = exercise
        self.is_hold = not MOTIONS[exercise]["move"]
        self._view = view
        self._errors = frozenset(errors)
        self._tempo = tempo
        self._reps_per_set = 0 if self.is_hold else reps_per_set
        rep = tempo.down + tempo.hold + tempo.up
        self._set_reps: list[RepTiming] = []
        t = tempo.lead_in
        for _ in range(self._reps_per_set):
            self._set_reps.append(RepTiming(t, t + tempo.down + tempo.hold / 2, t + rep))
            t += rep + tempo.pause
        self.loop_seconds = (t - tempo.pause if self._set_reps else t) + tempo.set_rest

    def progress_at(self, t: float) -> float:
        """0 at rest, 1 at the peak of a rep."""
        if self.is_hold:
            return 1.0
        local = t % self.loop_seconds
        tempo = self._tempo
        for rep in self._set_reps:
            if rep.start <= local < rep.end:
                into = local - rep.start
                if into < tempo.down:
                    return _smooth(into / tempo.down)
                if into < tempo.down + tempo.hold:
                    return 1.0
                return 1.0 - _smooth((into - tempo.down - tempo.hold) / tempo.up)
        return 0.0

    def joints_at(self, t: float) -> Joints:
        return pose_at(self.exercise, self.progress_at(t), self._errors, self._view)

    def reps_until(self, t: float) -> list[RepTiming]:
        """Every rep that has ended by time `t`, in order."""
        done: list[RepTiming] = []
        loop = 0
        while self._set_reps and loop * self.loop_seconds < t:
            base = loop * self.loop_seconds
            for rep in self._set_reps:
                if base + rep.end <= t:
                    done.append(RepTiming(base + rep.start, base + rep.peak, base + rep.end))
            loop += 1
        return done

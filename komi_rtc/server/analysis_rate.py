"""How many frames a camera sends and how many get analysed, and whether the server keeps up.

Under overload a camera's older frames are skipped, never queued; this makes that visible:
the rates travel with every result (`timing`), /stats lists them, and the log says once
when a camera starts and stops being skipped for lack of CPU. A `--analysis-fps` cap is not
overload: frames skipped because of it are skipped on purpose.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Literal

logger = logging.getLogger(__name__)

Transition = Literal["overloaded", "recovered"] | None

_ENTER_SHARE = 0.9  # analysed below 90% of what could be analysed: overloaded
_LEAVE_SHARE = 0.95  # back above 95%: recovered (the gap keeps the log from flapping)


class _EventRate:
    """Events per second over a sliding window (over the stream's age while that is shorter)."""

    def __init__(self, window_s: float) -> None:
        self._window_s = window_s
        self._times: deque[float] = deque()

    def tick(self, now: float) -> None:
        self._times.append(now)

    def per_second(self, now: float, age_s: float) -> float:
        times = self._times
        while times and times[0] <= now - self._window_s:
            times.popleft()
        # a young stream is measured over its age, but at least a second (no wild first values)
        span = min(self._window_s, max(age_s, 1.0))
        return len(times) / span


class AnalysisRate:
    def __init__(
        self, cap_fps: float | None = None, window_s: float = 5.0, settle_s: float = 2.0
    ) -> None:
        self._started: float | None = None  # the first frame's arrival
        self._cap_fps = cap_fps
        self._settle_s = settle_s
        self._received = _EventRate(window_s)
        self._analysed = _EventRate(window_s)
        self.received_fps = 0.0
        self.analysed_fps = 0.0
        self.overloaded = False

    def frame_received(self, now: float) -> None:
        if self._started is None:
            self._started = now
        self._received.tick(now)

    @property
    def cap_fps(self) -> float | None:
        return self._cap_fps

    def age(self, now: float) -> float:
        """Seconds since the first frame (0 before it)."""
        return now - self._started if self._started is not None else 0.0

    def refresh(self, now: float) -> float:
        """Recompute both rates (also for readers such as /stats); returns the stream's age."""
        age = now - (self._started if self._started is not None else now)
        self.received_fps = self._received.per_second(now, age)
        self.analysed_fps = self._analysed.per_second(now, age)
        return age

    def frame_analysed(self, now: float) -> Transition:
        """Update the rates; returns the transition, if any, so the caller logs it once."""
        self._analysed.tick(now)
        age = self.refresh(now)
        if age < self._settle_s:
            return None
        wanted = self.received_fps
        if self._cap_fps is not None:
            wanted = min(wanted, self._cap_fps)
        share = self.analysed_fps / wanted if wanted > 0 else 1.0
        if not self.overloaded and share < _ENTER_SHARE:
            self.overloaded = True
            return "overloaded"
        if self.overloaded and share >= _LEAVE_SHARE:
            self.overloaded = False
            return "recovered"
        return None


@dataclass
class SessionStats:
    """A camera's frame counts, for `/stats`."""

    frames_received: int = 0
    frames_analysed: int = 0
    analysis_failures: int = 0

    @property
    def frames_skipped(self) -> int:
        return max(0, self.frames_received - self.frames_analysed - self.analysis_failures)


def log_transition(camera_id: str, rate: AnalysisRate, transition: Transition) -> None:
    """One line when a camera starts skipping frames for lack of CPU, one when it keeps up."""
    if transition == "overloaded":
        logger.warning(
            "[%s] server busy: analysing %.1f of %.1f fps; older frames are skipped, "
            "not queued (more --workers, a lower camera fps or --analysis-fps help)",
            camera_id,
            rate.analysed_fps,
            rate.received_fps,
        )
    elif transition == "recovered":
        logger.info(
            "[%s] keeping up again: analysing %.1f of %.1f fps",
            camera_id,
            rate.analysed_fps,
            rate.received_fps,
        )

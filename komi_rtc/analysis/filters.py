"""The One Euro filter (Casiez et al., CHI 2012): smooths jitter, keeps fast motion."""

from __future__ import annotations

import math


class OneEuroFilter:
    def __init__(self, min_cutoff: float = 1.5, beta: float = 0.02, d_cutoff: float = 1.0) -> None:
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self._value: float | None = None
        self._derivative = 0.0
        self._time: float | None = None

    @staticmethod
    def _alpha(cutoff: float, dt: float) -> float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, value: float, t: float) -> float:
        if self._value is None or self._time is None or t <= self._time:
            self._value, self._time = value, t
            return value
        dt = t - self._time
        if dt > 1.0:  # a long gap: start over rather than drag the old value along
            self._value, self._time, self._derivative = value, t, 0.0
            return value
        derivative = (value - self._value) / dt
        a_d = self._alpha(self.d_cutoff, dt)
        self._derivative = a_d * derivative + (1 - a_d) * self._derivative
        cutoff = self.min_cutoff + self.beta * abs(self._derivative)
        a = self._alpha(cutoff, dt)
        self._value = a * value + (1 - a) * self._value
        self._time = t
        return self._value

    def reset(self) -> None:
        self._value, self._time, self._derivative = None, None, 0.0

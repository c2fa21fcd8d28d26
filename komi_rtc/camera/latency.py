"""Latency bookkeeping shared by the camera peer and the benchmark."""

from __future__ import annotations

from collections import deque

import numpy as np


class LatencyWindow:
    """The last `size` latencies in milliseconds, with percentiles."""

    def __init__(self, size: int = 300) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self.count = 0

    def add(self, milliseconds: float) -> None:
        self._values.append(milliseconds)
        self.count += 1

    def percentile(self, q: float) -> float | None:
        if not self._values:
            return None
        return float(np.percentile(np.fromiter(self._values, float), q))

    def clear(self) -> None:
        self._values.clear()

"""How alike a repetition is to a reference one: dynamic time warping of joint-angle
trajectories, for custom exercises derived from a trainer's recording (`derive.py`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

TEMPLATE_POINTS = 32


def resample(values: list[float] | np.ndarray, points: int = TEMPLATE_POINTS) -> np.ndarray:
    values = np.asarray(values, float)
    if len(values) == 1:
        return np.repeat(values, points)
    return np.interp(np.linspace(0, len(values) - 1, points), np.arange(len(values)), values)


def dtw_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference along the best warping path (degrees)."""
    n, m = len(a), len(b)
    cost = np.full((n + 1, m + 1), np.inf)
    steps = np.zeros((n + 1, m + 1))
    cost[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            choices = (cost[i - 1, j], cost[i, j - 1], cost[i - 1, j - 1])
            k = int(np.argmin(choices))
            previous = ((i - 1, j), (i, j - 1), (i - 1, j - 1))[k]
            cost[i, j] = abs(a[i - 1] - b[j - 1]) + choices[k]
            steps[i, j] = steps[previous] + 1
    return float(cost[n, m] / steps[n, m])


def similarity_score(reference: dict[str, Any], values: list[float]) -> float:
    """100 for a repetition as close to the reference as the trainer's own repetitions were
    to each other (`tolerance_deg`, their mean DTW distance), falling as it departs further."""
    distance = dtw_distance(resample(values), np.asarray(reference["template"], float))
    tolerance = float(reference.get("tolerance_deg", 5.0))
    scale = max(6.0, 2.0 * tolerance)
    return 100.0 * math.exp(-max(0.0, distance - tolerance) / scale)

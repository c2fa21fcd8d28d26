"""Custom exercises from a trainer's reference recording (offline: `... analysis derive`).

`derive_exercise` finds the joint angle that moves most, its rest and peak, and keeps the
mean trajectory of the reference repetitions; a user's repetition then scores by the
dynamic-time-warping distance of its trajectory to that template.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from . import geometry as g
from .catalog import Catalog, CatalogError, _exercise
from .filters import OneEuroFilter
from .live import LiveAnalysis, frame_time, main_pose
from .replay import read_recording
from .similarity import dtw_distance, resample


def derive_exercise(recording: Path, exercise_id: str, name: str) -> dict[str, Any]:
    """A definition (the catalog's format plus `reference`) from a few recorded reps."""
    messages = list(read_recording(recording))
    if len(messages) < 10:
        raise CatalogError(f"{recording}: too few frames to learn an exercise from")
    series: dict[tuple[str, str], list[float]] = {}
    times: list[float] = []
    views: Counter[str] = Counter()
    filters: dict[tuple[str, str], OneEuroFilter] = {}
    for message in messages:
        pose = main_pose(message)
        if pose is None:
            continue
        kp = g.keypoints_from_json(pose)
        t = frame_time(message)
        times.append(t)
        view = g.view_of(kp)
        if view:
            views[view] += 1
        for angle in ("knee", "hip", "elbow", "shoulder"):
            for side in g.SIDES:
                key = (angle, side)
                value = g.side_angle(kp, angle, side)
                values = series.setdefault(key, [])
                if value is None:
                    values.append(values[-1] if values else float("nan"))
                    continue
                values.append(filters.setdefault(key, OneEuroFilter())(value, t))
    if not series:
        raise CatalogError(f"{recording}: nobody is seen in the recording")

    def spread(values: list[float]) -> float:
        array = np.asarray(values, float)
        array = array[np.isfinite(array)]
        return float(np.percentile(array, 95) - np.percentile(array, 5)) if len(array) else 0.0

    (angle, side), values = max(series.items(), key=lambda item: spread(item[1]))
    array = np.asarray(values, float)
    if spread(values) < 25:
        raise CatalogError(f"{recording}: no joint moves more than 25 degrees")
    start = array[np.isfinite(array)][: max(3, len(array) // 20)]
    rest_value = float(np.median(start))
    low, high = np.nanpercentile(array, 5), np.nanpercentile(array, 95)
    extreme = float(low if abs(low - rest_value) > abs(high - rest_value) else high)
    view = views.most_common(1)[0][0] if views else "side"
    definition: dict[str, Any] = {
        "id": exercise_id,
        "name": {"en": name, "ko": name},
        "kind": "reps",
        "views": [view],
        "side": "best",
        "needs": list(g.ANGLES[angle]),
        "signal": {
            view: {
                "angle": angle,
                "rest": round(rest_value + 0.25 * (extreme - rest_value), 1),
                "peak": round(rest_value + 0.75 * (extreme - rest_value), 1),
            }
        },
        "rules": [],
    }
    if view != "side":
        definition["signal"]["side"] = definition["signal"][view]
    exercise = _exercise(definition, str(recording))
    # cut the reference into repetitions with the very counter that will score users
    live = LiveAnalysis("derive", Catalog())
    live.catalog.add(exercise)
    live.set_exercise(exercise_id)
    for message in messages:
        live.update(message)
    assert live.analyser is not None
    reps = live.analyser.rep_results
    if not reps:
        raise CatalogError(f"{recording}: no complete repetition found in the reference")
    time_array = np.asarray(times)
    trajectories = []
    for rep in reps:
        mask = (time_array >= rep["ended_at"] - rep["duration_s"]) & (time_array <= rep["ended_at"])
        segment = array[: len(time_array)][mask]
        segment = segment[np.isfinite(segment)]
        if len(segment) >= 3:
            trajectories.append(resample(segment))
    template = np.mean(trajectories, axis=0)
    distances = [dtw_distance(t, template) for t in trajectories]
    definition["reference"] = {
        "angle": angle,
        "template": [round(float(v), 2) for v in template],
        "tolerance_deg": round(float(np.mean(distances)) if distances else 5.0, 2),
        "reps": len(trajectories),
    }
    return definition

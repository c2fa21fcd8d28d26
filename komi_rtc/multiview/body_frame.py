"""What a person's triangulated keypoints say about the world: their stature (the scale of a
self-calibration) and where the floor and their facing direction are (a world frame).

Stature: BlazePose's keypoints stop at the ankles and the face, so the body height is read
from the chain ankle -> knee -> hip -> shoulder (shin + thigh + trunk, each the median
length over the frames, averaged over both sides), which is 0.779 of stature in Winter's
anthropometric table (shoulder height 0.818 H, ankle height 0.039 H; Winter, Biomechanics
and Motor Control of Human Movement, fig. 4.1). Segment lengths do not change as the person
moves, so this holds in a squat as well as standing.

The person's world frame: origin on the floor below the midpoint of the ankles, Y up (from
the ankles toward the shoulders in the most upright frames), X toward the person's left
(their hips and shoulders, left minus right), Z = X x Y the way they face; metres. The floor
is `SOLE` of the stature below the lowest foot keypoint (the median over frames).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..protocol import KEYPOINT_INDEX as K
from .cameras import StationCalibration

CHAIN_SHARE_OF_STATURE = 0.818 - 0.039
SOLE = 0.035  # the heel and toe keypoints sit about this share of stature above the floor
PERSON_FRAME = (
    "the person's: origin on the floor between the ankles, X to their left, Y up, "
    "Z forward (metres)"
)
_MIN_CONFIDENCE = 0.3


def _visible(pose: np.ndarray, *names: str) -> bool:
    return all(pose[K[name], 3] >= _MIN_CONFIDENCE for name in names)


def _mid(pose: np.ndarray, name: str) -> np.ndarray:
    return (pose[K[f"left_{name}"], :3] + pose[K[f"right_{name}"], :3]) / 2


def _median_length(poses: Sequence[np.ndarray], a: str, b: str) -> float | None:
    lengths = []
    for pose in poses:
        for side in ("left", "right"):
            if _visible(pose, f"{side}_{a}", f"{side}_{b}"):
                lengths.append(
                    np.linalg.norm(pose[K[f"{side}_{a}"], :3] - pose[K[f"{side}_{b}"], :3])
                )
    return float(np.median(lengths)) if lengths else None


def estimate_stature(poses: Sequence[np.ndarray]) -> float:
    """The body height, in the units of `poses` ((33, 4) arrays x, y, z, confidence).
    Raises ValueError when the legs or the trunk were never seen."""
    shin = _median_length(poses, "knee", "ankle")
    thigh = _median_length(poses, "hip", "knee")
    trunks = [
        np.linalg.norm(_mid(p, "shoulder") - _mid(p, "hip"))
        for p in poses
        if _visible(p, "left_shoulder", "right_shoulder", "left_hip", "right_hip")
    ]
    if shin is None or thigh is None or not trunks:
        raise ValueError("the legs and the trunk must be seen to estimate the stature")
    return (shin + thigh + float(np.median(trunks))) / CHAIN_SHARE_OF_STATURE


def person_frame(poses: Sequence[np.ndarray], stature: float) -> tuple[np.ndarray, np.ndarray]:
    """(rotation, origin) of the person's world frame in the frame of `poses`: a point P is
    `rotation @ (P - origin)` in it. Raises ValueError when the body was never seen whole."""
    whole = [
        p
        for p in poses
        if _visible(
            p,
            "left_shoulder",
            "right_shoulder",
            "left_hip",
            "right_hip",
            "left_ankle",
            "right_ankle",
        )
    ]
    if not whole:
        raise ValueError("the whole body must be seen to place the floor")
    rising = np.array([_mid(p, "shoulder") - _mid(p, "ankle") for p in whole])
    length = np.linalg.norm(rising, axis=1)
    upright = rising[length >= np.quantile(length, 0.75)]
    up = np.mean(upright / np.linalg.norm(upright, axis=1, keepdims=True), axis=0)
    up /= np.linalg.norm(up)
    lateral = np.mean(
        [
            p[K["left_hip"], :3]
            - p[K["right_hip"], :3]
            + p[K["left_shoulder"], :3]
            - p[K["right_shoulder"], :3]
            for p in whole
        ],
        axis=0,
    )
    left = lateral - up * float(lateral @ up)
    left /= np.linalg.norm(left)
    forward = np.cross(left, up)
    rotation = np.vstack([left, up, forward])
    feet = [
        K[f"{side}_{part}"]
        for side in ("left", "right")
        for part in ("heel", "foot_index", "ankle")
    ]
    lowest = []
    for p in whole:
        seen = [i for i in feet if p[i, 3] >= _MIN_CONFIDENCE]
        lowest.append(min(float(p[i, :3] @ up) for i in seen))
    floor = float(np.median(lowest)) - SOLE * stature
    ankles = np.median([_mid(p, "ankle") for p in whole], axis=0)
    origin = ankles - up * (float(ankles @ up) - floor)
    return rotation, origin


def anchor_to_person(
    calibration: StationCalibration, poses: Sequence[np.ndarray]
) -> StationCalibration:
    """`calibration` moved into the person's world frame (see the module docstring), from
    poses triangulated with it ((33, 4) arrays). The scale is unchanged."""
    stature = estimate_stature(poses)
    rotation, origin = person_frame(poses, stature)
    return calibration.transformed(rotation, origin, 1.0, PERSON_FRAME)

"""Joint angles of a triangulated pose, in 3-D: what the 2-D analyser measures in one image,
without the foreshortening of a single view.

The angle names are the analyser's (`komi_rtc.analysis.geometry.ANGLES`, a sibling package
this one may not import; tests hold the two tables equal): "left_knee" is the angle at the
left knee between the left hip and the left ankle, in degrees, 180 when straight.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..protocol import KEYPOINT_INDEX as K

# angle name -> (a, vertex, b) for each side, as in the analyser's geometry
ANGLES: dict[str, tuple[str, str, str]] = {
    "knee": ("hip", "knee", "ankle"),
    "hip": ("shoulder", "hip", "knee"),
    "elbow": ("shoulder", "elbow", "wrist"),
    "shoulder": ("hip", "shoulder", "elbow"),
    "body_line": ("shoulder", "hip", "ankle"),
}
SIDES = ("left", "right")
MIN_CONFIDENCE = 0.3


def pose_array(pose3d: list[dict[str, Any]] | np.ndarray) -> np.ndarray:
    """The wire form (a list of `{"id", "x", "y", "z", "confidence"}`) or an (N, 4) array ->
    a (33, 4) array x, y, z, confidence; missing keypoints get confidence 0."""
    if isinstance(pose3d, np.ndarray):
        array = np.zeros((len(K), 4))
        array[: pose3d.shape[0], : pose3d.shape[1]] = pose3d[:, :4]
        return array
    array = np.zeros((len(K), 4))
    for keypoint in pose3d:
        index = int(keypoint["id"])
        if 0 <= index < len(K):
            array[index] = (
                keypoint["x"],
                keypoint["y"],
                keypoint["z"],
                keypoint.get("confidence", 1.0),
            )
    return array


def angle_between(a: np.ndarray, vertex: np.ndarray, b: np.ndarray) -> float | None:
    """The angle at `vertex` (degrees, 0..180); None when a segment has no length."""
    u, v = a - vertex, b - vertex
    nu, nv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    if nu < 1e-9 or nv < 1e-9:
        return None
    cosine = float(u @ v) / (nu * nv)
    return math.degrees(math.acos(max(-1.0, min(1.0, cosine))))


def joint_angles_3d(
    pose3d: list[dict[str, Any]] | np.ndarray, min_confidence: float = MIN_CONFIDENCE
) -> dict[str, float]:
    """{"left_knee": degrees, "right_knee": ..., "left_hip", "left_elbow", "left_shoulder",
    "left_body_line", ...} for every angle whose three joints have at least
    `min_confidence`; the others are left out."""
    array = pose_array(pose3d)
    angles: dict[str, float] = {}
    for side in SIDES:
        for name, parts in ANGLES.items():
            rows = [array[K[f"{side}_{part}"]] for part in parts]
            if min(float(row[3]) for row in rows) < min_confidence:
                continue
            value = angle_between(rows[0][:3], rows[1][:3], rows[2][:3])
            if value is not None:
                angles[f"{side}_{name}"] = value
    return angles

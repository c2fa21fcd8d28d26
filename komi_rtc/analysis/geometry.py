"""Joint angles and body measurements from 33 BlazePose keypoints, in image pixels.

Everything takes a (33, 4) array of x, y, z, confidence and ignores keypoints whose
confidence is below the threshold (they give None instead of a wrong number).
"""

from __future__ import annotations

import math

import numpy as np

from ..protocol import KEYPOINT_INDEX as K

MIN_CONFIDENCE = 0.5
# The far side of a person seen in profile: BlazePose still places its joints well, but
# gives them a visibility of about 0.25-0.4 (measured on rendered video). An exercise that
# must read that side (a lunge filmed from its back leg's side) accepts it down to here.
FAR_SIDE_CONFIDENCE = 0.15
# Positions only, for the view: a hidden shoulder is still placed behind the near one.
VIEW_CONFIDENCE = 0.05

# angle name -> (a, vertex, b) for each side; the angle is measured at the vertex, degrees.
ANGLES: dict[str, tuple[str, str, str]] = {
    "knee": ("hip", "knee", "ankle"),
    "hip": ("shoulder", "hip", "knee"),
    "elbow": ("shoulder", "elbow", "wrist"),
    "shoulder": ("hip", "shoulder", "elbow"),  # arm raised from the torso (flexion/abduction)
    "body_line": ("shoulder", "hip", "ankle"),
}
SIDES = ("left", "right")


def point(kp: np.ndarray, name: str, min_confidence: float = MIN_CONFIDENCE) -> np.ndarray | None:
    row = kp[K[name]]
    if row[3] < min_confidence:
        return None
    return row[:2]


def angle_at(a: np.ndarray, vertex: np.ndarray, b: np.ndarray) -> float | None:
    u, v = a - vertex, b - vertex
    nu, nv = math.hypot(u[0], u[1]), math.hypot(v[0], v[1])
    if nu < 1e-6 or nv < 1e-6:
        return None
    cosine = float(u[0] * v[0] + u[1] * v[1]) / (nu * nv)
    return math.degrees(math.acos(max(-1.0, min(1.0, cosine))))


def side_angle(
    kp: np.ndarray, angle: str, side: str, min_confidence: float = MIN_CONFIDENCE
) -> float | None:
    a, vertex, b = (point(kp, f"{side}_{part}", min_confidence) for part in ANGLES[angle])
    if a is None or vertex is None or b is None:
        return None
    return angle_at(a, vertex, b)


def distance(p: np.ndarray | None, q: np.ndarray | None) -> float | None:
    if p is None or q is None:
        return None
    return math.hypot(float(p[0] - q[0]), float(p[1] - q[1]))


def midpoint(
    kp: np.ndarray, name: str, min_confidence: float = MIN_CONFIDENCE
) -> np.ndarray | None:
    left = point(kp, f"left_{name}", min_confidence)
    right = point(kp, f"right_{name}", min_confidence)
    if left is None and right is None:
        return None
    if left is None or right is None:
        return left if left is not None else right
    return (left + right) / 2


def torso_length(kp: np.ndarray, min_confidence: float = MIN_CONFIDENCE) -> float | None:
    return distance(midpoint(kp, "shoulder", min_confidence), midpoint(kp, "hip", min_confidence))


def view_of(kp: np.ndarray) -> str | None:
    """'front' when the shoulders are wide relative to the torso, 'side' when narrow.

    Reads positions whatever their visibility: in profile the far shoulder is hidden (low
    visibility) but BlazePose still puts it just behind the near one, which is the point."""
    width = distance(
        point(kp, "left_shoulder", VIEW_CONFIDENCE), point(kp, "right_shoulder", VIEW_CONFIDENCE)
    )
    torso = torso_length(kp, VIEW_CONFIDENCE)
    if width is None or not torso:
        return None
    ratio = width / torso
    if ratio > 0.45:
        return "front"
    if ratio < 0.3:
        return "side"
    return None


# segment -> (upper end, lower end, reference segment, reference length ratio)
_FORESHORTENED = {
    "thigh": ("hip", "knee", ("knee", "ankle"), 1.0),
    "forearm": ("elbow", "wrist", ("shoulder", "elbow"), 0.85),
}


def segment_length(
    kp: np.ndarray, segment: str, side: str, min_confidence: float = MIN_CONFIDENCE
) -> float | None:
    """How long a foreshortening segment (`thigh`, `forearm`) looks now, pixels."""
    top, bottom, _, _ = _FORESHORTENED[segment]
    return distance(
        point(kp, f"{side}_{top}", min_confidence), point(kp, f"{side}_{bottom}", min_confidence)
    )


def foreshortened_angle(
    kp: np.ndarray,
    segment: str,
    side: str,
    min_confidence: float = MIN_CONFIDENCE,
    full_length: float | None = None,
) -> float | None:
    """A joint angle bending toward the camera, from how short the segment looks.

    Seen from the front, a squatting thigh or a curling forearm shortens instead of turning,
    so its 2-D angle stays near 180 degrees. The segment's vertical extent over its length
    (estimated from a neighbouring segment) is the cosine of the flexion. Returns degrees on
    a side view's scale: 180 straight down, 90 pointing at the camera, less when raised.

    `full_length`: the segment's own length when it hung straight (pixels), if known. On
    video it is the better reference: BlazePose's knee sits a few pixels off, which makes a
    neighbouring segment's length a biased estimate (a standing thigh then reads 154, not
    180, degrees)."""
    top, bottom, (ref_a, ref_b), ratio = _FORESHORTENED[segment]
    p, q = point(kp, f"{side}_{top}", min_confidence), point(kp, f"{side}_{bottom}", min_confidence)
    reference: float | None = full_length
    if full_length:
        ratio = 1.0
    else:
        reference = distance(
            point(kp, f"{side}_{ref_a}", min_confidence),
            point(kp, f"{side}_{ref_b}", min_confidence),
        )
    if p is None or q is None or not reference:
        return None
    cosine = max(-1.0, min(1.0, float(q[1] - p[1]) / (reference * ratio)))
    return 180.0 - math.degrees(math.acos(cosine))


def hip_height(kp: np.ndarray, side: str, min_confidence: float = MIN_CONFIDENCE) -> float | None:
    """How far the hip is above the ankle, pixels (image y grows downwards)."""
    hip, ankle = (
        point(kp, f"{side}_hip", min_confidence),
        point(kp, f"{side}_ankle", min_confidence),
    )
    if hip is None or ankle is None:
        return None
    return float(ankle[1] - hip[1])


def lowered_angle(height: float, standing_height: float) -> float:
    """A knee-angle scale from how far the hips came down: 180 standing, 90 with the thighs
    level, less below. Seen from the front a squatting thigh points at the camera and
    BlazePose places the knee badly (it slides toward the ankle), while hips and ankles stay
    well placed; with thigh and shin of about equal length, hip height = L (1 + cos flex)."""
    cosine = max(-1.0, min(1.0, 2.0 * height / standing_height - 1.0))
    return 180.0 - math.degrees(math.acos(cosine))


def hip_sag(kp: np.ndarray, side: str) -> float | None:
    """How far the hip hangs below the shoulder-ankle line, in torso lengths (+ = sagging)."""
    s, h, a = (point(kp, f"{side}_{part}") for part in ("shoulder", "hip", "ankle"))
    torso = distance(s, h)
    if s is None or h is None or a is None or not torso:
        return None
    line = a - s
    length = math.hypot(line[0], line[1])
    if length < 1e-6:
        return None
    # signed distance of h from the line s->a; image y grows downwards
    cross = (line[0] * (h[1] - s[1]) - line[1] * (h[0] - s[0])) / length
    # make "below the line" positive whichever way the body faces
    return float(cross / torso) * (1.0 if line[0] >= 0 else -1.0)


def knee_width_ratio(kp: np.ndarray) -> float | None:
    """Distance between the knees over distance between the ankles (front view)."""
    knees = distance(point(kp, "left_knee"), point(kp, "right_knee"))
    ankles = distance(point(kp, "left_ankle"), point(kp, "right_ankle"))
    if knees is None or not ankles:
        return None
    return knees / ankles


def signal_parts(
    angle: str | None, foreshortened: str | None, lowered: str | None
) -> tuple[str, ...]:
    """The body parts (one side's, without the side) a counting signal is measured from:
    counting needs these, and only these, in the picture."""
    if angle is not None:
        return ANGLES[angle]
    if foreshortened is not None:
        top, bottom, reference, _ = _FORESHORTENED[foreshortened]
        return tuple(dict.fromkeys((top, bottom, *reference)))
    if lowered is not None:
        return (lowered, "ankle")
    return ()


def in_frame(kp: np.ndarray, names: list[tuple[str, float]], width: int, height: int) -> bool:
    """All named keypoints seen with at least their confidence, inside the picture."""
    margin = 0.01
    for name, min_confidence in names:
        x, y, _, c = kp[K[name]]
        if c < min_confidence:
            return False
        if not (-margin * width <= x <= (1 + margin) * width):
            return False
        if not (-margin * height <= y <= (1 + margin) * height):
            return False
    return True


def keypoints_from_json(pose: dict) -> np.ndarray:
    """The `pose_data.pose[i]` object of a frame_processed message as a (33, 4) array."""
    array = np.zeros((33, 4), np.float32)
    for keypoint in pose["keypoints"]:
        array[int(keypoint["id"])] = (
            keypoint["x"],
            keypoint["y"],
            keypoint.get("z", 0.0),
            keypoint.get("confidence", 1.0),
        )
    return array

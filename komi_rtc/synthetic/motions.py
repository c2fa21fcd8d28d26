"""Every catalog exercise as a motion of the kinematic skeleton: the joints at rest and at the peak.

Each motion is data: the views it is filmed from, joints held fixed, {joint path: (rest,
peak)} and what each injected form error changes. A path is "attr" or "attr.side"; ".both"
sets both sides. An error value is a peak (reached with the rep) or ("constant", value).
`pose_at` turns a rep's progress (0 at rest, 1 at the peak) into `Joints`.

The keypoint benchmark (`komi_rtc.bench.sessions`) and the rendered videos share this table.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from .skeleton import Joints

MOTIONS: dict[str, dict[str, Any]] = {
    "squat": {
        "views": ["side", "front"],
        "move": {"hip_flex.both": (0, 95), "knee_flex.both": (0, 110), "torso_pitch": (0, 35)},
        "errors": {
            "shallow": {"hip_flex.both": 70, "knee_flex.both": 72},
            "knees_cave": {"knee_in": 0.28},
        },
        "error_views": {"knees_cave": ["front"]},
    },
    "push_up": {
        "views": ["side"],
        "fixed": {"body_pitch": -90, "shoulder_flex.both": 90, "shoulder_abd.both": 0},
        "move": {"elbow_flex.both": (5, 90)},
        "errors": {"hips_sag": {"hip_drop": ("constant", 0.4)}, "shallow": {"elbow_flex.both": 72}},
    },
    "lunge_left": {
        "views": ["side"],
        "move": {
            "hip_flex.left": (0, 80),
            "knee_flex.left": (0, 90),
            "hip_flex.right": (0, -25),
            "knee_flex.right": (0, 80),
        },
        "errors": {"shallow": {"hip_flex.left": 62, "knee_flex.left": 72}},
    },
    "lunge_right": {
        "views": ["side"],
        "move": {
            "hip_flex.right": (0, 80),
            "knee_flex.right": (0, 90),
            "hip_flex.left": (0, -25),
            "knee_flex.left": (0, 80),
        },
        "errors": {"shallow": {"hip_flex.right": 62, "knee_flex.right": 72}},
    },
    "bicep_curl": {
        "views": ["side", "front"],
        "move": {"elbow_flex.both": (5, 130)},
        "errors": {
            "elbows_flare": {"shoulder_flex.both": 50},
            "elbows_flare@front": {"shoulder_abd.both": 50},
            "asymmetric": {"elbow_flex.right": 85},
        },
        "error_views": {"asymmetric": ["front"]},
    },
    "shoulder_press": {
        "views": ["front"],
        "fixed": {"elbow_plane": "frontal"},
        "move": {"shoulder_abd.both": (95, 174), "elbow_flex.both": (85, 4)},
        "errors": {
            "asymmetric": {"shoulder_abd.left": 178, "shoulder_abd.right": 146},
            "no_lockout": {"shoulder_abd.both": 146},
        },
    },
    "lateral_raise": {
        "views": ["front"],
        "fixed": {"elbow_flex.both": 10, "elbow_plane": "frontal"},
        "move": {"shoulder_abd.both": (12, 93)},
        "errors": {
            "asymmetric": {"shoulder_abd.left": 96, "shoulder_abd.right": 68},
            "too_low": {"shoulder_abd.both": 68},
        },
    },
    "jumping_jack": {
        "views": ["front"],
        "fixed": {"elbow_plane": "frontal"},
        "move": {"shoulder_abd.both": (15, 165), "hip_abd.both": (2, 16)},
        "errors": {"arms_low": {"shoulder_abd.both": 129}},
    },
    "glute_bridge": {
        "views": ["side"],
        "fixed": {"body_pitch": 90, "shoulder_abd.both": 0},
        "move": {"hip_flex.both": (62, 4), "knee_flex.both": (100, 100)},
        "errors": {"hips_low": {"hip_flex.both": 16}},
    },
    "plank": {
        "views": ["side"],
        "fixed": {
            "body_pitch": -90,
            "shoulder_flex.both": 90,
            "shoulder_abd.both": 0,
            "elbow_flex.both": 90,
        },
        "move": {},
        "errors": {"hips_sag": {"hip_drop": 0.45}, "hips_pike": {"hip_drop": -0.6}},
    },
    "shoulder_flexion": {
        "views": ["side"],
        "move": {"shoulder_flex.both": (10, 150), "shoulder_abd.both": (0, 0)},
        "errors": {},
    },
}


def set_joint(joints: Joints, path: str, value: Any) -> None:
    """Set one joint path ("attr", "attr.left", "attr.both") of `joints` in place."""
    attr, _, side = path.partition(".")
    if not side:
        setattr(joints, attr, value)
        return
    target = getattr(joints, attr)
    for s in ("left", "right") if side == "both" else (side,):
        target[s] = value


def get_joint(joints: Joints, path: str) -> Any:
    """The value at a joint path; ".both" reads the left side."""
    attr, _, side = path.partition(".")
    if not side:
        return getattr(joints, attr)
    return getattr(joints, attr)["left" if side == "both" else side]


def pose_at(
    exercise: str,
    progress: float,
    errors: Collection[str] = (),
    view: str = "side",
    peak_override: dict[str, float] | None = None,
) -> Joints:
    """The joints `progress` of the way (0 rest, 1 peak) through a rep, with form errors.

    An error may have a view-specific variant ("elbows_flare@front"); raises KeyError for an
    unknown exercise or error.
    """
    motion = MOTIONS[exercise]
    joints = Joints()
    for path, value in motion.get("fixed", {}).items():
        set_joint(joints, path, value)
    peaks = {path: peak for path, (rest, peak) in motion["move"].items()}
    constants: dict[str, float] = {}
    for error in errors:
        key = f"{error}@{view}" if f"{error}@{view}" in motion["errors"] else error
        for path, value in motion["errors"][key].items():
            if isinstance(value, tuple):
                constants[path] = value[1]
            else:
                peaks[path] = value
    if peak_override:
        peaks.update(peak_override)
    for path, (rest, _) in motion["move"].items():
        set_joint(joints, path, rest + (peaks[path] - rest) * progress)
    for path, peak in peaks.items():
        if path not in motion["move"]:  # an error that adds a movement (e.g. knees in)
            rest = get_joint(joints, path)
            set_joint(joints, path, rest + (peak - rest) * progress)
    for path, value in constants.items():
        set_joint(joints, path, value)
    return joints

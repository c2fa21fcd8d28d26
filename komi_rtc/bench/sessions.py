"""Labelled exercise sessions from the kinematic skeleton: the truth the analysis is judged by.

Each motion is data: joint values at rest and at the peak, and what each injected form
error changes. Sessions add what real use brings: a person walking in and out, body sizes,
camera distances, tempo changes, pauses, jitter, dropped frames, occlusions, half reps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..pose.estimator import Pose
from ..protocol import KEYPOINT_NAMES
from ..synthetic.skeleton import Camera, Joints, forward_kinematics, project

# exercise -> (views, fixed joints, {joint path: (rest, peak)}, {error: {path: peak or value}})
# A path is "attr" or "attr.side"; ".both" sets both sides.
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


def _set(joints: Joints, path: str, value: Any) -> None:
    attr, _, side = path.partition(".")
    if not side:
        setattr(joints, attr, value)
        return
    target = getattr(joints, attr)
    for s in ("left", "right") if side == "both" else (side,):
        target[s] = value


def _get(joints: Joints, path: str) -> Any:
    attr, _, side = path.partition(".")
    if not side:
        return getattr(joints, attr)
    return getattr(joints, attr)["left" if side == "both" else side]


@dataclass
class TrueRep:
    start: float
    end: float
    errors: set[str]
    full: bool = True
    peak_value: float | None = None  # for range-of-motion exercises: degrees reached


@dataclass
class Session:
    exercise: str
    view: str
    messages: list[dict[str, Any]]
    reps: list[TrueRep] = field(default_factory=list)
    hold_good_s: float = 0.0
    hold_errors: set[str] = field(default_factory=set)

    @property
    def true_count(self) -> int:
        return sum(1 for r in self.reps if r.full)


def _smooth(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)


def _pose_at(
    motion: dict[str, Any],
    progress: float,
    errors: set[str],
    view: str,
    peak_override: dict[str, float] | None = None,
) -> Joints:
    joints = Joints()
    for path, value in motion.get("fixed", {}).items():
        _set(joints, path, value)
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
        _set(joints, path, rest + (peaks[path] - rest) * progress)
    for path, peak in peaks.items():
        if path not in motion["move"]:  # an error that adds a movement (e.g. knees in)
            rest = _get(joints, path)
            _set(joints, path, rest + (peak - rest) * progress)
    for path, value in constants.items():
        _set(joints, path, value)
    return joints


def _message(index: int, t: float, keypoints: np.ndarray | None, camera: Camera) -> dict[str, Any]:
    pose = [Pose(keypoints).to_json()] if keypoints is not None else []
    return {
        "type": "frame_processed",
        "camera_id": "bench",
        "frame_pts": index * 3000,
        "timestamp": t,
        "width": camera.width,
        "height": camera.height,
        "pose_data": {"pose": pose, "timestamp": t},
        "timing": {"receive": t},
    }


def make_session(
    exercise: str, view: str, rng: np.random.Generator, seed_errors: bool = True
) -> Session:
    motion = MOTIONS[exercise]
    lying = "body_pitch" in motion.get("fixed", {})
    body = rng.uniform(0.85, 1.15)  # body height relative to average
    distance = rng.uniform(0.8, 1.3)  # camera distance relative to a usual set-up
    fits = (380, 560) if lying else (260, 430)  # pixels per body height that fit 640x480
    camera = Camera(view, scale=float(np.clip(380 * body / distance, *fits)))
    fps = float(rng.choice([10, 15, 30]))
    noise = rng.uniform(0.5, 3.0)
    drop_rate = rng.uniform(0.0, 0.15)
    possible = [
        e.split("@")[0]
        for e in motion["errors"]
        if view in motion.get("error_views", {}).get(e.split("@")[0], [view])
    ]
    possible = sorted(set(possible))
    error = str(rng.choice(possible)) if (possible and seed_errors and rng.random() < 0.7) else None

    # timeline: (start, end, kind, data)
    timeline: list[tuple[float, float, str, Any]] = []
    t = 0.0
    timeline.append((t, t + 1.0, "away", None))
    t += 1.0
    reps: list[TrueRep] = []
    session = Session(exercise, view, [])
    if motion["move"]:
        timeline.append((t, t + 1.2, "rest", None))
        t += 1.2
        count = int(rng.integers(5, 11))
        halves = set(rng.choice(count + 2, size=int(rng.integers(0, 3)), replace=False).tolist())
        tempo = rng.uniform(0.5, 1.6)  # seconds per half of a rep
        for i in range(count + len(halves)):
            half = i in halves
            down = tempo * rng.uniform(0.75, 1.3)
            up = tempo * rng.uniform(0.75, 1.3)
            hold = rng.uniform(0.0, 0.8) if rng.random() < 0.4 else 0.0
            errors = {error} if (error and not half and rng.random() < 0.5) else set()
            override = None
            if exercise == "shoulder_flexion" and not half:
                reached = float(rng.uniform(110, 165))
                override = {"shoulder_flex.both": reached}
            reps.append(
                TrueRep(
                    t,
                    t + down + hold + up,
                    errors,
                    full=not half,
                    peak_value=override["shoulder_flex.both"] if override else None,
                )
            )
            timeline.append(
                (
                    t,
                    t + down + hold + up,
                    "rep",
                    (down, hold, up, 0.45 if half else 1.0, errors, override),
                )
            )
            t += down + hold + up
            rest = rng.uniform(0.3, 1.5) if rng.random() < 0.3 else rng.uniform(0.1, 0.4)
            timeline.append((t, t + rest, "rest", None))
            t += rest
        timeline.append((t, t + 1.0, "rest", None))
        t += 1.0
    else:  # a hold
        length = rng.uniform(15, 25)
        bad_start, bad_len = rng.uniform(3, length - 8), rng.uniform(3, 5)
        timeline.append((t, t + length, "hold", (error, t + bad_start, t + bad_start + bad_len)))
        session.hold_good_s = length - (bad_len if error else 0.0)
        if error:
            session.hold_errors = {error}
        t += length
    timeline.append((t, t + 1.0, "away", None))
    end = t + 1.0

    occlusion = rng.uniform(2.0, max(2.5, end - 2)) if rng.random() < 0.5 else None
    frame = 0
    segment = 0
    time = 0.0
    while time < end:
        while timeline[segment][1] <= time and segment < len(timeline) - 1:
            segment += 1
        start, stop, kind, data = timeline[segment]
        keypoints = None
        if kind != "away":
            if kind == "rep":
                down, hold, up, depth, errors, override = data
                local = time - start
                if local < down:
                    progress = _smooth(local / down)
                elif local < down + hold:
                    progress = 1.0
                else:
                    progress = 1.0 - _smooth((local - down - hold) / up)
                joints = _pose_at(motion, progress * depth, errors, view, override)
            elif kind == "hold":
                bad_error, bad_from, bad_to = data
                errors = {bad_error} if bad_error and bad_from <= time < bad_to else set()
                joints = _pose_at(motion, 1.0, errors, view)
            else:
                joints = _pose_at(motion, 0.0, set(), view)
            keypoints = project(forward_kinematics(joints), camera, rng, noise)
            if view == "side":
                # as BlazePose sees a person in profile on video: the far side (the
                # person's right) placed well but with visibility about 0.2-0.45
                keypoints[_FAR_SIDE, 3] = rng.uniform(0.2, 0.45, len(_FAR_SIDE))
            if occlusion is not None and occlusion <= time < occlusion + 0.3:
                keypoints[[23, 24, 25, 26, 13, 14], 3] = 0.2  # hips, knees, elbows hidden
        if rng.random() >= drop_rate:
            session.messages.append(_message(frame, time, keypoints, camera))
        frame += 1
        time = frame / fps
    session.reps = reps
    return session


_FAR_SIDE = [i for i, name in enumerate(KEYPOINT_NAMES) if name.startswith("right_")]


def sessions_for(exercise: str, per_view: int, seed: int) -> list[Session]:
    rng = np.random.default_rng(seed)
    return [
        make_session(exercise, view, rng)
        for view in MOTIONS[exercise]["views"]
        for _ in range(per_view)
    ]

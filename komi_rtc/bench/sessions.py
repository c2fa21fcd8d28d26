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
from ..synthetic.motions import MOTIONS, pose_at
from ..synthetic.skeleton import Camera, Joints, forward_kinematics, project


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
    camera: Camera | None = None
    # every frame's time and body (None: nobody in view), dropped ones included, so the
    # same session can be rendered as video (bench/video.py)
    frames: list[tuple[float, Joints | None]] = field(default_factory=list)

    @property
    def true_count(self) -> int:
        return sum(1 for r in self.reps if r.full)


def _smooth(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)


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
    session = Session(exercise, view, [], camera=camera)
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
        joints = None
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
                joints = pose_at(exercise, progress * depth, errors, view, override)
            elif kind == "hold":
                bad_error, bad_from, bad_to = data
                errors = {bad_error} if bad_error and bad_from <= time < bad_to else set()
                joints = pose_at(exercise, 1.0, errors, view)
            else:
                joints = pose_at(exercise, 0.0, set(), view)
            keypoints = project(forward_kinematics(joints), camera, rng, noise)
            if view == "side":
                # as BlazePose sees a person in profile on video: the far side (the
                # person's right) placed well but with visibility about 0.2-0.45
                keypoints[_FAR_SIDE, 3] = rng.uniform(0.2, 0.45, len(_FAR_SIDE))
            if occlusion is not None and occlusion <= time < occlusion + 0.3:
                keypoints[[23, 24, 25, 26, 13, 14], 3] = 0.2  # hips, knees, elbows hidden
        session.frames.append((time, joints))
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

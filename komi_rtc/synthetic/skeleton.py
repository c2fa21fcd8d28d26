"""A kinematic skeleton in the BlazePose layout, to generate labelled exercise sessions.

Joint angles (degrees) drive forward kinematics in 3-D (x: the person's left, y: down,
z: forward); a front or side camera projects it to pixels. Each exercise is a motion
between a rest pose and a peak pose, so a session's true repetitions, half repetitions and
injected form errors are known exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..protocol import KEYPOINT_INDEX as K

DOWN = np.array([0.0, 1.0, 0.0])
UP = -DOWN

# segment lengths as shares of body height
TORSO, SHOULDER_HALF, HIP_HALF = 0.30, 0.11, 0.08
UPPER_ARM, FOREARM, HAND = 0.17, 0.15, 0.05
THIGH, SHIN = 0.245, 0.245


def rot_x(deg: float) -> np.ndarray:
    """Sagittal rotation: positive turns 'down' toward +z (forward)."""
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_z(deg: float) -> np.ndarray:
    """Frontal rotation: positive turns 'down' toward +x (the person's left)."""
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T


@dataclass(frozen=True)
class Build:
    """A body's proportions as multiples of the average one (segment lengths above): longer
    legs, a longer trunk, broader shoulders. Widths of flesh and clothes are the renderer's."""

    legs: float = 1.0
    arms: float = 1.0
    torso: float = 1.0
    shoulders: float = 1.0
    hips: float = 1.0


AVERAGE_BUILD = Build()


@dataclass
class Joints:
    """Joint angles in degrees; per side where it matters."""

    torso_pitch: float = 0.0  # positive leans the trunk forward (a squat), from the hips
    hip_flex: dict[str, float] = field(default_factory=lambda: {"left": 0.0, "right": 0.0})
    hip_abd: dict[str, float] = field(default_factory=lambda: {"left": 2.0, "right": 2.0})
    knee_flex: dict[str, float] = field(default_factory=lambda: {"left": 0.0, "right": 0.0})
    shoulder_flex: dict[str, float] = field(default_factory=lambda: {"left": 0.0, "right": 0.0})
    shoulder_abd: dict[str, float] = field(default_factory=lambda: {"left": 8.0, "right": 8.0})
    elbow_flex: dict[str, float] = field(default_factory=lambda: {"left": 5.0, "right": 5.0})
    elbow_plane: str = "sagittal"
    knee_in: float = 0.0  # knees moving toward the midline, share of hip width (valgus)
    hip_drop: float = 0.0  # hips below the shoulder-ankle line, share of torso (sag)
    body_pitch: float = 0.0  # whole body: -90 face-down horizontal, +90 lying on the back


def forward_kinematics(j: Joints, build: Build = AVERAGE_BUILD) -> np.ndarray:
    """(33, 3) keypoints in body-height units (of the average build), hip centre at the
    origin."""
    p = np.zeros((33, 3))
    hip_c = np.zeros(3)
    torso_dir = rot_x(-j.torso_pitch) @ UP
    shoulder_c = hip_c + TORSO * build.torso * torso_dir
    hip_half, shoulder_half = HIP_HALF * build.hips, SHOULDER_HALF * build.shoulders
    for side, sign in (("left", 1.0), ("right", -1.0)):
        lateral = np.array([sign, 0.0, 0.0])
        hip = hip_c + hip_half * lateral
        thigh = rot_x(j.hip_flex[side]) @ rot_z(sign * j.hip_abd[side]) @ DOWN
        knee = hip + THIGH * build.legs * thigh
        shin = rot_x(j.hip_flex[side] - j.knee_flex[side]) @ rot_z(sign * j.hip_abd[side]) @ DOWN
        ankle = knee + SHIN * build.legs * shin
        knee = knee - lateral * j.knee_in * hip_half * 2
        foot_fwd = rot_x(j.hip_flex[side] - j.knee_flex[side]) @ np.array([0.0, 0.0, 1.0])
        heel = ankle + 0.03 * DOWN - 0.04 * foot_fwd
        toe = ankle + 0.04 * DOWN + 0.10 * foot_fwd
        shoulder = shoulder_c + shoulder_half * lateral
        upper = rot_x(j.shoulder_flex[side]) @ rot_z(sign * j.shoulder_abd[side]) @ DOWN
        elbow = shoulder + UPPER_ARM * build.arms * upper
        if j.elbow_plane == "sagittal":
            fore = (
                rot_x(j.shoulder_flex[side] + j.elbow_flex[side])
                @ rot_z(sign * j.shoulder_abd[side])
                @ DOWN
            )
        else:
            fore = (
                rot_x(j.shoulder_flex[side])
                @ rot_z(sign * (j.shoulder_abd[side] + j.elbow_flex[side]))
                @ DOWN
            )
        wrist = elbow + FOREARM * build.arms * fore
        hand = wrist + HAND * build.arms * fore
        for name, value in (
            ("hip", hip),
            ("knee", knee),
            ("ankle", ankle),
            ("heel", heel),
            ("foot_index", toe),
            ("shoulder", shoulder),
            ("elbow", elbow),
            ("wrist", wrist),
            ("pinky", hand + 0.015 * lateral),
            ("index", hand - 0.01 * lateral),
            ("thumb", wrist + 0.6 * HAND * fore - 0.02 * lateral),
        ):
            p[K[f"{side}_{name}"]] = value
    head = shoulder_c + 0.12 * torso_dir
    forward = rot_x(-j.torso_pitch) @ np.array([0.0, 0.0, 1.0])
    nose = head + 0.05 * forward
    p[K["nose"]] = nose
    for side, sign in (("left", 1.0), ("right", -1.0)):
        lateral = np.array([sign, 0.0, 0.0])
        p[K[f"{side}_eye_inner"]] = nose + 0.012 * lateral - 0.02 * torso_dir * -1
        p[K[f"{side}_eye"]] = nose + 0.022 * lateral + 0.02 * torso_dir
        p[K[f"{side}_eye_outer"]] = nose + 0.032 * lateral + 0.02 * torso_dir
        p[K[f"{side}_ear"]] = head + 0.06 * lateral + 0.01 * torso_dir
        p[K[f"mouth_{side}"]] = nose + 0.02 * lateral - 0.025 * torso_dir
    if j.body_pitch:
        p = p @ rot_x(j.body_pitch).T
    # sagging hips drop toward the floor, whatever the body's orientation
    for name in ("left_hip", "right_hip"):
        p[K[name]] += DOWN * j.hip_drop * TORSO * build.torso
    return p


@dataclass(frozen=True)
class Camera:
    view: str  # "front" or "side" (from the person's left)
    scale: float  # pixels per body height
    width: int = 640
    height: int = 480


def project(
    points: np.ndarray, camera: Camera, rng: np.random.Generator, noise_px: float
) -> np.ndarray:
    """(33, 4) x, y, z, confidence in pixels, centred in the frame."""
    if camera.view == "front":
        xy = points[:, [0, 1]]
        depth = points[:, 2]
    else:
        xy = points[:, [2, 1]]
        depth = points[:, 0]
    xy = xy * camera.scale
    low, high = xy.min(axis=0), xy.max(axis=0)
    centre = np.array([camera.width / 2, camera.height / 2]) - (low + high) / 2
    xy = xy + centre + rng.normal(0.0, noise_px, xy.shape)
    out = np.zeros((33, 4), np.float32)
    out[:, :2] = xy
    out[:, 2] = -depth
    confidence = np.full(33, 0.97)
    if camera.view == "side":
        # the far side (the person's right) is partly hidden
        for i, name in enumerate(K):
            if name.startswith("right_"):
                confidence[i] = 0.75
    out[:, 3] = np.clip(confidence + rng.normal(0.0, 0.01, 33), 0.0, 1.0)
    return out


def interpolate_joints(a: Joints, b: Joints, share: float) -> Joints:
    """The joints `share` of the way from `a` to `b` (0 is a), angle by angle: the instants
    between two frames, for motion blur. Non-numeric fields come from the nearer one."""
    nearer = a if share < 0.5 else b

    def mix(x: float, y: float) -> float:
        return x + (y - x) * share

    return Joints(
        torso_pitch=mix(a.torso_pitch, b.torso_pitch),
        hip_flex={s: mix(a.hip_flex[s], b.hip_flex[s]) for s in ("left", "right")},
        hip_abd={s: mix(a.hip_abd[s], b.hip_abd[s]) for s in ("left", "right")},
        knee_flex={s: mix(a.knee_flex[s], b.knee_flex[s]) for s in ("left", "right")},
        shoulder_flex={s: mix(a.shoulder_flex[s], b.shoulder_flex[s]) for s in ("left", "right")},
        shoulder_abd={s: mix(a.shoulder_abd[s], b.shoulder_abd[s]) for s in ("left", "right")},
        elbow_flex={s: mix(a.elbow_flex[s], b.elbow_flex[s]) for s in ("left", "right")},
        elbow_plane=nearer.elbow_plane,
        knee_in=mix(a.knee_in, b.knee_in),
        hip_drop=mix(a.hip_drop, b.hip_drop),
        body_pitch=mix(a.body_pitch, b.body_pitch),
    )

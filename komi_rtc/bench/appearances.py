"""How the video benchmark films each session: the person's look and the camera, per split.

`dev` and `test` use the shaded figure (`synthetic/renderer.py`) with two palettes: the
thresholds were tuned on `dev`. `flat` is the second appearance (`synthetic/flat_figure.py`),
held out: flat colours, sleeves the shirt's colour, dark clothes in dark rooms, loose
clothes, heavier, shorter and taller bodies, a perspective phone camera from knee height to
above the head, 360p and 720p, motion blur and noise. Nothing was tuned on it.

A `Filming` turns a session's bodies into frames and the truth keypoints on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from ..synthetic import (
    MOTIONS,
    Joints,
    Look,
    ViewPoint,
    fit_look,
    forward_kinematics,
    image_keypoints,
    pose_at,
    render_frame,
    render_room,
)
from ..synthetic.flat_figure import FlatLook, FlatScene, PhoneCamera, fit_distance, to_world
from ..synthetic.skeleton import Build, interpolate_joints

RGB = tuple[int, int, int]
SHADED_SIZE = (640, 480)

# Two palettes of the shaded figure, so the held-out split also differs in appearance.
_PALETTES: dict[str, dict[str, list[RGB]]] = {
    "dev": {
        "shirt": [(36, 98, 178), (190, 40, 40), (40, 140, 70), (230, 200, 60), (240, 240, 240)],
        "pants": [(46, 50, 62), (30, 30, 30), (70, 90, 140), (120, 110, 100)],
        "skin": [(226, 170, 138), (190, 130, 95), (140, 95, 65), (245, 205, 180)],
        "hair": [(150, 104, 58), (40, 30, 25), (200, 170, 110)],
        "wall": [(206, 200, 190), (180, 195, 210), (225, 215, 200)],
        "floor": [(140, 112, 84), (110, 110, 110), (170, 140, 100)],
    },
    "test": {
        "shirt": [(120, 60, 160), (250, 130, 40), (30, 160, 170), (60, 60, 60), (200, 90, 130)],
        "pants": [(20, 40, 90), (90, 60, 40), (60, 70, 60), (160, 160, 170)],
        "skin": [(210, 150, 115), (160, 110, 80), (235, 190, 160), (120, 80, 55)],
        "hair": [(20, 15, 10), (110, 70, 40), (230, 220, 200)],
        "wall": [(195, 210, 190), (235, 228, 215), (160, 170, 185)],
        "floor": [(95, 75, 60), (150, 150, 140), (185, 160, 120)],
    },
}

# The flat figure's palette: no part takes a colour it had in the two above (across parts,
# a dev pants colour is a flat wall's and a dev black is a shoe's).
_FLAT = {
    "shirt": [(225, 225, 220), (200, 60, 40), (60, 110, 60), (150, 140, 120), (95, 95, 90)],
    "dark_shirt": [(28, 28, 32), (45, 52, 70), (70, 30, 35), (38, 48, 40)],
    "pants": [(40, 45, 60), (90, 85, 80), (120, 100, 70), (150, 60, 60), (70, 80, 95)],
    "dark_pants": [(25, 25, 28), (35, 35, 35), (30, 34, 45)],
    "skin": [(235, 200, 175), (205, 150, 115), (165, 115, 85), (110, 75, 55), (85, 60, 45)],
    "hair": [(15, 12, 10), (70, 45, 25), (180, 150, 100), (120, 120, 120)],
    "shoes": [(30, 30, 30), (235, 235, 235), (150, 40, 40), (90, 90, 100)],
    "wall": [(120, 110, 100), (215, 215, 210), (170, 190, 175), (200, 180, 160)],
    "dark_wall": [(60, 58, 62), (40, 42, 48), (70, 60, 50)],
    "floor": [(90, 70, 50), (150, 145, 140), (60, 60, 66), (120, 90, 70)],
    "dark_floor": [(45, 40, 38), (35, 35, 40)],
}


class Filming(Protocol):
    """A session's camera: frames of the person and the truth keypoints on them."""

    width: int
    height: int

    def frame(
        self, joints: Joints | None, before: Joints | None, after: Joints | None, dt: float
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """RGB frame and (33, 2) truth pixels (None: nobody in the picture). `before` and
        `after` are the neighbouring frames' bodies, `dt` seconds away (for motion blur)."""
        ...

    def describe(self) -> dict[str, Any]:
        """What the benchmark's JSON records about the look and camera."""
        ...


def _pick(rng: np.random.Generator, options: list[RGB]) -> RGB:
    return options[int(rng.integers(len(options)))]


def _lying(exercise: str) -> bool:
    return "body_pitch" in MOTIONS[exercise].get("fixed", {})


# ---------------------------------------------------------------- the shaded figure


class ShadedFilming:
    """The first appearance: the shaded figure, orthographic, 640x480, tilted a little."""

    width, height = SHADED_SIZE

    def __init__(self, look: Look, viewpoint: ViewPoint, tilt_deg: float) -> None:
        self.look, self.viewpoint, self.tilt_deg = look, viewpoint, tilt_deg
        self._matrix = cv2.getRotationMatrix2D((self.width / 2, self.height / 2), tilt_deg, 1.0)

    def frame(
        self, joints: Joints | None, before: Joints | None, after: Joints | None, dt: float
    ) -> tuple[np.ndarray, np.ndarray | None]:
        if joints is None:
            return self._tilt(render_room(self.look, self.width, self.height)), None
        points = forward_kinematics(joints)
        rgb = render_frame(points, self.viewpoint, self.look, self.width, self.height)
        xy = image_keypoints(points, self.viewpoint, self.look, self.width, self.height)[:, :2]
        if self.tilt_deg:
            xy = xy @ self._matrix[:, :2].T + self._matrix[:, 2]
        return self._tilt(rgb), xy

    def _tilt(self, rgb: np.ndarray) -> np.ndarray:
        if not self.tilt_deg:
            return rgb
        size = (self.width, self.height)
        return cv2.warpAffine(rgb, self._matrix, size, borderMode=cv2.BORDER_REPLICATE)

    def describe(self) -> dict[str, Any]:
        return {
            "appearance": "shaded",
            "facing": self.viewpoint.yaw,
            "tilt_deg": round(self.tilt_deg, 1),
            "body_height": round(self.look.body_height, 2),
            "size": [self.width, self.height],
        }


def shaded_filming(
    split: str, exercise: str, view: str, bodies: list[Joints], rng: np.random.Generator
) -> ShadedFilming:
    """A standing person spans from a third of the frame's height to nearly all of it. A
    person on the floor is framed so their body spans at least half the frame's width:
    smaller, BlazePose's detector does not find someone lying down (measured: a plank at a
    third of the frame height was found in 0-63% of frames)."""
    palette = _PALETTES[split]
    lying = _lying(exercise)
    look = Look(
        shirt=_pick(rng, palette["shirt"]),
        pants=_pick(rng, palette["pants"]),
        skin=_pick(rng, palette["skin"]),
        hair=_pick(rng, palette["hair"]),
        wall=_pick(rng, palette["wall"]),
        floor=_pick(rng, palette["floor"]),
        short_sleeves=bool(rng.random() < 0.5),
        body_height=float(rng.uniform(0.7, 0.95) if lying else rng.uniform(0.36, 0.9)),
        centre_x=float(rng.uniform(0.38, 0.62)),
    )
    if view == "front":
        viewpoint = ViewPoint.named("front")
    else:
        viewpoint = ViewPoint.named("side_left" if rng.random() < 0.5 else "side_right")
    tilt = float(rng.uniform(-4.0, 4.0))
    points = [forward_kinematics(j) for j in bodies[:: max(1, len(bodies) // 40)]]
    width, height = SHADED_SIZE
    return ShadedFilming(fit_look(look, points, viewpoint, width, height), viewpoint, tilt)


# ---------------------------------------------------------------- the flat figure


@dataclass(frozen=True)
class _Exposure:
    shutter_s: float
    instants: int  # poses averaged into one frame


class FlatFilming:
    """The second appearance: the flat figure through a phone camera in perspective."""

    def __init__(self, scene: FlatScene, exposure: _Exposure, facing: float) -> None:
        self.scene, self.exposure, self.facing = scene, exposure, facing
        self.width, self.height = scene.size

    def frame(
        self, joints: Joints | None, before: Joints | None, after: Joints | None, dt: float
    ) -> tuple[np.ndarray, np.ndarray | None]:
        if joints is None:
            return self.scene.render([]), None
        look, camera = self.scene.look, self.scene.camera
        world = to_world(forward_kinematics(joints, look.build), look)
        instants = [world]
        if self.exposure.instants > 1 and dt > 0:
            # the exposure is centred on the frame's instant; the neighbours give the motion
            half = min(self.exposure.shutter_s / 2, dt) / dt
            instants = []
            for offset in np.linspace(-half, half, self.exposure.instants):
                other = before if offset < 0 else after
                if other is None or offset == 0:
                    body = joints
                else:
                    body = interpolate_joints(joints, other, abs(float(offset)))
                instants.append(to_world(forward_kinematics(body, look.build), look))
        return self.scene.render(instants), camera.project(world)[:, :2]

    def describe(self) -> dict[str, Any]:
        look, camera = self.scene.look, self.scene.camera
        return {
            "appearance": "flat",
            "facing": round(self.facing, 1),
            "size": [self.width, self.height],
            "camera_height_m": round(camera.height_m, 2),
            "camera_distance_m": round(camera.distance_m, 2),
            "fov_deg": round(camera.fov_deg, 1),
            "roll_deg": round(camera.roll_deg, 1),
            "stature_m": round(look.stature_m, 2),
            "girth": round(look.girth, 2),
            "loose_m": round(look.loose_m, 3),
            "light": round(look.light, 2),
            "sleeve_is_shirt": look.sleeve == look.shirt,
            "short_sleeves": look.short_sleeves,
            "far_arm_drawn": look.far_arm,
            "shutter_s": round(self.exposure.shutter_s, 4),
        }


def flat_filming(
    exercise: str, view: str, bodies: list[Joints], rng: np.random.Generator
) -> FlatFilming:
    """A random flat look and phone camera for one session (the ranges are the second
    appearance's definition; see the module docstring)."""
    lying = _lying(exercise)
    dark = rng.random() < 0.3  # dark clothes in a dark room
    shirt = _pick(rng, _FLAT["dark_shirt"] if dark or rng.random() < 0.2 else _FLAT["shirt"])
    if rng.random() < 0.7:
        sleeve = shirt
    else:
        shade = float(rng.uniform(0.78, 0.9))
        sleeve = (int(shirt[0] * shade), int(shirt[1] * shade), int(shirt[2] * shade))
    stature = float(rng.uniform(1.45, 2.0))
    look = FlatLook(
        shirt=shirt,
        sleeve=sleeve,
        pants=_pick(rng, _FLAT["dark_pants"] if dark else _FLAT["pants"]),
        skin=_pick(rng, _FLAT["skin"]),
        hair=_pick(rng, _FLAT["hair"]),
        shoes=_pick(rng, _FLAT["shoes"]),
        wall=_pick(rng, _FLAT["dark_wall"] if dark else _FLAT["wall"]),
        floor=_pick(rng, _FLAT["dark_floor"] if dark else _FLAT["floor"]),
        short_sleeves=bool(rng.random() < 0.35),
        loose_m=float(rng.uniform(0.0, 0.05) if rng.random() < 0.5 else rng.uniform(0, 0.01)),
        girth=float(rng.uniform(0.9, 1.45)),
        stature_m=stature,
        build=Build(
            legs=float(rng.uniform(0.9, 1.1)),
            arms=float(rng.uniform(0.92, 1.08)),
            torso=float(rng.uniform(0.92, 1.1)),
            shoulders=float(rng.uniform(0.9, 1.15)),
            hips=float(rng.uniform(0.9, 1.2)),
        ),
        light=float(rng.uniform(0.35, 0.55) if dark else rng.uniform(0.6, 1.0)),
        noise=float(rng.uniform(3.0, 7.0) if dark else rng.uniform(1.0, 3.0)),
        far_arm=bool(view != "side" or rng.random() < 0.5),
    )
    yaw = 0.0 if view == "front" else (90.0 if rng.random() < 0.5 else -90.0)
    yaw += float(rng.uniform(-12.0, 12.0))
    sideways = lying or rng.random() < 0.6  # a phone held sideways: landscape
    size = (640, 360) if rng.random() < 0.5 else (1280, 720)
    if not sideways:
        size = (size[1], size[0])
    worlds = [
        to_world(forward_kinematics(j, look.build), look)
        for j in bodies[:: max(1, len(bodies) // 30)]
    ]
    rest = to_world(forward_kinematics(pose_at(exercise, 0.0, (), view), look.build), look)
    top = float(rest[:, 1].max()) + 0.12 * stature / 1.72
    height = float(rng.uniform(0.4, 1.9) if lying else rng.uniform(0.45, stature + 0.35))
    camera = PhoneCamera(
        yaw_deg=yaw,
        height_m=height,
        distance_m=1.0,
        aim_height_m=top / 2 + float(rng.uniform(-0.08, 0.08)) * stature,
        fov_deg=float(rng.uniform(55.0, 75.0)),
        width=size[0],
        height=size[1],
        roll_deg=float(rng.uniform(-5.0, 5.0)),
    )
    fitted = fit_distance(camera, worlds)
    farther = float(rng.uniform(1.0, 1.25) if lying else rng.uniform(1.0, 1.7))
    camera = PhoneCamera(
        yaw, height, fitted.distance_m * farther, camera.aim_height_m, camera.fov_deg,
        size[0], size[1], camera.roll_deg,
    )  # fmt: skip
    shutter = float(rng.uniform(1 / 60, 1 / 15) if dark else rng.uniform(1 / 250, 1 / 30))
    exposure = _Exposure(shutter, min(6, max(1, round(shutter * 150))))
    return FlatFilming(FlatScene(look, camera, rng), exposure, yaw)


def filming_for(
    split: str, exercise: str, view: str, bodies: list[Joints], rng: np.random.Generator
) -> Filming:
    if split == "flat":
        return flat_filming(exercise, view, bodies, rng)
    return shaded_filming(split, exercise, view, bodies, rng)

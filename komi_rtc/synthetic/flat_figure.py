"""A second appearance of the synthetic person, drawn independently of `renderer.py`.

It differs from the shaded figure wherever that one is lucky for a pose model: flat colours
with no shading and no outlines (a limb in front of the trunk shows only where its colour
differs), sleeves the colour of the shirt, no photographed face, dark clothes in dark rooms,
loose clothes, heavier, shorter and taller bodies with other proportions, and a phone
camera in perspective: from knee height to above the head, held upright or sideways, 360p
or 720p, with motion blur and sensor noise. In profile the far arm may be left out (hidden
by loose clothes). The truth keypoints are the perspective projection of the very skeleton
points the drawing is built on.

World coordinates here are metres: x the person's left, y up, z the person's forward; the
floor is y = 0 and the hip centre stands above the origin.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..protocol import KEYPOINT_INDEX as K
from .skeleton import AVERAGE_BUILD, Build

RGB = tuple[int, int, int]
_SUBPIXEL_BITS = 3
_SOLE_M = 0.06  # below the ankle keypoints' lowest point: the sole touches the floor
_WALL_BEHIND_M = 2.6  # the back wall, this far behind the person along the camera's view
_EXPOSURE_TARGET = 100.0  # mean grey level automatic exposure aims at
_MAX_GAIN = 2.5


@dataclass(frozen=True)
class FlatLook:
    """Colours (RGB, before the room's light), clothes and body of a flat-drawn person."""

    shirt: RGB = (40, 40, 46)
    sleeve: RGB = (40, 40, 46)  # the shirt's colour, or a shade of it
    pants: RGB = (30, 30, 34)
    skin: RGB = (200, 150, 120)
    hair: RGB = (30, 24, 20)
    shoes: RGB = (60, 60, 60)
    wall: RGB = (70, 70, 76)
    floor: RGB = (55, 50, 45)
    short_sleeves: bool = False
    loose_m: float = 0.0  # how far clothes stand off the body (0 fitted, 0.06 baggy), metres
    girth: float = 1.0  # widths of trunk and limbs: 1 average, 1.7 heavy
    stature_m: float = 1.72
    build: Build = AVERAGE_BUILD
    light: float = 1.0  # the room's light: every colour is scaled by it (0.35 a dim room)
    noise: float = 2.0  # sensor noise, grey levels (standard deviation)
    far_arm: bool = True  # drawn at all when the person is seen in profile


@dataclass(frozen=True)
class PhoneCamera:
    """A pinhole camera looking at a point of the person (metres, degrees, pixels).

    `yaw_deg` 0 stands in front of the person, +90 at their left side, -90 at their right;
    `roll_deg` turns the picture about the view axis (a phone not held level)."""

    yaw_deg: float = 0.0
    height_m: float = 1.2  # lens above the floor
    distance_m: float = 3.0  # horizontal distance from the hip centre
    aim_height_m: float = 0.9  # the point it looks at, above the hip centre's floor spot
    fov_deg: float = 60.0  # horizontal field of view
    width: int = 640
    height: int = 360
    roll_deg: float = 0.0
    _axes: np.ndarray = field(init=False, repr=False, compare=False)
    _centre: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        yaw = math.radians(self.yaw_deg)
        centre = np.array(
            [self.distance_m * math.sin(yaw), self.height_m, self.distance_m * math.cos(yaw)]
        )
        forward = np.array([0.0, self.aim_height_m, 0.0]) - centre
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, [0.0, 1.0, 0.0])
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        roll = math.radians(self.roll_deg)
        right, down = (
            right * math.cos(roll) + down * math.sin(roll),
            down * math.cos(roll) - right * math.sin(roll),
        )
        object.__setattr__(self, "_axes", np.array([right, down, forward]))
        object.__setattr__(self, "_centre", centre)

    @property
    def focal_px(self) -> float:
        return self.width / 2 / math.tan(math.radians(self.fov_deg) / 2)

    def paint_depth(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world metres -> (N,) distance along the view's floor direction: the order
        to paint in (the optical axis would put a looked-up-at head behind the chest)."""
        forward = self._axes[2].copy()
        forward[1] = 0.0
        norm = float(np.linalg.norm(forward))
        forward = forward / norm if norm > 1e-6 else np.array([0.0, 0.0, -1.0])
        return (np.asarray(points, np.float64) - self._centre) @ forward

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world metres -> (N, 3) camera metres: right, down, depth (+ in front)."""
        return (np.asarray(points, np.float64) - self._centre) @ self._axes.T

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world metres -> (N, 3): x, y pixels and depth in metres."""
        camera = self.to_camera(points)
        depth = np.maximum(camera[:, 2], 1e-3)
        out = np.empty_like(camera)
        out[:, 0] = self.width / 2 + self.focal_px * camera[:, 0] / depth
        out[:, 1] = self.height / 2 + self.focal_px * camera[:, 1] / depth
        out[:, 2] = camera[:, 2]
        return out


def to_world(points: np.ndarray, look: FlatLook) -> np.ndarray:
    """(33, 3) skeleton points (body heights, y down, from `forward_kinematics`) -> world
    metres with the lowest point of the body on the floor (feet planted, a squat sinks)."""
    world = np.asarray(points, np.float64) * look.stature_m
    world[:, 1] *= -1.0
    world[:, 1] += _SOLE_M * look.stature_m / 1.72 - world[:, 1].min()
    return world


def fit_distance(camera: PhoneCamera, poses: list[np.ndarray], margin: float = 0.05) -> PhoneCamera:
    """`camera` moved back (along its view, same height and aim) until every world pose,
    with room for the head, hands and feet around its keypoints, is inside the picture."""
    step = 1.04
    for _ in range(200):
        inside = True
        for points in poses:
            projected = camera.project(points)
            reach = 0.14 * camera.focal_px / np.maximum(projected[:, 2], 1e-3)
            low = projected[:, :2] - reach[:, None]
            high = projected[:, :2] + reach[:, None]
            limit = np.array([camera.width, camera.height], np.float64)
            if (
                (projected[:, 2] < 0.3).any()
                or (low < margin * limit).any()
                or (high > (1 - margin) * limit).any()
            ):
                inside = False
                break
        if inside:
            return camera
        camera = PhoneCamera(
            camera.yaw_deg,
            camera.height_m,
            camera.distance_m * step,
            camera.aim_height_m,
            camera.fov_deg,
            camera.width,
            camera.height,
            camera.roll_deg,
        )
    return camera


def image_keypoints(world: np.ndarray, camera: PhoneCamera) -> np.ndarray:
    """(33, 3) truth: x, y pixels and depth in metres (+ farther from the camera)."""
    return camera.project(world)


# ---------------------------------------------------------------- drawing


def _lit(colour: RGB, light: float) -> tuple[float, float, float]:
    return (colour[0] * light, colour[1] * light, colour[2] * light)


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points) * (1 << _SUBPIXEL_BITS)).astype(np.int32)


def _clip(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """Keep far-off-screen coordinates inside OpenCV's fixed-point range."""
    span = 4.0 * max(width, height)
    return np.clip(points, -span, span)


class _Canvas:
    """Flat fills in one colour each: no rim, no highlight, antialiased edges only."""

    def __init__(self, image: np.ndarray, camera: PhoneCamera, light: float) -> None:
        self.image, self.camera, self.light = image, camera, light
        self.focal = camera.focal_px

    def polygon(self, points: np.ndarray, colour: RGB) -> None:
        points = _clip(points, self.camera.width, self.camera.height)
        cv2.fillPoly(
            self.image, [_fixed(points)], _lit(colour, self.light), cv2.LINE_AA, _SUBPIXEL_BITS
        )

    def disc(self, centre: np.ndarray, radius_px: float, colour: RGB) -> None:
        c = _clip(np.asarray(centre, np.float64), self.camera.width, self.camera.height)
        unit = 1 << _SUBPIXEL_BITS
        cv2.circle(
            self.image,
            (round(float(c[0]) * unit), round(float(c[1]) * unit)),
            max(1, round(radius_px * unit)),
            _lit(colour, self.light),
            -1,
            cv2.LINE_AA,
            _SUBPIXEL_BITS,
        )

    def capsule(self, a: np.ndarray, b: np.ndarray, ra: float, rb: float, colour: RGB) -> None:
        """A tapered capsule between projected points a and b (x, y, depth), radii in metres."""
        pa = ra * self.focal / max(float(a[2]), 0.05)
        pb = rb * self.focal / max(float(b[2]), 0.05)
        d = b[:2] - a[:2]
        length = float(np.hypot(d[0], d[1]))
        if length > 1e-6:
            n = np.array([-d[1], d[0]]) / length
            quad = np.array([a[:2] + n * pa, b[:2] + n * pb, b[:2] - n * pb, a[:2] - n * pa])
            self.polygon(quad, colour)
        self.disc(a[:2], pa, colour)
        self.disc(b[:2], pb, colour)


_RING = np.linspace(0.0, 2 * math.pi, 14, endpoint=False)


class FlatFigure:
    """One frame of a flat-drawn person: parts collected with their depth, painted far to
    near onto the room."""

    def __init__(self, world: np.ndarray, look: FlatLook, camera: PhoneCamera) -> None:
        self.world, self.look, self.camera = world, look, camera
        self.keypoints = camera.project(world)
        # (depth to paint at, order among equals, how to paint it)
        self._parts: list[tuple[float, int, Callable[[_Canvas], None]]] = []
        scale = look.stature_m / 1.72
        self.girth = look.girth * scale
        camera_depth = camera.to_camera(world)[:, 2]
        self.near = (
            "left"
            if camera_depth[K["left_shoulder"]] + camera_depth[K["left_hip"]]
            < camera_depth[K["right_shoulder"]] + camera_depth[K["right_hip"]]
            else "right"
        )
        self.profile = abs(math.sin(math.radians(camera.yaw_deg))) > math.sqrt(0.5)

    def kp(self, name: str) -> np.ndarray:
        return self.keypoints[K[name]]

    def w(self, name: str) -> np.ndarray:
        return self.world[K[name]]

    def _limb(
        self, a: np.ndarray, b: np.ndarray, ra: float, rb: float, colour: RGB, order: int
    ) -> None:
        pa, pb = self.camera.project(np.array([a, b]))
        depth = float(self.camera.paint_depth(np.array([(a + b) / 2]))[0])
        self._parts.append((depth, order, lambda canvas: canvas.capsule(pa, pb, ra, rb, colour)))

    def build(self) -> None:
        look, g, loose = self.look, self.girth, self.look.loose_m
        for side in ("left", "right"):
            hip, knee, ankle = (
                self.w(f"{side}_hip"),
                self.w(f"{side}_knee"),
                self.w(f"{side}_ankle"),
            )
            heel, toe = self.w(f"{side}_heel"), self.w(f"{side}_foot_index")
            top = hip + (knee - hip) * 0.12  # the thigh's round top stays inside the pelvis
            self._limb(top, knee, 0.08 * g + loose, 0.06 * g + loose, look.pants, 0)
            self._limb(knee, ankle, 0.06 * g + loose, 0.045 * g + loose * 1.2, look.pants, 1)
            self._limb(heel, toe, 0.045 * g, 0.038 * g, look.shoes, 2)
            if self.profile and side != self.near and not look.far_arm:
                continue
            shoulder, elbow = self.w(f"{side}_shoulder"), self.w(f"{side}_elbow")
            wrist = self.w(f"{side}_wrist")
            hand = (self.w(f"{side}_index") + self.w(f"{side}_pinky")) / 2
            sleeve_loose = loose * 0.8
            if look.short_sleeves:
                mid = shoulder + (elbow - shoulder) * 0.5
                self._limb(shoulder, elbow, 0.045 * g, 0.04 * g, look.skin, 3)
                self._limb(
                    shoulder, mid, 0.055 * g + sleeve_loose, 0.05 * g + sleeve_loose, look.sleeve, 4
                )
                self._limb(elbow, wrist, 0.04 * g, 0.03 * g, look.skin, 5)
            else:
                self._limb(
                    shoulder,
                    elbow,
                    0.05 * g + sleeve_loose,
                    0.045 * g + sleeve_loose,
                    look.sleeve,
                    3,
                )
                cuff = sleeve_loose * 1.3
                self._limb(elbow, wrist, 0.045 * g + sleeve_loose, 0.036 * g + cuff, look.sleeve, 5)
            self._limb(wrist, hand, 0.03 * g, 0.028 * g, look.skin, 6)
        self._trunk()
        self._head()

    def _rings(self, sections: list[tuple[float, float, float]]) -> list[np.ndarray]:
        """Projected elliptic cross sections along the trunk: (share from hips to
        shoulders, half width, half depth in metres)."""
        hip_c = (self.w("left_hip") + self.w("right_hip")) / 2
        shoulder_c = (self.w("left_shoulder") + self.w("right_shoulder")) / 2
        axis = shoulder_c - hip_c
        up = axis / np.linalg.norm(axis)
        lateral = self.w("left_shoulder") - self.w("right_shoulder")
        lateral -= up * float(lateral @ up)
        lateral /= np.linalg.norm(lateral)
        forward = np.cross(lateral, up)
        rings = []
        for share, half_width, half_depth in sections:
            ring = (
                hip_c
                + axis * share
                + np.outer(np.cos(_RING) * half_width, lateral)
                + np.outer(np.sin(_RING) * half_depth, forward)
            )
            rings.append(self.camera.project(ring)[:, :2])
        return rings

    def _trunk(self) -> None:
        g, loose, scale = self.girth, self.look.loose_m, self.look.stature_m / 1.72
        pelvis = [
            (-0.35, 0.11 * g + loose, 0.08 * g + loose),
            (0.0, 0.18 * g + loose, 0.12 * g + loose),
            (0.35, 0.16 * g, 0.11 * g),
        ]
        hem = -0.15 - loose * 3.0  # a loose shirt hangs over the hips
        chest = [
            (hem, 0.17 * g + loose, 0.115 * g + loose),
            (0.45, 0.17 * g + loose, 0.115 * g + loose),
            (0.85, 0.19 * g * scale + loose, 0.1 * g + loose),
            (1.05, 0.14 * g * scale, 0.07 * g),
        ]
        hulls = []
        for sections, colour in ((pelvis, self.look.pants), (chest, self.look.shirt)):
            rings = self._rings(sections)
            for a, b in zip(rings, rings[1:], strict=False):
                hull = cv2.convexHull(np.concatenate([a, b]).astype(np.float32)).reshape(-1, 2)
                hulls.append((hull.astype(np.float64), colour))
        trunk = [K["left_hip"], K["right_hip"], K["left_shoulder"], K["right_shoulder"]]
        # a little behind its joints: arms hanging beside the trunk are painted over it
        depth = float(self.camera.paint_depth(self.world[trunk]).mean()) + 0.03

        def paint(canvas: _Canvas) -> None:
            for hull, colour in hulls:
                canvas.polygon(hull, colour)

        self._parts.append((depth, 0, paint))

    def _head(self) -> None:
        look, scale = self.look, self.look.stature_m / 1.72
        ears = (self.w("left_ear") + self.w("right_ear")) / 2
        shoulders = (self.w("left_shoulder") + self.w("right_shoulder")) / 2
        neck_top = ears + (shoulders - ears) * 0.35
        self._limb(
            shoulders + (ears - shoulders) * 0.2, neck_top, 0.055 * self.girth, 0.05, look.skin, 0
        )
        centre = ears + (ears - shoulders) * 0.05
        nose = self.w("nose")
        facing = nose - ears
        facing[1] = 0.0
        norm = float(np.linalg.norm(facing))
        facing = facing / norm if norm > 1e-6 else np.array([0.0, 0.0, 1.0])
        radius = 0.105 * scale
        hair_centre = centre - facing * 0.025 * scale + np.array([0.0, 0.02 * scale, 0.0])
        c, h = self.camera.project(np.array([centre, hair_centre]))
        to_camera = self.camera._centre - centre
        toward = float(facing @ to_camera) / float(np.linalg.norm(to_camera))
        features = self.camera.project(
            np.array(
                [
                    self.w("left_eye"),
                    self.w("right_eye"),
                    (self.w("mouth_left") + self.w("mouth_right")) / 2,
                    nose + facing * 0.02 * scale,
                    self.w("left_ear"),
                    self.w("right_ear"),
                ]
            )
        )
        depth = float(self.camera.paint_depth(np.array([centre]))[0]) - 0.08
        self._parts.append(
            (depth, 7, lambda canvas: self._paint_head(canvas, c, h, radius, toward, features))
        )

    # ---------------------------------------------------------------- paint

    def paint(self, image: np.ndarray) -> None:
        canvas = _Canvas(image, self.camera, self.look.light)
        for _, _, draw in sorted(self._parts, key=lambda p: (-p[0], p[1])):
            draw(canvas)

    def _paint_head(
        self,
        canvas: _Canvas,
        centre: np.ndarray,
        hair_centre: np.ndarray,
        radius: float,
        toward: float,
        features: np.ndarray,
    ) -> None:
        look = self.look
        r = radius * canvas.focal / max(float(centre[2]), 0.05)
        canvas.disc(hair_centre[:2], r * 1.04, look.hair)
        if toward < -0.3:
            return  # the back of the head: hair only
        face = centre[:2] + (centre[:2] - hair_centre[:2]) * 0.6
        canvas.disc(face, r * 0.9, look.skin)
        dark, lips = (25, 20, 20), (150, 70, 70)
        eye_r = max(1.0, r * 0.09)
        mouth = features[2]
        if toward > 0.5:
            for eye in features[:2]:
                canvas.disc(eye[:2], eye_r, dark)
                brow = eye.copy()
                brow[1] -= r * 0.22
                self._stroke(canvas, brow, r * 0.12, dark)
            self._stroke(canvas, mouth, r * 0.18, lips)
        else:
            near_eye = features[0] if self.near == "left" else features[1]
            canvas.disc(near_eye[:2], eye_r, dark)
            tip = features[3, :2]
            base = face + (tip - face) * 0.55
            canvas.disc(base + (tip - base) * 0.5, r * 0.16, look.skin)
            ear = features[4] if self.near == "left" else features[5]
            canvas.disc(ear[:2], r * 0.14, _darker(look.skin))
            forward = (tip - face) / max(1e-6, float(np.linalg.norm(tip - face)))
            lip = mouth.copy()
            lip[:2] = mouth[:2] + forward * r * 0.06
            canvas.capsule(mouth, lip, 0.006, 0.006, lips)

    @staticmethod
    def _stroke(canvas: _Canvas, centre: np.ndarray, half_px: float, colour: RGB) -> None:
        """A short horizontal line (a mouth, a brow) centred on a projected point."""
        a, b = centre.copy(), centre.copy()
        a[0] -= half_px
        b[0] += half_px
        canvas.capsule(a, b, 0.006, 0.006, colour)


def _darker(colour: RGB) -> RGB:
    return (int(colour[0] * 0.85), int(colour[1] * 0.85), int(colour[2] * 0.85))


def render_room(look: FlatLook, camera: PhoneCamera) -> np.ndarray:
    """The empty room: a flat wall behind the person and a flat floor, a window and a
    cupboard; the light of `look` already applied."""
    image = np.empty((camera.height, camera.width, 3), np.uint8)
    image[...] = np.array(_lit(look.wall, look.light), np.uint8)
    canvas = _Canvas(image, camera, look.light)
    yaw = math.radians(camera.yaw_deg)
    back = -np.array([math.sin(yaw), 0.0, math.cos(yaw)]) * _WALL_BEHIND_M
    along = np.array([math.cos(yaw), 0.0, -math.sin(yaw)])
    towards = -back / _WALL_BEHIND_M
    floor = [
        back - along * 12,
        back + along * 12,
        back + along * 12 + towards * 12,
        back - along * 12 + towards * 12,
    ]
    # keep the floor polygon in front of the lens
    corners = camera.to_camera(np.array(floor))
    if (corners[:, 2] > 0.05).any():
        clipped = _clip_front(np.array(floor), camera)
        canvas.polygon(camera.project(clipped)[:, :2], look.floor)
    for (x0, y0, x1, y1), colour in (
        ((-1.9, 1.0, -1.0, 1.9), (215, 225, 235)),
        ((1.1, 0.0, 2.0, 0.9), (95, 70, 50)),
    ):
        quad = np.array(
            [back + along * x0 + [0, y0, 0], back + along * x1 + [0, y0, 0],
             back + along * x1 + [0, y1, 0], back + along * x0 + [0, y1, 0]]
        )  # fmt: skip
        if (camera.to_camera(quad)[:, 2] > 0.05).all():
            canvas.polygon(camera.project(quad)[:, :2], colour)
    return image


def _clip_front(polygon: np.ndarray, camera: PhoneCamera, near: float = 0.05) -> np.ndarray:
    """The part of a world polygon in front of the camera (Sutherland-Hodgman, one plane)."""
    depth = camera.to_camera(polygon)[:, 2] - near
    out = []
    for i in range(len(polygon)):
        a, b = polygon[i], polygon[(i + 1) % len(polygon)]
        da, db = depth[i], depth[(i + 1) % len(polygon)]
        if da >= 0:
            out.append(a)
        if (da >= 0) != (db >= 0):
            out.append(a + (b - a) * (da / (da - db)))
    return np.array(out)


class FlatScene:
    """A flat-drawn person filmed by one phone camera in one room: renders frames from
    world poses, with motion blur, sensor noise (a few noise fields drawn once and reused:
    drawing 720p of noise per frame would cost more than the drawing) and an automatic
    exposure that brightens a dim room up to 2.5 times, noise included."""

    def __init__(self, look: FlatLook, camera: PhoneCamera, rng: np.random.Generator) -> None:
        self.look, self.camera = look, camera
        self.room = render_room(look, camera)
        # the phone's automatic exposure brightens a dim room, noise and all (up to a limit)
        self._gain = min(_MAX_GAIN, max(1.0, _EXPOSURE_TARGET / max(1.0, float(self.room.mean()))))
        self._rng = rng
        shape = self.room.shape
        self._noise = [
            rng.normal(0.0, look.noise, shape).astype(np.float32)
            for _ in range(3 if look.noise else 0)
        ]

    @property
    def size(self) -> tuple[int, int]:
        return self.camera.width, self.camera.height

    def render(self, worlds: list[np.ndarray]) -> np.ndarray:
        """(height, width, 3) RGB uint8: the person at each world pose of `worlds` (the
        instants of one exposure: more than one blurs the motion); none: the empty room."""
        if not worlds:
            out = self.room.astype(np.float32)
        else:
            out = np.zeros(self.room.shape, np.float32)
            for world in worlds:
                image = self.room.copy()
                figure = FlatFigure(world, self.look, self.camera)
                figure.build()
                figure.paint(image)
                out += image
            out /= len(worlds)
        if self._noise:
            out += self._noise[int(self._rng.integers(len(self._noise)))]
        out *= self._gain
        return np.clip(out, 0, 255).astype(np.uint8)

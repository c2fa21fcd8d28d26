"""Draw the kinematic skeleton as a solid, shaded person in a room, fast enough for live video.

The body is tapered capsules (limbs), convex hulls of elliptic cross sections (the trunk), a
head wearing the face of the bundled photo when it looks at the camera (BlazePose's detector
keys on the face) or drawn in profile, and shoes; parts are painted far to near so the far
side is hidden in profile, and limbs behind the trunk are in its shadow. The projection is
orthographic: the truth keypoints are the very points the drawing is built on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from ..protocol import KEYPOINT_INDEX as K

RGB = tuple[int, int, int]
# (share of the way from the first joint to the second, radius in body heights)
Shape = tuple[tuple[float, float], ...]

PHOTO = Path(__file__).resolve().parent.parent / "data" / "person.jpg"
# In the photo (512x512 pixels): where BlazePose puts the right eye, left eye and mouth centre,
# and the outline of the head with its hair.
_PHOTO_ANCHORS = np.array([(206.3, 105.0), (249.0, 113.2), (220.0, 151.0)], np.float32)
_PHOTO_HEAD = np.array(
    [
        (225, 17), (265, 22), (287, 40), (299, 65), (302, 95), (297, 120), (275, 129),
        (270, 135), (262, 165), (245, 182), (225, 188), (205, 182), (187, 165), (180, 135),
        (175, 125), (160, 117), (152, 95), (155, 70), (170, 45), (195, 30),
    ],
    np.float32,
)  # fmt: skip

# body shape, in body heights: trunk cross sections (height along the trunk as a share of it,
# half width, half depth), pants then shirt; limb radii along the limb
_PELVIS = ((-0.26, 0.07, 0.06), (0.0, 0.118, 0.085), (0.3, 0.104, 0.072))
_CHEST = ((0.26, 0.104, 0.072), (0.6, 0.112, 0.08), (0.86, 0.12, 0.072), (1.04, 0.095, 0.05))
_THIGH: Shape = ((0.0, 0.07), (0.5, 0.06), (1.0, 0.045))
_SHIN: Shape = ((0.0, 0.045), (0.3, 0.052), (1.0, 0.032))  # the calf bulges below the knee
_FOOT: Shape = ((0.0, 0.03), (1.0, 0.024))
_UPPER_ARM: Shape = ((0.0, 0.037), (0.5, 0.034), (1.0, 0.029))
_FOREARM: Shape = ((0.0, 0.031), (0.3, 0.033), (1.0, 0.024))
_HAND: Shape = ((0.0, 0.026), (1.0, 0.022))
_SLEEVE_END = 0.55  # share of the upper arm a short sleeve covers
_HEAD_RADIUS = 0.068
_RING = np.linspace(0.0, 2 * math.pi, 16, endpoint=False)

_SUBPIXEL_BITS = 4
_LIGHT = np.array([-0.45, -0.9])  # light from the upper left, in image coordinates
_FAR_DARKEN = 0.25  # how much darker a limb well behind the trunk is


@dataclass(frozen=True)
class ViewPoint:
    """Where the camera stands: yaw 0 faces the person, +90 sees their left side, -90 their right.

    The skeleton's axes are x: the person's left, y: down, z: forward. Seen from the front the
    person's left is on the image's right; seen from their left they face the image's left.
    """

    yaw: float = 0.0

    @classmethod
    def named(cls, name: str) -> ViewPoint:
        """ "front", "side_left" (the camera sees the left side) or "side_right"; KeyError else."""
        return cls({"front": 0.0, "side_left": 90.0, "side_right": -90.0}[name])

    @property
    def catalog_view(self) -> str:
        """The exercise catalog's name for this view: "front" or "side"."""
        return "side" if abs(math.sin(math.radians(self.yaw))) > math.sqrt(0.5) else "front"

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) skeleton points -> (N, 3): image right, image down, depth (+ is farther)."""
        a = math.radians(self.yaw)
        c, s = math.cos(a), math.sin(a)
        matrix = np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [-s, 0.0, -c]])
        return points @ matrix.T


@dataclass(frozen=True)
class Look:
    """Clothes, skin, room and framing of a rendered person (colours are RGB)."""

    shirt: RGB = (36, 98, 178)
    pants: RGB = (46, 50, 62)
    shoes: RGB = (232, 232, 228)
    skin: RGB = (226, 170, 138)
    hair: RGB = (150, 104, 58)  # for the head in profile; facing us it is the photo's
    wall: RGB = (206, 200, 190)
    floor: RGB = (140, 112, 84)
    short_sleeves: bool = True
    body_height: float = 0.74  # share of the frame height the standing person spans
    centre_x: float = 0.5  # where the hip centre stands, share of the frame width
    floor_y: float = 0.94  # where the lowest point of the body rests, share of the frame height


@dataclass(frozen=True)
class _Placement:
    scale: float  # pixels per body height
    offset: np.ndarray  # pixels added after scaling


def _placement(camera_points: np.ndarray, look: Look, width: int, height: int) -> _Placement:
    """Hips at `centre_x`, the lowest point on the floor: feet stay planted as the body moves."""
    scale = look.body_height * height
    hip_x = camera_points[[K["left_hip"], K["right_hip"]], 0].mean()
    lowest = camera_points[:, 1].max() + 0.035  # the soles below the heel and toe points
    offset = np.array(
        [look.centre_x * width - hip_x * scale, look.floor_y * height - lowest * scale]
    )
    return _Placement(scale, offset)


def image_keypoints(
    points: np.ndarray, view: ViewPoint, look: Look, width: int, height: int
) -> np.ndarray:
    """(33, 3) truth: x, y in pixels and depth in body heights (+ is farther from the camera)."""
    camera_points = view.to_camera(points)
    place = _placement(camera_points, look, width, height)
    out = camera_points.copy()
    out[:, :2] = camera_points[:, :2] * place.scale + place.offset
    return out


def fit_look(look: Look, poses: list[np.ndarray], view: ViewPoint, width: int, height: int) -> Look:
    """`look` with the person shrunk (never grown) so every pose stays inside the frame."""
    margin = 0.04
    body_height = look.body_height
    for points in poses:
        camera_points = view.to_camera(points)
        xs, ys = camera_points[:, 0], camera_points[:, 1]
        hip_x = xs[[K["left_hip"], K["right_hip"]]].mean()
        # the head, hands and feet reach beyond their keypoints
        span_y = float(np.ptp(ys)) + 0.16
        left, right = hip_x - xs.min() + 0.1, xs.max() - hip_x + 0.1
        room_left = (look.centre_x - margin) * width / height
        room_right = (1 - look.centre_x - margin) * width / height
        body_height = min(
            body_height, (look.floor_y - margin) / span_y, room_left / left, room_right / right
        )
    return replace(look, body_height=float(body_height))


# ---------------------------------------------------------------- drawing primitives


def _fixed(points: np.ndarray) -> np.ndarray:
    """Pixels to OpenCV's fixed point (sub-pixel precision, antialiased edges)."""
    return np.round(np.asarray(points) * (1 << _SUBPIXEL_BITS)).astype(np.int32)


def _shade(colour: RGB, factor: float) -> RGB:
    r, g, b = (int(min(255.0, c * factor)) for c in colour)
    return (r, g, b)


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else v


def _polygon(image: np.ndarray, points: np.ndarray, colour: RGB) -> None:
    cv2.fillConvexPoly(image, _fixed(points), colour, cv2.LINE_AA, _SUBPIXEL_BITS)


def _capsule(
    image: np.ndarray, a: np.ndarray, b: np.ndarray, ra: float, rb: float, colour: RGB
) -> None:
    """A tapered capsule from a (radius ra) to b (radius rb), in pixels. Scalar arithmetic:
    a frame draws about seventy of these, and numpy's overhead on 2-vectors dominates."""
    unit = 1 << _SUBPIXEL_BITS
    ax, ay, bx, by = float(a[0]), float(a[1]), float(b[0]), float(b[1])
    dx, dy = bx - ax, by - ay
    length = math.hypot(dx, dy)
    if length > 1e-6:
        nx, ny = -dy / length * unit, dx / length * unit
        ax16, ay16, bx16, by16 = ax * unit, ay * unit, bx * unit, by * unit
        quad = [
            (ax16 + nx * ra, ay16 + ny * ra),
            (bx16 + nx * rb, by16 + ny * rb),
            (bx16 - nx * rb, by16 - ny * rb),
            (ax16 - nx * ra, ay16 - ny * ra),
        ]
        corners = np.array([(round(x), round(y)) for x, y in quad], np.int32)
        cv2.fillConvexPoly(image, corners, colour, cv2.LINE_AA, _SUBPIXEL_BITS)
    for x, y, radius in ((ax, ay, ra), (bx, by, rb)):
        centre = (round(x * unit), round(y * unit))
        size = max(1, round(radius * unit))
        cv2.circle(image, centre, size, colour, -1, cv2.LINE_AA, _SUBPIXEL_BITS)


def _shaded_chain(
    image: np.ndarray, centres: list[np.ndarray], radii: list[float], colour: RGB
) -> None:
    """Capsules joining consecutive centres (a limb with a shape), lit as one surface from the
    upper left: a dark rim, the body colour, a soft highlight."""
    segments = list(zip(centres, centres[1:], radii, radii[1:], strict=False))
    for factor, size, light in ((0.62, 1.0, 0.0), (1.0, 0.8, 0.18), (1.18, 0.32, 0.4)):
        tone = _shade(colour, factor)
        for a, b, ra, rb in segments:
            shift = _LIGHT * light * (ra + rb) / 2
            _capsule(image, a + shift, b + shift, ra * size, rb * size, tone)


def _shaded_hulls(
    image: np.ndarray, hulls: list[np.ndarray], colour: RGB, base: np.ndarray, top: np.ndarray
) -> None:
    """Convex polygons (pixels) of one trunk-like surface along the axis base -> top, lit as a
    cylinder: the lighter layers shrink across the axis only, so no seam shows between hulls."""
    axis = top - base
    length = float(np.hypot(axis[0], axis[1]))
    along = axis / length if length > 1e-6 else np.array([0.0, -1.0])
    across = np.array([-along[1], along[0]])
    half_width = max(float(np.abs((hull - base) @ across).max()) for hull in hulls)
    for factor, keep, shift in ((0.62, 1.0, 0.0), (1.0, 0.84, 0.1), (1.12, 0.42, 0.3)):
        tone = _shade(colour, factor)
        for hull in hulls:
            relative = hull - base
            inner = (
                base
                + np.outer(relative @ along, along)
                + np.outer(relative @ across * keep, across)
                + _LIGHT * shift * half_width
            )
            _polygon(image, inner, tone)


def _far_side_tone(colour: RGB, behind: float) -> RGB:
    """Limbs behind the trunk (`behind` > 0, body heights) are in its shadow: darker."""
    return _shade(colour, 1.0 - _FAR_DARKEN * min(1.0, max(0.0, behind / 0.08)))


# ---------------------------------------------------------------- the room


def _rectangle(image: np.ndarray, corners: tuple[float, float, float, float], colour: RGB) -> None:
    """A filled rectangle given as shares of the image (left, top, right, bottom)."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = corners
    top_left = (int(x0 * width), int(y0 * height))
    cv2.rectangle(image, top_left, (int(x1 * width), int(y1 * height)), colour, -1)


@lru_cache(maxsize=8)
def _background(wall: RGB, floor: RGB, width: int, height: int, floor_y: float) -> np.ndarray:
    """A wall with a picture and a door, a baseboard and a wooden floor; deterministic, shared
    (read-only): callers copy it."""
    image = np.empty((height, width, 3), np.float32)
    horizon = int(height * (floor_y - 0.16))
    rows = np.linspace(0.0, 1.0, horizon)[:, None, None]
    image[:horizon] = np.array(wall, np.float32) * (1.06 - 0.14 * rows)
    floor_rows = np.linspace(0.0, 1.0, height - horizon)[:, None, None]
    image[horizon:] = np.array(floor, np.float32) * (0.85 + 0.25 * floor_rows)
    for i in range(1, 7):  # planks seen in perspective
        y = horizon + int((height - horizon) * (i / 7) ** 1.6)
        image[y : y + 1] *= 0.8
    image[horizon - 5 : horizon] = np.array(wall, np.float32) * 0.72
    _rectangle(image, (0.07, 0.12, 0.22, 0.34), (90, 110, 120))
    _rectangle(image, (0.08, 0.135, 0.21, 0.325), (170, 190, 200))
    _rectangle(image, (0.8, 0.18, 0.95, horizon / height), (176, 160, 140))
    image += np.random.default_rng(7).normal(0.0, 3.0, image.shape).astype(np.float32)
    out = np.clip(image, 0, 255).astype(np.uint8)
    out.flags.writeable = False
    return out


def _floor_shadow(
    image: np.ndarray, xs: np.ndarray, floor: float, scale: float, look: Look
) -> None:
    """A soft contact shadow under the body (pixels); blended in its box only, for speed."""
    height, width = image.shape[:2]
    centre = ((xs.min() + xs.max()) / 2, floor)
    axes = ((xs.max() - xs.min()) / 2 + 0.08 * scale, 0.025 * scale + 1)
    x0, x1 = max(int(centre[0] - axes[0]) - 1, 0), min(int(centre[0] + axes[0]) + 2, width)
    y0, y1 = max(int(centre[1] - axes[1]) - 1, 0), min(int(centre[1] + axes[1]) + 2, height)
    if x1 <= x0 or y1 <= y0:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    local = (int(centre[0]) - x0, int(centre[1]) - y0)
    cv2.ellipse(mask, local, (int(axes[0]), int(axes[1])), 0, 0, 360, (128,), -1, cv2.LINE_AA)
    region = image[y0:y1, x0:x1]
    alpha = mask.astype(np.float32)[..., None] / 255.0
    dark = np.array(_shade(look.floor, 0.55), np.float32)
    region[...] = (region * (1 - alpha) + dark * alpha).astype(np.uint8)


# ---------------------------------------------------------------- the head


@lru_cache(maxsize=1)
def _photo() -> np.ndarray:
    image = cv2.imread(str(PHOTO), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read the face photo {PHOTO}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _paste_face(image: np.ndarray, anchors: np.ndarray) -> None:
    """Warp the photo's head so its right eye, left eye and mouth land on `anchors` (pixels)."""
    matrix = cv2.getAffineTransform(_PHOTO_ANCHORS, anchors.astype(np.float32))
    outline = _PHOTO_HEAD @ matrix[:, :2].T + matrix[:, 2]
    height, width = image.shape[:2]
    x0, y0 = (int(v) - 1 for v in np.floor(outline.min(axis=0)))
    x1, y1 = (int(v) + 2 for v in np.ceil(outline.max(axis=0)))
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    local = np.asarray(matrix, np.float64).copy()
    local[:, 2] -= (x0, y0)
    patch = cv2.warpAffine(
        _photo(), local, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [_fixed(outline - (x0, y0))], (255,), cv2.LINE_AA, _SUBPIXEL_BITS)
    alpha = (mask.astype(np.float32) / 255.0)[..., None]
    region = image[y0:y1, x0:x1]
    region[...] = (patch * alpha + region * (1 - alpha)).astype(np.uint8)


@dataclass(frozen=True)
class _HeadFrame:
    """The head in pixels: centre, radius, and unit image directions of its front and top."""

    centre: np.ndarray
    radius: float
    forward: np.ndarray
    up: np.ndarray

    def at(self, forward: float, up: float) -> np.ndarray:
        """A point `forward`, `up` head radii from the centre."""
        return self.centre + (self.forward * forward + self.up * up) * self.radius


def _profile_head(
    image: np.ndarray, head: _HeadFrame, keypoints: np.ndarray, near: str, look: Look
) -> None:
    """A head seen from the side: hair at the back and top, face, nose, ear, eye, mouth."""
    r = head.radius
    forward, up = head.forward * r, head.up * r
    _capsule(image, head.at(-0.15, 0.0), head.centre, r * 1.02, r, look.hair)
    _capsule(image, head.at(0.28, -0.22), head.at(0.28, -0.47), r * 0.74, r * 0.7, look.skin)
    _capsule(image, head.at(-0.3, 0.4), head.at(0.25, 0.55), r * 0.62, r * 0.42, look.hair)
    nose = np.array([head.at(0.9, 0.05), head.at(1.2, -0.3), head.at(0.9, -0.36)])
    _polygon(image, nose, look.skin)
    ear = keypoints[K[f"{near}_ear"], :2]
    _capsule(image, ear + up * 0.12, ear - up * 0.12, r * 0.2, r * 0.16, _shade(look.skin, 0.85))
    eye = keypoints[K[f"{near}_eye"], :2]
    _capsule(image, eye, eye + forward * 0.08, r * 0.07, r * 0.07, (60, 40, 30))
    brow = eye + up * 0.2
    brow_colour = _shade(look.hair, 0.6)
    _capsule(image, brow - forward * 0.1, brow + forward * 0.1, r * 0.05, r * 0.04, brow_colour)
    mouth = keypoints[K[f"mouth_{near}"], :2]
    _capsule(image, mouth, mouth + forward * 0.16, r * 0.045, r * 0.045, (170, 80, 80))


# ---------------------------------------------------------------- the body


def _trunk_hulls(
    points: np.ndarray,
    view: ViewPoint,
    place: _Placement,
    sections: tuple[tuple[float, float, float], ...],
) -> list[np.ndarray]:
    """Convex hulls (pixels) of consecutive elliptic cross sections of the trunk."""
    hip_c = (points[K["left_hip"]] + points[K["right_hip"]]) / 2
    shoulder_c = (points[K["left_shoulder"]] + points[K["right_shoulder"]]) / 2
    axis = shoulder_c - hip_c
    up = _unit(axis)
    lateral = _unit(points[K["left_shoulder"]] - points[K["right_shoulder"]])
    lateral = _unit(lateral - up * float(lateral @ up))
    forward = np.cross(up, lateral)
    rings = []
    for share, half_width, half_depth in sections:
        ring = (
            hip_c
            + axis * share
            + np.outer(np.cos(_RING) * half_width, lateral)
            + np.outer(np.sin(_RING) * half_depth, forward)
        )
        rings.append(view.to_camera(ring)[:, :2] * place.scale + place.offset)
    hulls = []
    for a, b in zip(rings, rings[1:], strict=False):
        hull = cv2.convexHull(np.concatenate([a, b]).astype(np.float32))
        hulls.append(hull.reshape(-1, 2).astype(np.float64))
    return hulls


class _Painter:
    """One frame: collects the body's parts with their depth, then paints them far to near."""

    def __init__(self, image: np.ndarray, points: np.ndarray, view: ViewPoint, look: Look) -> None:
        height, width = image.shape[:2]
        self.image, self.points, self.view, self.look = image, points, view, look
        camera_points = view.to_camera(points)
        self.place = _placement(camera_points, look, width, height)
        self.scale = self.place.scale
        self.keypoints = camera_points.copy()
        self.keypoints[:, :2] = camera_points[:, :2] * self.scale + self.place.offset
        self.depth = self.keypoints[:, 2]
        trunk = [K["left_hip"], K["right_hip"], K["left_shoulder"], K["right_shoulder"]]
        self.trunk_depth = float(self.depth[trunk].mean())
        self._parts: list[tuple[float, int, Callable[[], None]]] = []

    def px(self, name: str) -> np.ndarray:
        return self.keypoints[K[name], :2]

    def mid(self, a: str, b: str) -> np.ndarray:
        return (self.px(a) + self.px(b)) / 2

    def add(self, depth: float, order: int, draw: Callable[[], None]) -> None:
        """`order` breaks ties of depth: lower is painted first."""
        self._parts.append((depth, order, draw))

    def limb(
        self, a: np.ndarray, b: np.ndarray, depth: float, shape: Shape, colour: RGB, order: int
    ) -> None:
        """A limb from pixel a to b at `depth`, darker when behind the trunk."""
        tone = _far_side_tone(colour, depth - self.trunk_depth)
        centres = list(a + np.outer([share for share, _ in shape], b - a))
        radii = [radius * self.scale for _, radius in shape]
        self.add(depth, order, lambda: _shaded_chain(self.image, centres, radii, tone))

    def joint_limb(self, a: str, b: str, shape: Shape, colour: RGB, order: int) -> None:
        depth = float(self.depth[K[a]] + self.depth[K[b]]) / 2
        self.limb(self.px(a), self.px(b), depth, shape, colour, order)

    def body(self) -> None:
        look = self.look
        arm = look.skin if look.short_sleeves else look.shirt
        for side in ("left", "right"):
            self.joint_limb(f"{side}_hip", f"{side}_knee", _THIGH, look.pants, 0)
            self.joint_limb(f"{side}_knee", f"{side}_ankle", _SHIN, look.pants, 1)
            self.joint_limb(f"{side}_heel", f"{side}_foot_index", _FOOT, look.shoes, 2)
            self.joint_limb(f"{side}_shoulder", f"{side}_elbow", _UPPER_ARM, arm, 3)
            if look.short_sleeves:
                shoulder, elbow = self.px(f"{side}_shoulder"), self.px(f"{side}_elbow")
                end = shoulder + (elbow - shoulder) * _SLEEVE_END
                depth = float(self.depth[K[f"{side}_shoulder"]] + self.depth[K[f"{side}_elbow"]])
                sleeve = ((0.0, 0.04), (1.0, 0.037))
                self.limb(shoulder, end, depth / 2, sleeve, look.shirt, 4)
            self.joint_limb(f"{side}_elbow", f"{side}_wrist", _FOREARM, arm, 5)
            hand = self.mid(f"{side}_index", f"{side}_pinky")
            wrist = self.px(f"{side}_wrist")
            self.limb(wrist, hand, float(self.depth[K[f"{side}_wrist"]]), _HAND, look.skin, 6)
        self.trunk()
        self.head()

    def trunk(self) -> None:
        base = self.mid("left_hip", "right_hip")
        top = self.mid("left_shoulder", "right_shoulder")

        def draw() -> None:
            for sections, colour in ((_PELVIS, self.look.pants), (_CHEST, self.look.shirt)):
                hulls = _trunk_hulls(self.points, self.view, self.place, sections)
                _shaded_hulls(self.image, hulls, colour, base, top)

        # a little behind its joints: arms hanging beside the trunk are painted over it
        self.add(self.trunk_depth + 0.02, 0, draw)

    def head(self) -> None:
        points, s = self.points, self.scale
        ear_mid, eye_mid = self.mid("left_ear", "right_ear"), self.mid("left_eye", "right_eye")
        neck_base = self.mid("left_shoulder", "right_shoulder") * 0.85 + ear_mid * 0.15
        neck_top = ear_mid - (eye_mid - ear_mid) * 0.2
        neck = ((0.0, 0.034), (1.0, 0.03))
        self.limb(neck_base, neck_top, self.trunk_depth + 0.03, neck, self.look.skin, 0)

        head_world = (points[K["left_ear"]] + points[K["right_ear"]]) / 2
        eyes = points[K["left_eye"]] + points[K["right_eye"]]
        up_world = _unit(eyes - points[K["mouth_left"]] - points[K["mouth_right"]])
        nose = points[K["nose"]] - head_world
        forward_world = _unit(nose - up_world * float(nose @ up_world))
        forward, up, centre = self.view.to_camera(np.array([forward_world, up_world, head_world]))
        facing = -float(forward[2])  # 1 when the face looks into the camera
        frame = _HeadFrame(
            ear_mid + up[:2] * 0.012 * s, _HEAD_RADIUS * s, _unit(forward[:2]), _unit(up[:2])
        )

        def draw() -> None:
            if facing > 0.5:
                mouth = self.mid("mouth_left", "mouth_right")
                anchors = np.array([self.px("right_eye"), self.px("left_eye"), mouth])
                _paste_face(self.image, anchors)
            elif facing < -0.5:
                _shaded_chain(self.image, [frame.centre] * 2, [frame.radius] * 2, self.look.hair)
            else:
                left_nearer = self.depth[K["left_ear"]] < self.depth[K["right_ear"]]
                near = "left" if left_nearer else "right"
                _profile_head(self.image, frame, self.keypoints, near, self.look)

        self.add(float(centre[2]) - 0.05, 7, draw)

    def paint(self) -> None:
        xs = self.keypoints[:, 0]
        floor = float(self.keypoints[:, 1].max()) + 0.03 * self.scale
        _floor_shadow(self.image, xs, floor, self.scale, self.look)
        for _, _, draw in sorted(self._parts, key=lambda part: (-part[0], part[1])):
            draw()


def render_room(look: Look, width: int = 640, height: int = 480) -> np.ndarray:
    """The room with nobody in it (a person who has walked out of the picture)."""
    return _background(look.wall, look.floor, width, height, look.floor_y).copy()


def render_frame(
    points: np.ndarray, view: ViewPoint, look: Look, width: int = 640, height: int = 480
) -> np.ndarray:
    """(height, width, 3) RGB uint8 of the person whose skeleton is `points` ((33, 3), body
    heights, from `forward_kinematics`), seen from `view`."""
    image = _background(look.wall, look.floor, width, height, look.floor_y).copy()
    painter = _Painter(image, points, view, look)
    painter.body()
    painter.paint()
    return image

"""Draw the kinematic skeleton as a solid, shaded person in a room, fast enough for live video.

The body is a handful of tapered capsules (limbs), convex hulls of elliptic cross sections
(torso), an ellipsoid head wearing the face of the bundled photo (BlazePose's detector keys on
the face) and shoes, painted far to near so the far side is hidden in profile. Projection is
orthographic: the truth keypoints are the very points the drawing is built on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from ..protocol import KEYPOINT_INDEX as K

RGB = tuple[int, int, int]

PHOTO = Path(__file__).resolve().parent.parent / "data" / "person.jpg"
# In the photo (512x512): where BlazePose puts the right eye, left eye and mouth centre, and
# the outline of the head with its hair (pixels).
_PHOTO_ANCHORS = np.float32([(206.3, 105.0), (249.0, 113.2), (220.0, 151.0)])
_PHOTO_HEAD = np.float32(
    [
        (225, 17), (265, 22), (287, 40), (299, 65), (302, 95), (297, 120), (275, 129),
        (270, 135), (262, 165), (245, 182), (225, 188), (205, 182), (187, 165), (180, 135),
        (175, 125), (160, 117), (152, 95), (155, 70), (170, 45), (195, 30),
    ]
)  # fmt: skip

_SUBPIXEL_BITS = 4
_SUBPIXEL = 1 << _SUBPIXEL_BITS
_LIGHT = np.array([-0.45, -0.9])  # light from the upper left, in image coordinates


@dataclass(frozen=True)
class ViewPoint:
    """Where the camera stands: yaw 0 faces the person, +90 sees their left side, -90 their right.

    The skeleton's axes are x: the person's left, y: down, z: forward. Seen from the front the
    person's left is on the image's right; seen from their left they face the image's left.
    """

    yaw: float = 0.0

    @classmethod
    def named(cls, name: str) -> ViewPoint:
        """ "front", "side_left" (the camera sees the left side) or "side_right"."""
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
    hair: RGB = (150, 104, 58)
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
        span_x = np.ptp(camera_points[:, 0]) + 0.2  # the head, hands and feet beyond joints
        span_y = np.ptp(camera_points[:, 1]) + 0.16
        hip_x = camera_points[[K["left_hip"], K["right_hip"]], 0].mean()
        left = hip_x - camera_points[:, 0].min() + 0.1
        right = camera_points[:, 0].max() - hip_x + 0.1
        room_left = (look.centre_x - margin) * width / height
        room_right = (1 - look.centre_x - margin) * width / height
        body_height = min(
            body_height,
            (look.floor_y - margin) / span_y,
            room_left / left,
            room_right / right,
            (1 - 2 * margin) * width / height / span_x,
        )
    return replace(look, body_height=float(body_height))


# ---------------------------------------------------------------- drawing primitives


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points) * _SUBPIXEL).astype(np.int32)


def _shade(colour: RGB, factor: float) -> RGB:
    return (
        int(min(255, colour[0] * factor)),
        int(min(255, colour[1] * factor)),
        int(min(255, colour[2] * factor)),
    )


def _capsule(
    image: np.ndarray, a: np.ndarray, b: np.ndarray, ra: float, rb: float, colour: RGB
) -> None:
    """A tapered capsule from a (radius ra) to b (radius rb), pixels, antialiased."""
    d = b - a
    length = float(np.hypot(d[0], d[1]))
    if length > 1e-6:
        n = np.array([-d[1], d[0]]) / length
        quad = np.array([a + n * ra, b + n * rb, b - n * rb, a - n * ra])
        cv2.fillConvexPoly(image, _fixed(quad), colour, cv2.LINE_AA, _SUBPIXEL_BITS)
    for centre, radius in ((a, ra), (b, rb)):
        cv2.circle(
            image,
            tuple(int(v) for v in _fixed(centre)),
            max(1, int(radius * _SUBPIXEL)),
            colour,
            -1,
            cv2.LINE_AA,
            _SUBPIXEL_BITS,
        )


def _shaded_capsule(
    image: np.ndarray, a: np.ndarray, b: np.ndarray, ra: float, rb: float, colour: RGB
) -> None:
    """A capsule lit from the upper left: dark rim, body colour, soft highlight."""
    _capsule(image, a, b, ra, rb, _shade(colour, 0.62))
    shift = _LIGHT * 0.18 * (ra + rb) / 2
    _capsule(image, a + shift, b + shift, ra * 0.8, rb * 0.8, colour)
    shift = _LIGHT * 0.4 * (ra + rb) / 2
    _capsule(image, a + shift, b + shift, ra * 0.32, rb * 0.32, _shade(colour, 1.18))


def _shaded_hulls(image: np.ndarray, hulls: list[np.ndarray], colour: RGB) -> None:
    """Convex polygons (pixels) of one surface: all rims first so no seam shows between them."""
    scale = float(np.sqrt(max(cv2.contourArea(h.astype(np.float32)) for h in hulls)))
    for hull in hulls:
        cv2.fillConvexPoly(image, _fixed(hull), _shade(colour, 0.62), cv2.LINE_AA, _SUBPIXEL_BITS)
    for factor, shrink, shift in ((1.0, 0.1, 0.07), (1.12, 0.45, 0.18)):
        for hull in hulls:
            centre = hull.mean(axis=0)
            inner = centre + (hull - centre) * (1 - shrink) + _LIGHT * shift * scale
            cv2.fillConvexPoly(
                image, _fixed(inner), _shade(colour, factor), cv2.LINE_AA, _SUBPIXEL_BITS
            )


# ---------------------------------------------------------------- the background


@lru_cache(maxsize=8)
def _background(wall: RGB, floor: RGB, width: int, height: int, floor_y: float) -> np.ndarray:
    """A wall with a soft vertical gradient, a baseboard and a wooden floor; deterministic."""
    rng = np.random.default_rng(7)
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
    # a framed picture and a door on the wall, for texture the detector sees in real rooms
    cv2.rectangle(image, (int(width * 0.07), int(height * 0.12)), (int(width * 0.22), int(height * 0.34)), (90, 110, 120), -1)  # fmt: skip
    cv2.rectangle(image, (int(width * 0.08), int(height * 0.135)), (int(width * 0.21), int(height * 0.325)), (170, 190, 200), -1)  # fmt: skip
    cv2.rectangle(image, (int(width * 0.8), int(height * 0.18)), (int(width * 0.95), horizon), (176, 160, 140), -1)  # fmt: skip
    image += rng.normal(0.0, 3.0, image.shape).astype(np.float32)
    out = np.clip(image, 0, 255).astype(np.uint8)
    out.flags.writeable = False
    return out


# ---------------------------------------------------------------- the face


@lru_cache(maxsize=1)
def _photo() -> np.ndarray:
    image = cv2.imread(str(PHOTO), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read the face photo {PHOTO}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _paste_face(image: np.ndarray, anchors: np.ndarray) -> None:
    """Warp the photo's head so its eyes and mouth land on `anchors` (right eye, left eye, mouth)."""
    matrix = cv2.getAffineTransform(_PHOTO_ANCHORS, anchors.astype(np.float32))
    outline = _PHOTO_HEAD @ matrix[:, :2].T + matrix[:, 2]
    height, width = image.shape[:2]
    x0, y0 = np.floor(outline.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(outline.max(axis=0)).astype(int) + 2
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    local = matrix.copy()
    local[:, 2] -= (x0, y0)
    patch = cv2.warpAffine(
        _photo(), local, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [_fixed(outline - (x0, y0))], 255, cv2.LINE_AA, _SUBPIXEL_BITS)
    alpha = (mask.astype(np.float32) / 255.0)[..., None]
    region = image[y0:y1, x0:x1]
    region[...] = (patch * alpha + region * (1 - alpha)).astype(np.uint8)


def _profile_head(
    image: np.ndarray,
    centre: np.ndarray,
    radius: float,
    forward: np.ndarray,
    up: np.ndarray,
    keypoints: np.ndarray,
    near: str,
    look: Look,
) -> None:
    """A head seen from the side: hair at the back and top, face, ear, eye, nose (pixels)."""
    _capsule(image, centre - forward * radius * 0.15, centre, radius * 1.02, radius, look.hair)
    face_centre = centre + forward * radius * 0.28 - up * radius * 0.22
    _capsule(image, face_centre, face_centre - up * radius * 0.25, radius * 0.74, radius * 0.7, look.skin)  # fmt: skip
    hair_front = centre + up * radius * 0.55 + forward * radius * 0.25
    _capsule(image, centre + up * radius * 0.4 - forward * radius * 0.3, hair_front, radius * 0.62, radius * 0.42, look.hair)  # fmt: skip
    nose = keypoints[K["nose"], :2]
    _capsule(image, nose - forward * radius * 0.35 + up * radius * 0.2, nose + forward * radius * 0.12, radius * 0.12, radius * 0.09, _shade(look.skin, 0.92))  # fmt: skip
    ear = keypoints[K[f"{near}_ear"], :2]
    _capsule(image, ear + up * radius * 0.12, ear - up * radius * 0.12, radius * 0.2, radius * 0.16, _shade(look.skin, 0.85))  # fmt: skip
    eye = keypoints[K[f"{near}_eye"], :2]
    _capsule(image, eye, eye + forward * radius * 0.08, radius * 0.07, radius * 0.07, (60, 40, 30))
    brow = eye + up * radius * 0.2
    _capsule(image, brow - forward * radius * 0.1, brow + forward * radius * 0.1, radius * 0.05, radius * 0.04, _shade(look.hair, 0.6))  # fmt: skip
    mouth = keypoints[K[f"mouth_{near}"], :2]
    _capsule(image, mouth, mouth + forward * radius * 0.16, radius * 0.045, radius * 0.045, (170, 80, 80))  # fmt: skip


# ---------------------------------------------------------------- the body


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else v


# torso cross sections: (height along the torso as a share of it, half width, half depth), in
# body heights; the first three are the pants, the rest the shirt
_PELVIS = ((-0.14, 0.10, 0.075), (0.0, 0.118, 0.085), (0.3, 0.104, 0.072))
_CHEST = ((0.26, 0.104, 0.072), (0.6, 0.112, 0.08), (0.86, 0.128, 0.072), (1.0, 0.112, 0.05))
_RING = np.linspace(0.0, 2 * math.pi, 16, endpoint=False)


def _torso_hulls(
    points: np.ndarray,
    view: ViewPoint,
    place: _Placement,
    sections: tuple[tuple[float, float, float], ...],
) -> list[np.ndarray]:
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
    for a, b in zip(rings, rings[1:]):
        hull = cv2.convexHull(np.concatenate([a, b]).astype(np.float32))
        hulls.append(hull.reshape(-1, 2).astype(np.float64))
    return hulls


def render_frame(
    points: np.ndarray, view: ViewPoint, look: Look, width: int = 640, height: int = 480
) -> np.ndarray:
    """(H, W, 3) RGB uint8 of the person with skeleton `points` ((33, 3) body heights)."""
    image = _background(look.wall, look.floor, width, height, look.floor_y).copy()
    camera_points = view.to_camera(points)
    place = _placement(camera_points, look, width, height)
    keypoints = camera_points.copy()
    keypoints[:, :2] = camera_points[:, :2] * place.scale + place.offset
    px = keypoints[:, :2]
    depth = keypoints[:, 2]
    s = place.scale

    def at(name: str) -> np.ndarray:
        return px[K[name]]

    # a soft contact shadow on the floor
    lowest = float(px[:, 1].max()) + 0.03 * s
    xs = px[:, 0]
    centre = (int((xs.min() + xs.max()) / 2), int(lowest))
    axes = (int((xs.max() - xs.min()) / 2 + 0.08 * s), int(0.025 * s) + 1)
    shadow = image.copy()
    cv2.ellipse(shadow, centre, axes, 0, 0, 360, _shade(look.floor, 0.55), -1, cv2.LINE_AA)
    cv2.addWeighted(shadow, 0.5, image, 0.5, 0, image)

    # (depth, tie-break, draw) drawn far to near
    parts: list[tuple[float, int, object]] = []

    def limb(a: str, b: str, ra: float, rb: float, colour: RGB, order: int, sleeve: float = 0.0):
        za = float(depth[K[a]] + depth[K[b]]) / 2

        def draw() -> None:
            pa, pb = at(a), at(b)
            _shaded_capsule(image, pa, pb, ra * s, rb * s, colour)
            if sleeve:
                end = pa + (pb - pa) * sleeve
                _shaded_capsule(image, pa, end, ra * s * 1.12, (ra + (rb - ra) * sleeve) * s * 1.12, look.shirt)  # fmt: skip

        parts.append((za, order, draw))

    arm_colour = look.skin if look.short_sleeves else look.shirt
    for side in ("left", "right"):
        limb(f"{side}_hip", f"{side}_knee", 0.068, 0.05, look.pants, 0)
        limb(f"{side}_knee", f"{side}_ankle", 0.05, 0.036, look.pants, 1)
        limb(f"{side}_heel", f"{side}_foot_index", 0.03, 0.024, look.shoes, 2)
        limb(f"{side}_shoulder", f"{side}_elbow", 0.04, 0.033, arm_colour, 3, 0.55 if look.short_sleeves else 0.0)  # fmt: skip
        limb(f"{side}_elbow", f"{side}_wrist", 0.033, 0.025, arm_colour, 4)
        hand = (px[K[f"{side}_index"]] + px[K[f"{side}_pinky"]]) / 2
        wrist_key = f"{side}_wrist"

        def draw_hand(wrist_key: str = wrist_key, hand: np.ndarray = hand) -> None:
            _shaded_capsule(image, at(wrist_key), hand, 0.026 * s, 0.022 * s, look.skin)

        parts.append((float(depth[K[wrist_key]]), 5, draw_hand))

    torso_depth = float(depth[[K["left_hip"], K["right_hip"], K["left_shoulder"], K["right_shoulder"]]].mean())  # fmt: skip
    # arms hanging beside the torso, at its depth, are drawn over it
    parts.append((torso_depth + 0.02, -1, lambda: _shaded_hulls(image, _torso_hulls(points, view, place, _PELVIS), look.pants)))  # fmt: skip
    parts.append((torso_depth + 0.02, 0, lambda: _shaded_hulls(image, _torso_hulls(points, view, place, _CHEST), look.shirt)))  # fmt: skip

    # the head: an ellipsoid around the FK head point, seen as a disc
    shoulder_c = (at("left_shoulder") + at("right_shoulder")) / 2
    ear_mid = (at("left_ear") + at("right_ear")) / 2
    eye_mid = (at("left_eye") + at("right_eye")) / 2
    head_world = (points[K["left_ear"]] + points[K["right_ear"]]) / 2
    neck_base = shoulder_c + (ear_mid - shoulder_c) * 0.15
    head_depth = float(view.to_camera(head_world[None])[0, 2])
    up_world = _unit(points[K["left_eye"]] + points[K["right_eye"]] - points[K["mouth_left"]] - points[K["mouth_right"]])  # fmt: skip
    nose_world = points[K["nose"]]
    forward_world = _unit(nose_world - head_world - up_world * float((nose_world - head_world) @ up_world))  # fmt: skip
    forward_cam = view.to_camera(forward_world[None])[0]
    up_cam = view.to_camera(up_world[None])[0]
    facing = -float(forward_cam[2])  # 1 when the face looks into the camera

    def draw_neck() -> None:
        _shaded_capsule(image, neck_base, ear_mid - (eye_mid - ear_mid) * 0.2, 0.034 * s, 0.03 * s, look.skin)  # fmt: skip

    parts.append((torso_depth + 0.03, 0, draw_neck))

    def draw_head() -> None:
        radius = 0.068 * s
        if facing > 0.5:
            mouth = (at("mouth_left") + at("mouth_right")) / 2
            _paste_face(image, np.array([at("right_eye"), at("left_eye"), mouth]))
            return
        centre = ear_mid + up_cam[:2] * 0.012 * s
        if facing < -0.5:
            _shaded_capsule(image, centre, centre, radius, radius, look.hair)
            return
        near = "left" if depth[K["left_ear"]] < depth[K["right_ear"]] else "right"
        _profile_head(image, centre, radius, _unit(forward_cam[:2]), _unit(up_cam[:2]), keypoints, near, look)  # fmt: skip

    parts.append((head_depth - 0.05, 6, draw_head))

    parts.sort(key=lambda part: (-part[0], part[1]))
    for _, _, draw in parts:
        draw()  # type: ignore[operator]
    return image

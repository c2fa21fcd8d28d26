"""A station whose truth is known, for tests and the benchmark: pinhole cameras around the
synthetic person (`komi_rtc.synthetic`), the person in metres, and both the person and the
calibration board rendered through each camera.

World frame: metres, origin on the floor between the ankles, X to the person's left, Y up,
Z the way the person faces (right-handed). The skeleton's own axes (x left, y down, z
forward, body heights) become X = x, Y = -y, Z = z times the body height, with the body
shifted so the ankles' midpoint stands over the origin and the soles (the renderer's: 0.035
body heights below the lowest keypoint) on the floor.

The renderer draws orthographically; `render_person` makes it draw a perspective view by
handing it, instead of the skeleton, the keypoints already projected through the camera
(pixels, with their depth): the joints in the picture are exactly the perspective
projections, and only the thickness of the limbs ignores perspective (one scale per frame,
the hips').
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from ..protocol import KEYPOINT_INDEX as K
from ..synthetic import Look, ViewPoint, render_frame, render_room
from .board import SQUARES, board_image
from .cameras import CameraModel, look_at

SOLE = 0.035  # body heights between the lowest keypoint and the floor, as the renderer draws
UP = np.array([0.0, 1.0, 0.0])


def camera_ring(
    yaws_deg: dict[str, float],
    size: tuple[int, int] = (1280, 720),
    distance_m: float = 3.3,
    height_m: float = 1.1,
    target: tuple[float, float, float] = (0.0, 0.85, 0.0),
    horizontal_fov_deg: float | dict[str, float] = 60.0,
) -> dict[str, CameraModel]:
    """Cameras `distance_m` from the origin, `height_m` above the floor, looking at `target`;
    yaw 0 stands in front of the person (+Z), 90 at their left (+X), -90 at their right."""
    cameras = {}
    for camera_id, yaw in yaws_deg.items():
        a = math.radians(yaw)
        centre = np.array([distance_m * math.sin(a), height_m, distance_m * math.cos(a)])
        R, t = look_at(centre, np.asarray(target, np.float64), UP)
        fov = (
            horizontal_fov_deg[camera_id]
            if isinstance(horizontal_fov_deg, dict)
            else horizontal_fov_deg
        )
        focal = 0.5 * size[0] / math.tan(math.radians(fov) / 2)
        Kmat = np.array([[focal, 0, size[0] / 2], [0, focal, size[1] / 2], [0, 0, 1.0]])
        cameras[camera_id] = CameraModel(Kmat, np.zeros(5), R, t, size)
    return cameras


def person_in_world(skeleton: np.ndarray, body_height_m: float) -> np.ndarray:
    """(33, 3) skeleton points (body heights, from `forward_kinematics`) -> world metres."""
    world = skeleton * np.array([1.0, -1.0, 1.0]) * body_height_m
    ankles = (world[K["left_ankle"]] + world[K["right_ankle"]]) / 2
    shift = np.array([-ankles[0], SOLE * body_height_m - world[:, 1].min(), -ankles[2]])
    return world + shift


@dataclass(frozen=True)
class RenderedView:
    """A frame (RGB uint8) and the true pixels (33, 2) of its keypoints."""

    image: np.ndarray
    keypoints: np.ndarray


def render_person(
    world_points: np.ndarray, camera: CameraModel, look: Look, body_height_m: float
) -> RenderedView:
    """The person whose keypoints are `world_points` (33, 3 metres) seen by `camera`."""
    width, height = camera.size
    pixels = camera.project(world_points)
    depth = camera.depth(world_points)
    hips = [K["left_hip"], K["right_hip"]]
    # pixels per body height at the hips' depth: the scale limbs and trunk are drawn at
    scale = camera.K[0, 0] * body_height_m / float(depth[hips].mean())
    hip_x = float(pixels[hips, 0].mean())
    lowest = float(pixels[:, 1].max())
    # ViewPoint(0) draws (x, y) and uses -z as depth; the renderer's placement puts the hips
    # at centre_x and the lowest point SOLE above floor_y
    fake = np.column_stack(
        [(pixels[:, 0] - hip_x) / scale, (pixels[:, 1] - lowest) / scale, -depth / body_height_m]
    )
    placed = replace(
        look,
        body_height=scale / height,
        centre_x=hip_x / width,
        floor_y=(lowest + SOLE * scale) / height,
    )
    image = render_frame(fake, ViewPoint(0.0), placed, width, height)
    return RenderedView(image, pixels)


def board_pose(
    centre: np.ndarray,
    facing_yaw_deg: float,
    pitch_deg: float,
    roll_deg: float,
    square_length_m: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(R, t) world <- board of a board whose printed face looks along yaw (0: +Z, 90: +X)
    tilted up by `pitch_deg`, turned in its plane by `roll_deg`, centred at `centre`."""
    a, p = math.radians(facing_yaw_deg), math.radians(pitch_deg)
    normal = np.array([math.sin(a) * math.cos(p), math.sin(p), math.cos(a) * math.cos(p)])
    z = -normal
    y = -UP - z * float(-UP @ z)
    y /= np.linalg.norm(y)
    x = np.cross(y, z)
    r = math.radians(roll_deg)
    x, y = math.cos(r) * x + math.sin(r) * y, -math.sin(r) * x + math.cos(r) * y
    R = np.column_stack([x, y, z])
    half = np.array([SQUARES[0], SQUARES[1], 0.0]) * square_length_m / 2
    return R, np.asarray(centre, np.float64) - R @ half


def render_board(
    camera: CameraModel,
    pose: tuple[np.ndarray, np.ndarray],
    square_length_m: float,
    background_rgb: np.ndarray,
    rng: np.random.Generator,
    noise: float = 2.0,
) -> np.ndarray | None:
    """The board at `pose` (world <- board) in `camera`'s frame over `background_rgb`, as BGR;
    None when the camera sees its back or it is not wholly in front of the camera. Drawn at
    twice the resolution and reduced (anti-aliased), with sensor noise."""
    R_b, t_b = pose
    centre = t_b + R_b @ (np.array([SQUARES[0], SQUARES[1], 0.0]) * square_length_m / 2)
    if (camera.centre - centre) @ (-R_b[:, 2]) <= 0:
        return None
    p = 100
    board = board_image(p)
    margin = p // 2
    corners_px = np.array(
        [[0, 0], [board.shape[1], 0], [board.shape[1], board.shape[0]], [0, board.shape[0]]],
        np.float64,
    )
    corners_m = np.column_stack([(corners_px - margin) * square_length_m / p, np.zeros(4)])
    world = corners_m @ R_b.T + t_b
    if (camera.depth(world) <= 0.05).any():
        return None
    width, height = camera.size
    image_corners = camera.project(world)
    # draw only the board's box, at twice the resolution, then reduce it (anti-aliased)
    x0, y0 = (max(0, int(v) - 2) for v in image_corners.min(axis=0))
    x1 = min(width, int(image_corners[:, 0].max()) + 3)
    y1 = min(height, int(image_corners[:, 1].max()) + 3)
    image = cv2.cvtColor(background_rgb, cv2.COLOR_RGB2BGR).astype(np.float32)
    if x1 > x0 and y1 > y0:
        local = ((image_corners - (x0, y0)) * 2).astype(np.float32)
        H = cv2.getPerspectiveTransform(corners_px.astype(np.float32), local)
        big = (2 * (x1 - x0), 2 * (y1 - y0))
        warped = cv2.warpPerspective(board, H, big, flags=cv2.INTER_LINEAR)
        mask = cv2.warpPerspective(np.full_like(board, 255), H, big, flags=cv2.INTER_LINEAR)
        shade = 0.85  # a board in room light is not paper white
        ink = cv2.resize(
            warped.astype(np.float32) * shade, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA
        )
        alpha = cv2.resize(
            mask.astype(np.float32) / 255.0, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA
        )[..., None]
        region = image[y0:y1, x0:x1]
        region[...] = region * (1 - alpha) + ink[..., None] * alpha
    small = image + rng.normal(0.0, noise, image.shape).astype(np.float32)
    return np.clip(small, 0, 255).astype(np.uint8)


def board_poses(
    count: int, rng: np.random.Generator, square_length_m: float, facing_yaw_deg: float = 45.0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Board poses someone walking a board around the middle of the room would show: centre
    within 0.4 m of (0, 1.1, 0), facing `facing_yaw_deg` +-30, pitched +-25, rolled +-20."""
    poses = []
    for _ in range(count):
        centre = np.array([0.0, 1.1, 0.0]) + rng.uniform(-0.4, 0.4, 3) * np.array([1, 0.8, 1])
        poses.append(
            board_pose(
                centre,
                facing_yaw_deg + rng.uniform(-30, 30),
                rng.uniform(-25, 25),
                rng.uniform(-20, 20),
                square_length_m,
            )
        )
    return poses


def room(size: tuple[int, int]) -> np.ndarray:
    """An empty room (RGB) to hold the board in front of."""
    return render_room(Look(), size[0], size[1])

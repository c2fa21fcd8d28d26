"""A station calibrated from the ChArUco board shown to its cameras.

Per camera, OpenCV's calibrateCamera gives the intrinsics (focal length, k1 and k2; the
principal point is held at the frame centre and pixels square, which a handful of hand-held
views cannot pin down better) and the board's pose in each view. Cameras that saw the same
board pose are then placed relative to each other, starting from the reference camera
(the first), and a bundle adjustment over every camera pose, board pose, focal length, k1 and
k2 makes the whole consistent.

World frame: the reference camera's (x right, y down, z forward, metres); the square size
gives the scale. `anchor_to_person` (body_frame.py) moves it onto the floor under a person.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
from scipy.optimize import least_squares

from .board import DEFAULT_SQUARE_M, MIN_CORNERS, BoardView
from .cameras import (
    CalibrationError,
    CameraModel,
    StationCalibration,
    intrinsics_guess,
    rotation_mean,
)

logger = logging.getLogger(__name__)

_FLAGS = (
    cv2.CALIB_USE_INTRINSIC_GUESS
    | cv2.CALIB_FIX_PRINCIPAL_POINT
    | cv2.CALIB_FIX_ASPECT_RATIO
    | cv2.CALIB_ZERO_TANGENT_DIST
    | cv2.CALIB_FIX_K3
)
MIN_VIEWS = 4  # board views a camera needs for its intrinsics


def _pose_matrix(rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(np.asarray(rvec, np.float64).reshape(3))[0]
    T[:3, 3] = np.asarray(tvec, np.float64).reshape(3)
    return T


def _pose_vector(T: np.ndarray) -> np.ndarray:
    return np.concatenate([cv2.Rodrigues(T[:3, :3])[0].ravel(), T[:3, 3]])


def _mean_pose(poses: list[np.ndarray]) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = rotation_mean([p[:3, :3] for p in poses])
    T[:3, 3] = np.median([p[:3, 3] for p in poses], axis=0)
    return T


def calibrate_from_board(
    views: dict[str, list[BoardView | None]],
    image_sizes: dict[str, tuple[int, int]],
    square_length_m: float = DEFAULT_SQUARE_M,
) -> StationCalibration:
    """Calibrate the station from board views. `views[camera_id][k]` is that camera's
    detection of the k-th board pose (the lists are aligned by capture time; None where
    the camera did not see the board). Every camera needs `MIN_VIEWS` views, and at least
    one board pose shared with a camera already placed. Raises CalibrationError otherwise.
    """
    camera_ids = list(views)
    if len(camera_ids) < 2:
        raise CalibrationError("a station needs at least two cameras")
    intrinsics: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    board_in_camera: dict[str, dict[int, np.ndarray]] = {}  # camera <- board, per pose
    observations: list[tuple[str, int, np.ndarray, np.ndarray]] = []
    details: dict[str, dict[str, float]] = {}
    for camera_id in camera_ids:
        usable = [
            (k, v)
            for k, v in enumerate(views[camera_id])
            if v is not None and len(v.ids) >= MIN_CORNERS
        ]
        if len(usable) < MIN_VIEWS:
            raise CalibrationError(
                f"camera {camera_id}: the board was found in {len(usable)} views, "
                f"{MIN_VIEWS} are needed"
            )
        size = (int(image_sizes[camera_id][0]), int(image_sizes[camera_id][1]))
        objects = [v.object_points(square_length_m).astype(np.float32) for _, v in usable]
        images = [v.corners.astype(np.float32) for _, v in usable]
        rms, K, dist, rvecs, tvecs = cv2.calibrateCamera(
            objects, images, size, intrinsics_guess(size), np.zeros(5), flags=_FLAGS
        )
        intrinsics[camera_id] = (K, dist.ravel())
        board_in_camera[camera_id] = {
            k: _pose_matrix(r, t) for (k, _), r, t in zip(usable, rvecs, tvecs, strict=True)
        }
        for (k, v), obj in zip(usable, objects, strict=True):
            observations.append((camera_id, k, obj.astype(np.float64), v.corners))
        details[camera_id] = {"views": len(usable), "intrinsics_rms_px": round(float(rms), 4)}
        logger.info(
            "camera %s: intrinsics from %d board views, rms %.3f px", camera_id, len(usable), rms
        )

    # place cameras (world <- camera) and board poses (world <- board), from the reference
    reference = camera_ids[0]
    world_from_camera: dict[str, np.ndarray] = {reference: np.eye(4)}
    world_from_board: dict[int, np.ndarray] = dict(board_in_camera[reference])
    progress = True
    while progress and len(world_from_camera) < len(camera_ids):
        progress = False
        for camera_id in camera_ids:
            if camera_id in world_from_camera:
                continue
            shared = [k for k in board_in_camera[camera_id] if k in world_from_board]
            if not shared:
                continue
            estimates = [
                world_from_board[k] @ np.linalg.inv(board_in_camera[camera_id][k]) for k in shared
            ]
            world_from_camera[camera_id] = _mean_pose(estimates)
            for k, T in board_in_camera[camera_id].items():
                world_from_board.setdefault(k, world_from_camera[camera_id] @ T)
            progress = True
    missing = [c for c in camera_ids if c not in world_from_camera]
    if missing:
        raise CalibrationError(
            f"cameras {missing} never saw the board at the same time as the others"
        )

    # bundle adjustment: camera poses (not the reference's) and board poses
    movable = [c for c in camera_ids if c != reference]
    boards = sorted(world_from_board)
    # then, per camera, log focal scale, k1 and k2: the board poses seen by several cameras
    # constrain the focal lengths better than each camera's views alone
    x0 = np.concatenate(
        [_pose_vector(np.linalg.inv(world_from_camera[c])) for c in movable]
        + [_pose_vector(world_from_board[k]) for k in boards]
        + [np.array([0.0, intrinsics[c][1][0], intrinsics[c][1][1]]) for c in camera_ids]
    )
    camera_slot = {c: i for i, c in enumerate(movable)}
    board_slot = {k: len(movable) + i for i, k in enumerate(boards)}
    lens_start = 6 * (len(movable) + len(boards))
    lens_slot = {c: lens_start + 3 * i for i, c in enumerate(camera_ids)}

    def lens(x: np.ndarray, camera_id: str) -> tuple[np.ndarray, np.ndarray]:
        K, dist = intrinsics[camera_id]
        s = lens_slot[camera_id]
        K = K.copy()
        K[0, 0] *= np.exp(x[s])
        K[1, 1] *= np.exp(x[s])
        dist = dist.copy()
        dist[:2] = x[s + 1 : s + 3]
        return K, dist

    def residuals(x: np.ndarray) -> np.ndarray:
        out = []
        for camera_id, k, obj, corners in observations:
            if camera_id == reference:
                r_c, t_c = np.zeros(3), np.zeros(3)
            else:
                s = 6 * camera_slot[camera_id]
                r_c, t_c = x[s : s + 3], x[s + 3 : s + 6]
            s = 6 * board_slot[k]
            r, t = cv2.composeRT(x[s : s + 3], x[s + 3 : s + 6], r_c, t_c)[:2]
            K, dist = lens(x, camera_id)
            projected, _ = cv2.projectPoints(obj, r, t, K, dist)
            out.append((projected.reshape(-1, 2) - corners).ravel())
        return np.concatenate(out)

    fit = least_squares(residuals, x0, loss="soft_l1", f_scale=1.0, x_scale="jac")
    errors = np.linalg.norm(fit.fun.reshape(-1, 2), axis=1)
    cameras = {}
    for camera_id in camera_ids:
        K, dist = lens(fit.x, camera_id)
        if camera_id == reference:
            R, t = np.eye(3), np.zeros(3)
        else:
            s = 6 * camera_slot[camera_id]
            R, t = cv2.Rodrigues(fit.x[s : s + 3])[0], fit.x[s + 3 : s + 6].copy()
        width, height = image_sizes[camera_id]
        cameras[camera_id] = CameraModel(K, dist, R, t, (int(width), int(height)))
    rms = float(np.sqrt(np.mean(errors**2)))
    return StationCalibration(
        cameras,
        "board",
        rms,
        f"camera {reference}: x right, y down, z forward (metres)",
        {
            "cameras": details,
            "board_poses": len(boards),
            "square_length_m": square_length_m,
            "corners": int(errors.size),
        },
    )

"""The pinhole camera model of a station, and a station's calibration as JSON.

OpenCV's conventions throughout: a world point X (metres) is `R @ X + t` in the camera's
frame (x right, y down, z forward), and lands on pixel `K @ (x/z, y/z, 1)` after the lens
distortion `dist` (k1, k2, p1, p2, k3). Pixels are those of the full frame the camera sends
(`size` = width, height).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np

METHODS = ("board", "self", "file")  # ChArUco, the person's keypoints, imported
MAX_FRAME_SIDE = 16384
ASPECT_TOLERANCE = 0.01  # a received frame's aspect ratio against the calibrated one


@dataclass(frozen=True)
class CameraModel:
    """One calibrated camera: intrinsics `K` (3x3, pixels), `dist` (5), extrinsics `R`
    (3x3), `t` (3, metres) from the station's world frame, and the frame `size` (w, h)."""

    K: np.ndarray
    dist: np.ndarray
    R: np.ndarray
    t: np.ndarray
    size: tuple[int, int]

    @property
    def centre(self) -> np.ndarray:
        """Where the camera is, in world coordinates (metres)."""
        return -self.R.T @ self.t

    @property
    def projection(self) -> np.ndarray:
        """The 3x4 matrix K [R | t] (ignores distortion)."""
        return self.K @ np.hstack([self.R, self.t.reshape(3, 1)])

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world points (metres) -> (N, 2) pixels, with lens distortion."""
        points = np.asarray(points, np.float64).reshape(-1, 3)
        rvec, _ = cv2.Rodrigues(self.R)
        pixels, _ = cv2.projectPoints(points, rvec, self.t.astype(np.float64), self.K, self.dist)
        return pixels.reshape(-1, 2)

    def depth(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world points -> (N,) distance along the optical axis (metres; <= 0 behind)."""
        return (np.asarray(points, np.float64).reshape(-1, 3) @ self.R.T + self.t)[:, 2]

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 2) pixels -> (N, 2) undistorted normalized image coordinates (x/z, y/z)."""
        pixels = np.asarray(pixels, np.float64).reshape(-1, 1, 2)
        return cv2.undistortPoints(pixels, self.K, self.dist).reshape(-1, 2)

    def to_json(self) -> dict[str, Any]:
        return {
            "size": [int(self.size[0]), int(self.size[1])],
            "K": self.K.tolist(),
            "dist": self.dist.ravel().tolist(),
            "R": self.R.tolist(),
            "t": self.t.ravel().tolist(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CameraModel:
        """Raises KeyError or ValueError on a malformed camera."""
        K = np.asarray(data["K"], np.float64).reshape(3, 3)
        R = np.asarray(data["R"], np.float64).reshape(3, 3)
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-6):
            raise ValueError("R is not a rotation")
        dist = np.zeros(5)
        values = np.asarray(data.get("dist", []), np.float64).ravel()
        dist[: min(5, values.size)] = values[:5]
        width, height = (int(v) for v in data["size"])
        if not (0 < width <= MAX_FRAME_SIDE and 0 < height <= MAX_FRAME_SIDE):
            raise ValueError(f"size {width}x{height} is not a frame size")
        t = np.asarray(data["t"], np.float64).reshape(3)
        if not (np.isfinite(K).all() and np.isfinite(dist).all() and np.isfinite(t).all()):
            raise ValueError("K, dist and t must be finite numbers")
        return cls(K, dist, R, t, (width, height))

    def scaled_to(self, size: tuple[int, int]) -> CameraModel:
        """This camera as seen in frames of `size` (w, h) instead of its calibrated size:
        fx, cx scale with the width, fy, cy with the height (a phone sending 544x960 of
        a 1088x1920 sensor). Raises ValueError when the aspect ratio differs by over 1%
        (a crop, not a scale: the calibration does not hold)."""
        width, height = size
        if (width, height) == self.size:
            return self
        if width <= 0 or height <= 0:
            raise ValueError(f"frame size {width}x{height}")
        sx, sy = width / self.size[0], height / self.size[1]
        if abs(sx / sy - 1.0) > ASPECT_TOLERANCE:
            raise ValueError(
                f"frames of {width}x{height} do not have the aspect ratio of the calibrated "
                f"{self.size[0]}x{self.size[1]}"
            )
        K = self.K.copy()
        K[0, :] *= sx
        K[1, :] *= sy
        return replace(self, K=K, size=(width, height))


def intrinsics_guess(size: tuple[int, int], horizontal_fov_deg: float = 65.0) -> np.ndarray:
    """K for a frame `size` (w, h) with the principal point at the centre and square pixels.
    65 degrees is a typical webcam or phone camera (a Logitech C920 has 70.4, a phone's main
    camera 65 to 70)."""
    width, height = size
    focal = 0.5 * width / math.tan(math.radians(horizontal_fov_deg) / 2)
    return np.array([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])


def look_at(
    centre: np.ndarray, target: np.ndarray, up: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """R, t of a camera at `centre` looking at `target`, image up along world `up`."""
    forward = np.asarray(target, np.float64) - np.asarray(centre, np.float64)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(up, np.float64))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.vstack([right, down, forward])
    return R, -R @ np.asarray(centre, np.float64)


@dataclass(frozen=True)
class StationCalibration:
    """The cameras of one station in one world frame (metres).

    `method` is "board" (ChArUco), "self" (the person's own keypoints) or "file" (made
    elsewhere: a Pose2Sim/Anipose TOML file, a Qualisys export);
    `reprojection_error_px` the RMS reprojection error of the observations the fit kept;
    `world_frame` says where the world's origin and axes are; `details` holds figures of
    the fit (views used, inlier share, estimated stature...)."""

    cameras: dict[str, CameraModel]
    method: str
    reprojection_error_px: float
    world_frame: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "reprojection_error_px": round(float(self.reprojection_error_px), 4),
            "world_frame": self.world_frame,
            "details": self.details,
            "cameras": {camera_id: cam.to_json() for camera_id, cam in self.cameras.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StationCalibration:
        """Raises KeyError or ValueError on a malformed calibration."""
        cameras = {str(k): CameraModel.from_json(v) for k, v in data["cameras"].items()}
        if len(cameras) < 2:
            raise ValueError("a station calibration needs at least two cameras")
        method = str(data["method"])
        if method not in METHODS:
            raise ValueError(f"unknown calibration method {method!r}")
        return cls(
            cameras,
            method,
            float(data["reprojection_error_px"]),
            str(data.get("world_frame", "")),
            dict(data.get("details", {})),
        )

    def scaled_to(self, sizes: dict[str, tuple[int, int]]) -> StationCalibration:
        """The cameras as seen in the frames they send (`sizes`: camera id -> (w, h)); a
        camera not in `sizes` keeps its calibrated size. Raises ValueError (naming the
        camera) when a frame's aspect ratio differs from the calibrated one."""
        cameras = {}
        for camera_id, cam in self.cameras.items():
            try:
                cameras[camera_id] = cam.scaled_to(sizes.get(camera_id, cam.size))
            except ValueError as exc:
                raise ValueError(f"camera {camera_id}: {exc}") from None
        return replace(self, cameras=cameras)

    def transformed(
        self,
        rotation: np.ndarray,
        origin: np.ndarray,
        scale: float = 1.0,
        world_frame: str | None = None,
    ) -> StationCalibration:
        """The same cameras in a new world frame: a point X of the old frame is
        `rotation @ (scale * X - origin)` in the new one (`origin` in scaled old units)."""
        cameras = {}
        for camera_id, cam in self.cameras.items():
            R = cam.R @ rotation.T
            t = cam.R @ origin + scale * cam.t
            cameras[camera_id] = replace(cam, R=R, t=t)
        return replace(
            self,
            cameras=cameras,
            world_frame=self.world_frame if world_frame is None else world_frame,
        )


class CalibrationError(ValueError):
    """The views given cannot calibrate the station (too few, or cameras that share none)."""


def rotation_mean(rotations: list[np.ndarray]) -> np.ndarray:
    """The chordal L2 mean of rotation matrices (their sum projected back onto SO(3))."""
    u, _, vt = np.linalg.svd(np.sum(rotations, axis=0))
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt

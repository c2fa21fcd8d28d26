"""3-D keypoints from the 2-D keypoints of several calibrated cameras, with the views that
disagree left out.

Each joint is triangulated on its own (linear DLT in undistorted normalized coordinates,
each view's rows weighted by its confidence, then a few Gauss-Newton steps on the pixel
reprojection error). With three or more views, every pair of views proposes a point and the
largest set of views that agree with one (reprojection error within the gate) is kept: a
view where BlazePose put the joint elsewhere, or swapped left and right, is dropped instead
of dragging the point. A joint that fewer than two views agree on gets confidence 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from ..protocol import KEYPOINT_NAMES
from .cameras import CameraModel, StationCalibration

DEFAULT_GATE_PX = 20.0  # for 1280x720 frames; scale it with the frame size
DEFAULT_MIN_CONFIDENCE = 0.3


@dataclass(frozen=True)
class Triangulated:
    """One instant: `points` (33, 3) metres (0 where not triangulated), `confidence` (33,)
    (the mean confidence of the views kept, 0 where not triangulated), `error_px` (33,) the
    largest reprojection error among the views kept (inf where not triangulated) and
    `views` (33,) how many views were kept."""

    points: np.ndarray
    confidence: np.ndarray
    error_px: np.ndarray
    views: np.ndarray


def keypoint_columns(keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(33, 3) x, y, confidence or (33, 4) x, y, z, confidence (a BlazePose array) ->
    (pixels (33, 2), confidence (33,)); non-finite rows get confidence 0."""
    keypoints = np.asarray(keypoints, np.float64)
    if keypoints.ndim != 2 or keypoints.shape[1] not in (3, 4):
        raise ValueError(f"keypoints must be (N, 3) or (N, 4), not {keypoints.shape}")
    pixels = keypoints[:, :2].copy()
    confidence = keypoints[:, -1].copy()
    bad = ~np.isfinite(pixels).all(axis=1) | ~np.isfinite(confidence)
    confidence[bad] = 0.0
    pixels[bad] = 0.0
    return pixels, confidence


def project_fast(camera: CameraModel, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) world points -> (pixels (N, 2), depth (N,)), OpenCV's distortion model in numpy
    (cv2.projectPoints costs more in call overhead than in arithmetic for a few points)."""
    local = np.asarray(points, np.float64).reshape(-1, 3) @ camera.R.T + camera.t
    depth = local[:, 2]
    safe = np.where(np.abs(depth) < 1e-9, 1e-9, depth)
    x, y = local[:, 0] / safe, local[:, 1] / safe
    k1, k2, p1, p2, k3 = (float(v) for v in camera.dist[:5])
    if k1 or k2 or p1 or p2 or k3:
        r2 = x * x + y * y
        radial = 1 + k1 * r2 + k2 * r2 * r2 + k3 * r2 * r2 * r2
        x, y = (
            x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x),
            y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y,
        )
    K = camera.K
    pixels = np.stack([K[0, 0] * x + K[0, 1] * y + K[0, 2], K[1, 1] * y + K[1, 2]], axis=1)
    return pixels, depth


def triangulate_batch(
    poses: np.ndarray, normalized: np.ndarray, weights: np.ndarray, steps: int = 3
) -> np.ndarray:
    """Many points at once: `poses` (C, 3, 4) [R | t], `normalized` (C, P, 2) undistorted
    normalized coordinates, `weights` (C, P) (0 leaves a view out) -> (P, 3), nan where
    fewer than two views have weight. A linear DLT, then `steps` Gauss-Newton steps on the
    weighted normalized reprojection error (the DLT minimizes an algebraic one)."""
    rows = normalized[..., None] * poses[:, None, 2:3, :] - poses[:, None, :2, :]  # C,P,2,4
    rows = (rows * weights[:, :, None, None]).transpose(1, 0, 2, 3)
    count = rows.shape[0]
    _, _, vt = np.linalg.svd(rows.reshape(count, -1, 4))
    h = vt[:, -1]
    w = np.where(np.abs(h[:, 3]) < 1e-12, np.nan, h[:, 3])
    point = h[:, :3] / w[:, None]
    point[(weights > 0).sum(axis=0) < 2] = np.nan
    rotation, translation = poses[:, :, :3], poses[:, :, 3]
    target = normalized.transpose(1, 0, 2)  # P, C, 2
    weight = weights.T  # P, C
    for _ in range(steps):
        local = np.einsum("cij,kj->kci", rotation, point) + translation  # P, C, 3
        z = np.where(np.abs(local[..., 2]) < 1e-9, 1e-9, local[..., 2])
        residual = (local[..., :2] / z[..., None] - target) * weight[..., None]
        d = np.zeros(local.shape[:2] + (2, 3))
        d[..., 0, 0] = d[..., 1, 1] = 1 / z
        d[..., 0, 2] = -local[..., 0] / z**2
        d[..., 1, 2] = -local[..., 1] / z**2
        J = np.einsum("kcab,cbd->kcad", d, rotation) * weight[..., None, None]
        J, r = J.reshape(count, -1, 3), residual.reshape(count, -1)
        normal = np.einsum("kai,kaj->kij", J, J) + 1e-12 * np.eye(3)
        step = np.linalg.solve(normal, -np.einsum("kai,ka->ki", J, r)[..., None])[..., 0]
        point = np.where(np.isfinite(step).all(axis=1)[:, None], point + step, point)
    return point


def triangulate_points(
    calibration: StationCalibration,
    views: dict[str, np.ndarray],
    max_reprojection_px: float = DEFAULT_GATE_PX,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
) -> Triangulated:
    """Triangulate one instant. `views` maps a camera id of the calibration to its (N, 3)
    x, y (pixels), confidence (or an (N, 4) BlazePose array; N is 33); cameras the
    calibration does not know, and keypoints below `min_confidence`, are ignored. All
    joints are solved at once (batched numpy): about a millisecond for three cameras."""
    cameras = [calibration.cameras[cid] for cid in views if cid in calibration.cameras]
    ids = [cid for cid in views if cid in calibration.cameras]
    count = np.asarray(views[ids[0]]).shape[0] if ids else len(KEYPOINT_NAMES)
    points = np.zeros((count, 3))
    confidence = np.zeros(count)
    error = np.full(count, np.inf)
    used = np.zeros(count, np.int64)
    if len(cameras) < 2:
        return Triangulated(points, confidence, error, used)
    n_cams = len(cameras)
    pixels = np.zeros((n_cams, count, 2))
    conf = np.zeros((n_cams, count))
    normalized = np.zeros((n_cams, count, 2))
    for c, (camera_id, cam) in enumerate(zip(ids, cameras, strict=True)):
        pixels[c], conf[c] = keypoint_columns(views[camera_id])
        normalized[c] = cam.normalize(pixels[c])
    candidate = conf >= min_confidence  # (C, J)
    poses = np.stack([np.hstack([cam.R, cam.t.reshape(3, 1)]) for cam in cameras])  # (C, 3, 4)

    def solve(members: np.ndarray, steps: int = 0) -> np.ndarray:
        """(C, J) bool -> (J, 3) points from the member views of each joint."""
        return triangulate_batch(poses, normalized, conf * members, steps)

    def errors(point: np.ndarray) -> np.ndarray:
        """(J, 3) points -> (C, J) pixel errors, inf behind a camera or undefined."""
        out = np.full((n_cams, count), np.inf)
        finite = np.isfinite(point).all(axis=1)
        safe = np.where(finite[:, None], point, 0.0)
        for c, cam in enumerate(cameras):
            projected, depth = project_fast(cam, safe)
            e = np.linalg.norm(projected - pixels[c], axis=1)
            out[c] = np.where(finite & (depth > 0), e, np.inf)
        return out

    # each pair of views proposes a point; keep the largest set of views that agrees with one
    best = np.zeros((n_cams, count), bool)
    best_size = np.zeros(count, np.int64)
    best_sum = np.full(count, np.inf)
    for a, b in combinations(range(n_cams), 2):
        pair = np.zeros((n_cams, count), bool)
        pair[a], pair[b] = candidate[a], candidate[b]
        proposal = solve(pair)
        e = errors(proposal)
        members = candidate & (e <= max_reprojection_px)
        size = members.sum(axis=0)
        total = np.where(members, e, 0.0).sum(axis=0)
        better = (
            (pair.sum(axis=0) == 2)
            & (size >= 2)
            & ((size > best_size) | ((size == best_size) & (total < best_sum)))
        )
        best[:, better] = members[:, better]
        best_size[better], best_sum[better] = size[better], total[better]
    # solve with all agreeing views; while the worst view is beyond the gate, drop it
    members = best
    for _ in range(n_cams):
        active = members.sum(axis=0) >= 2
        point = solve(members, steps=3)
        e = np.where(members, errors(point), -1.0)
        worst = np.argmax(e, axis=0)
        failing = active & (e.max(axis=0) > max_reprojection_px)
        done = active & ~failing
        points[done] = point[done]
        used[done] = members[:, done].sum(axis=0)
        confidence[done] = (conf * members)[:, done].sum(axis=0) / used[done]
        error[done] = e.max(axis=0)[done]
        members = members & failing[None, :]
        members[worst[failing], np.nonzero(failing)[0]] = False
        if not failing.any():
            break
    return Triangulated(points, confidence, error, used)


def triangulate(
    calibration: StationCalibration,
    views: dict[str, np.ndarray],
    max_reprojection_px: float = DEFAULT_GATE_PX,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
) -> list[dict[str, Any]]:
    """The wire form of `triangulate_points`: always 33 keypoints in id order, `{"id",
    "name", "x", "y", "z", "confidence"}`, metres in the calibration's world frame (to 0.1
    mm), confidence to 1e-3; a joint fewer than two views agree on has confidence 0 and
    coordinates 0."""
    result = triangulate_points(calibration, views, max_reprojection_px, min_confidence)
    xyz = np.round(result.points, 4).tolist()
    conf = np.round(result.confidence, 3).tolist()
    return [
        {
            "id": i,
            "name": name,
            "x": xyz[i][0],
            "y": xyz[i][1],
            "z": xyz[i][2],
            "confidence": conf[i],
        }
        for i, name in enumerate(KEYPOINT_NAMES[: len(xyz)])
    ]

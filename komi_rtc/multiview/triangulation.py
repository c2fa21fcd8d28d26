"""3-D keypoints from the 2-D keypoints of several calibrated cameras, with the views that
disagree left out.

BlazePose sometimes labels a whole body mirrored (every joint is better explained by its
left/right twin: 40% of one view's frames on Pose2Sim's lab footage), so first each view's
mirrored labelling is tested against the other views and kept when they agree with it.
Then each joint is triangulated on its own (linear DLT in undistorted normalized
coordinates, each view's rows weighted by its confidence, then a few Gauss-Newton steps on
the pixel reprojection error) and gated as Pose2Sim does (David Pagnon et al.,
BSD-3-Clause): while a kept view misses the point by more than the gate and more than two
views remain, the view whose absence leaves the smallest mean error is dropped. A joint
that fewer than two views agree on gets confidence 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..protocol import KEYPOINT_INDEX, KEYPOINT_NAMES
from .cameras import CameraModel, StationCalibration

DEFAULT_GATE_PX = 20.0  # for 1280x720 frames; scale it with the frame size
DEFAULT_MIN_CONFIDENCE = 0.3
# the gate a station uses, a share of the frame's diagonal: 22 px at 544x960, 29 at 720p.
# On the lab footage (BlazePose, 544x960) 15 px dropped good views (reprojection p95 of the
# views 27-28 px), 22-28 px kept the p95 at 11-21 px and the bone-length CV at 0.035-0.038
GATE_SHARE_OF_DIAGONAL = 0.02


def gate_px(sizes: list[tuple[int, int]]) -> float:
    """The reprojection gate (pixels) for views of these frame sizes (w, h)."""
    diagonals = [math.hypot(w, h) for w, h in sizes] or [math.hypot(1280, 720)]
    return GATE_SHARE_OF_DIAGONAL * sum(diagonals) / len(diagonals)


# a view is taken mirrored when its mirror's median error is under this share of its own:
# on the lab footage a mirrored view's own labels miss by 5-20 times what its mirror does
MIRROR_RATIO = 0.5
MIRROR_TEST_DROPPED = 4  # left/right joints that lost a view before views are tested


def _mirror_order() -> list[int]:
    """Keypoint index -> the index of its left/right twin (itself on the midline)."""
    order = []
    for name in KEYPOINT_NAMES:
        if name.startswith("left_"):
            twin = "right_" + name[5:]
        elif name.startswith("right_"):
            twin = "left_" + name[6:]
        else:
            twin = name.replace("_left", "_@").replace("_right", "_left").replace("_@", "_right")
        order.append(KEYPOINT_INDEX.get(twin, KEYPOINT_INDEX[name]))
    return order


MIRROR = _mirror_order()
SIDED = np.array([i != j for i, j in enumerate(MIRROR)])  # the left/right joints


@dataclass(frozen=True)
class Triangulated:
    """One instant: `points` (33, 3) metres (0 where not triangulated), `confidence` (33,)
    (the mean confidence of the views kept, 0 where not triangulated), `error_px` (33,) the
    largest reprojection error among the views kept (inf where not triangulated) and
    `views` (33,) how many views were kept; `mirrored` the camera ids whose labelling was
    taken mirrored (left and right swapped) because the other views agreed with that."""

    points: np.ndarray
    confidence: np.ndarray
    error_px: np.ndarray
    views: np.ndarray
    mirrored: tuple[str, ...] = ()


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


def mirrored_keypoints(keypoints: np.ndarray) -> np.ndarray:
    """A view's keypoints with every left/right pair swapped (BlazePose's labelling of a
    person it took for facing the other way)."""
    keypoints = np.asarray(keypoints)
    if keypoints.shape[0] != len(MIRROR):
        return keypoints
    return keypoints[MIRROR]


def triangulate_points(
    calibration: StationCalibration,
    views: dict[str, np.ndarray],
    max_reprojection_px: float = DEFAULT_GATE_PX,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    test_mirrored: bool = True,
    previous: np.ndarray | None = None,
) -> Triangulated:
    """Triangulate one instant. `views` maps a camera id of the calibration to its (N, 3)
    x, y (pixels), confidence (or an (N, 4) BlazePose array; N is 33); cameras the
    calibration does not know, and keypoints below `min_confidence`, are ignored.
    `test_mirrored`: first test each view's whole mirrored labelling against the other
    views and keep whichever agrees (`Triangulated.mirrored` names the views taken
    mirrored). `previous`: a 3-D pose of a moment ago ((33, 3) or (33, 4) with confidence),
    which tells two views' labellings apart (see `_two_views`). All joints are solved at
    once (batched numpy): a few milliseconds."""
    ids = [cid for cid in views if cid in calibration.cameras]
    cameras = [calibration.cameras[cid] for cid in ids]
    count = np.asarray(views[ids[0]]).shape[0] if ids else len(KEYPOINT_NAMES)
    if len(cameras) < 2:
        return _nothing(count)
    n_cams = len(cameras)
    pixels = np.zeros((n_cams, count, 2))
    conf = np.zeros((n_cams, count))
    for c, camera_id in enumerate(ids):
        pixels[c], conf[c] = keypoint_columns(views[camera_id])
    result = _triangulate_gated(cameras, pixels, conf, max_reprojection_px, min_confidence)
    if not test_mirrored or count != len(MIRROR):
        return result
    if n_cams == 2 and previous is not None:
        return _two_views(
            cameras, ids, pixels, conf, result, max_reprojection_px, min_confidence, previous
        )
    return _mirror_tested(cameras, ids, pixels, conf, result, max_reprojection_px, min_confidence)


def _mirror_tested(
    cameras: list[CameraModel],
    ids: list[str],
    pixels: np.ndarray,
    conf: np.ndarray,
    result: Triangulated,
    max_reprojection_px: float,
    min_confidence: float,
) -> Triangulated:
    # the mirror test costs several triangulations: only when views were dropped from
    # several left/right joints (the gate alone may drop a good view instead of the
    # mirrored one: two views cannot tell a mirror, so the one left agrees either way).
    # Flips the mirrored views of `pixels` and `conf` in place.
    offered = (conf >= min_confidence).sum(axis=0)
    if int((SIDED & (result.views < offered)).sum()) < MIRROR_TEST_DROPPED:
        return result
    mirrored = _mirrored_views(cameras, pixels, conf, max_reprojection_px, min_confidence)
    if not mirrored:
        return result
    for c in mirrored:
        pixels[c], conf[c] = pixels[c][MIRROR], conf[c][MIRROR]
    result = _triangulate_gated(cameras, pixels, conf, max_reprojection_px, min_confidence)
    return replace(result, mirrored=tuple(ids[c] for c in mirrored))


def _two_views(
    cameras: list[CameraModel],
    ids: list[str],
    pixels: np.ndarray,
    conf: np.ndarray,
    plain: Triangulated,
    max_reprojection_px: float,
    min_confidence: float,
    previous: np.ndarray,
) -> Triangulated:
    """Two views cannot tell a whole-body mirrored labelling from the right one: flipping
    one view or the other gives the same points with left and right swapped, and two views
    close together pass the mismatched joints through the gate (a few centimetres off). With
    `previous` (a pose of a moment ago), the views as labelled are compared with one view
    flipped: the geometry whose left/right joints reproject closer is kept (the mismatched
    joints miss by more than keypoint noise), and of its two labellings, the one that
    continues `previous` (left and right are decimetres apart) wins. `plain`: the views
    triangulated as labelled. Without a usable `previous` (a flip would be a guess), the
    mirror test's result stands."""
    before = np.asarray(previous, np.float64)
    known = np.isfinite(before[:, :3]).all(axis=1)
    if before.shape[1] > 3:
        known &= before[:, 3] > 0
    flip_pixels, flip_conf = pixels.copy(), conf.copy()
    flip_pixels[0], flip_conf[0] = flip_pixels[0][MIRROR], flip_conf[0][MIRROR]
    flipped = _triangulate_gated(
        cameras, flip_pixels, flip_conf, max_reprojection_px, min_confidence
    )

    def sided_error(candidate: Triangulated) -> float:
        good = SIDED & np.isfinite(candidate.error_px) & (candidate.confidence > 0)
        return float(np.median(candidate.error_px[good])) if good.sum() >= 4 else np.inf

    def swapped(candidate: Triangulated, mirrored: tuple[str, ...]) -> Triangulated:
        return Triangulated(
            candidate.points[MIRROR],
            candidate.confidence[MIRROR],
            candidate.error_px[MIRROR],
            candidate.views[MIRROR],
            mirrored,
        )

    def sided_kept(candidate: Triangulated) -> int:
        return int((SIDED & (candidate.confidence > 0)).sum())

    # the flipped geometry must explain as many left/right joints: a few of them agreeing
    # closely (the rest dropped by the gate) is not a better geometry
    if sided_kept(flipped) >= sided_kept(plain) and sided_error(flipped) < sided_error(plain):
        options = [replace(flipped, mirrored=(ids[0],)), swapped(flipped, (ids[1],))]
    else:
        options = [plain, swapped(plain, tuple(ids))]

    def distance(candidate: Triangulated) -> float:
        both = SIDED & known & (candidate.confidence > 0)
        if both.sum() < 4:
            return np.inf
        return float(np.median(np.linalg.norm(candidate.points[both] - before[both, :3], axis=1)))

    nearest, best = min(((distance(c), c) for c in options), key=lambda scored: scored[0])
    if np.isfinite(nearest):
        return best
    return _mirror_tested(cameras, ids, pixels, conf, plain, max_reprojection_px, min_confidence)


def _nothing(count: int) -> Triangulated:
    return Triangulated(
        np.zeros((count, 3)), np.zeros(count), np.full(count, np.inf), np.zeros(count, np.int64)
    )


def _reprojection_errors(
    cameras: list[CameraModel], pixels: np.ndarray, point: np.ndarray
) -> np.ndarray:
    """(J, 3) points -> (C, J) pixel errors against `pixels` (C, J, 2), inf behind a
    camera or where the point is undefined."""
    out = np.full(pixels.shape[:2], np.inf)
    finite = np.isfinite(point).all(axis=1)
    safe = np.where(finite[:, None], point, 0.0)
    for c, cam in enumerate(cameras):
        projected, depth = project_fast(cam, safe)
        e = np.linalg.norm(projected - pixels[c], axis=-1)
        out[c] = np.where(finite & (depth > 0), e, np.inf)
    return out


def _mirrored_views(
    cameras: list[CameraModel],
    pixels: np.ndarray,
    conf: np.ndarray,
    gate_px: float,
    min_confidence: float,
) -> list[int]:
    """The views whose mirrored labelling the others explain better than their own.

    Each view is tested against the point the other views agree on (with 3 or more views:
    the gated triangulation without it); the view whose mirror helps most is flipped
    first, then the rest are tested again, so one mirrored view never makes a good one look
    mirrored. With two views their two labellings are compared directly. A view flips only
    when its mirror's median error over the left/right joints is under `MIRROR_RATIO` of
    its own and its own is beyond the gate."""
    n_cams = len(cameras)
    pixels, conf = pixels.copy(), conf.copy()
    flipped: list[int] = []
    for _ in range(n_cams):
        best, best_ratio = -1, MIRROR_RATIO
        for c in range(n_cams):
            if c in flipped:
                continue
            others = [o for o in range(n_cams) if o != c]
            if n_cams > 2:  # the point the other views agree on, for both labellings
                reference = _triangulate_gated(
                    [cameras[o] for o in others],
                    pixels[others],
                    conf[others],
                    gate_px,
                    min_confidence,
                ).points
            own = np.zeros(2)
            for k, order in enumerate((slice(None), MIRROR)):
                labels, labels_conf = pixels[c][order], conf[c][order]
                if n_cams == 2:  # two views: each labelling against the other view
                    trial_pixels, trial_conf = pixels.copy(), conf.copy()
                    trial_pixels[c], trial_conf[c] = labels, labels_conf
                    reference = _triangulate_gated(
                        cameras, trial_pixels, trial_conf, np.inf, min_confidence
                    ).points
                e = _reprojection_errors([cameras[c]], labels[None], reference)[0]
                seen = SIDED & (labels_conf >= min_confidence) & np.isfinite(e)
                own[k] = float(np.median(e[seen])) if seen.sum() >= 4 else np.nan
            if not np.isfinite(own).all() or own[0] <= gate_px:
                continue
            ratio = own[1] / own[0]
            if ratio < best_ratio:
                best, best_ratio = c, ratio
        if best < 0:
            break
        flipped.append(best)
        pixels[best], conf[best] = pixels[best][MIRROR], conf[best][MIRROR]
        if n_cams == 2:
            break  # two views: which one is mirrored cannot be told, one flip is enough
    return flipped


def _triangulate_gated(
    cameras: list[CameraModel],
    pixels: np.ndarray,
    conf: np.ndarray,
    max_reprojection_px: float,
    min_confidence: float,
) -> Triangulated:
    """Every joint from the views that agree on it (Pose2Sim's gate, below)."""
    n_cams, count = conf.shape
    points = np.zeros((count, 3))
    confidence = np.zeros(count)
    error = np.full(count, np.inf)
    used = np.zeros(count, np.int64)
    normalized = np.stack([cam.normalize(pixels[c]) for c, cam in enumerate(cameras)])
    candidate = conf >= min_confidence  # (C, J)
    poses = np.stack([np.hstack([cam.R, cam.t.reshape(3, 1)]) for cam in cameras])  # (C, 3, 4)

    def solve(members: np.ndarray, steps: int = 0) -> np.ndarray:
        """(C, J) bool -> (J, 3) points from the member views of each joint."""
        return triangulate_batch(poses, normalized, conf * members, steps)

    def errors(point: np.ndarray) -> np.ndarray:
        return _reprojection_errors(cameras, pixels, point)

    # Pose2Sim's gate: from every view, while the point misses a kept view by more than
    # the gate and more than two remain, drop the view whose absence explains the rest best
    members = candidate.copy()
    for _ in range(n_cams):
        active = members.sum(axis=0) >= 2
        point = solve(members, steps=3)
        e = np.where(members, errors(point), 0.0)
        failing = active & (e.max(axis=0) > max_reprojection_px)
        done = active & ~failing
        points[done] = point[done]
        used[done] = members[:, done].sum(axis=0)
        confidence[done] = (conf * members)[:, done].sum(axis=0) / used[done]
        error[done] = e.max(axis=0)[done]
        reducible = failing & (members.sum(axis=0) > 2)
        if not reducible.any():
            break
        best_mean = np.full(count, np.inf)
        drop = np.zeros(count, np.int64)
        for c in range(n_cams):
            trial = members.copy()
            trial[c] = False
            trial_e = np.where(trial, errors(solve(trial, steps=1)), 0.0)
            mean = trial_e.sum(axis=0) / np.maximum(trial.sum(axis=0), 1)
            better = reducible & members[c] & (mean < best_mean)
            best_mean[better], drop[better] = mean[better], c
        members = members & reducible[None, :]
        members[drop[reducible], np.nonzero(reducible)[0]] = False
    return Triangulated(points, confidence, error, used)


def triangulate(
    calibration: StationCalibration,
    views: dict[str, np.ndarray],
    max_reprojection_px: float = DEFAULT_GATE_PX,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
) -> list[dict[str, Any]]:
    """The wire form of `triangulate_points` (see `wire_pose3d`)."""
    return wire_pose3d(triangulate_points(calibration, views, max_reprojection_px, min_confidence))


def wire_pose3d(result: Triangulated) -> list[dict[str, Any]]:
    """Always 33 keypoints in id order, `{"id", "name", "x", "y", "z", "confidence"}`,
    metres in the calibration's world frame (to 0.1 mm), confidence to 1e-3; a joint
    fewer than two views agree on has confidence 0 and coordinates 0."""
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

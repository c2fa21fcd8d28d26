"""A station calibrated from the person's own keypoints, where no board is at hand.

The joints BlazePose finds in several cameras at the same instant are corresponding points,
as a board's corners are. From frames paired by capture time:

1. intrinsics are guessed from the frame size and a field of view (65 degrees unless told);
2. the camera that shares the most confident joints with the reference camera (the first)
   is placed by the essential matrix (RANSAC), the others by PnP on the joints the placed
   cameras triangulate;
3. a bundle adjustment (scipy's least_squares, a robust loss, sparse Jacobian) refines every
   camera pose, every focal length and every joint of every frame, then again without the
   observations it could not explain (BlazePose's left-right swaps in profile);
4. the scale, which no image holds, comes from the stated body height (`body_frame`:
   shin + thigh + trunk is 0.779 of stature), and the world is put on the floor under the
   person: origin between the ankles, X to their left, Y up, Z forward (metres).

The principal point stays at the frame centre and lenses are taken as distortion-free: a
person's keypoints cannot tell those apart from the pose of the camera.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace

import cv2
import numpy as np
from scipy.optimize import least_squares

from ..protocol import KEYPOINT_INDEX as K
from .body_frame import PERSON_FRAME, estimate_stature, person_frame
from .cameras import CalibrationError, CameraModel, StationCalibration, intrinsics_guess
from .triangulation import (
    DEFAULT_GATE_PX,
    gate_px,
    keypoint_columns,
    mirrored_keypoints,
    triangulate_batch,
    triangulate_points,
)

logger = logging.getLogger(__name__)

# the joints that correspond well between views: not the face (its points are close together
# and guessed in profile) nor the hands (small, often blurred)
JOINTS = tuple(
    K[name]
    for name in (
        "nose", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee",
        "left_ankle", "right_ankle", "left_heel", "right_heel",
        "left_foot_index", "right_foot_index",
    )
)  # fmt: skip
MIN_CONFIDENCE = 0.5
MAX_FRAMES = 100
MIN_INLIER_SHARE = 0.3  # of the shared observations the fit explains (89-100% measured)
GOOD_INLIER_SHARE = 0.85  # what a fit from another start than the stated one must explain
FOV_STARTS = (1.0, 1.3, 0.75)  # the stated field of view times these
RETRY_WITHIN_S = 30.0  # seconds of solving after which no other start is tried
MIN_MIRRORED_FRAMES = 3  # mirrored views found after a first fit that are worth a refit
MIN_MIRRORED_SHARE = 0.03  # (and this share of the frames)
PLAUSIBLE_FOV_DEG = (10.0, 160.0)  # a fitted field of view outside this is no camera's
MIN_BASELINE_M = 0.2  # cameras closer than this see no depth
_ROBUST_SCALE_PX = 4.0  # where the loss turns from squared to linear: BlazePose's jitter
_FOCAL_PRIOR_SIGMA = 0.5  # log-focal: a weak pull toward the guess (a factor 1.65 is 1 sigma)


def _observation_arrays(
    observations: dict[str, Sequence[np.ndarray | None]],
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """pixels (C, F, 33, 2) and confidence (C, F, 33); missing frames have confidence 0."""
    camera_ids = list(observations)
    frames = min(len(v) for v in observations.values())
    pixels = np.zeros((len(camera_ids), frames, 33, 2))
    confidence = np.zeros((len(camera_ids), frames, 33))
    for c, camera_id in enumerate(camera_ids):
        for f in range(frames):
            keypoints = observations[camera_id][f]
            if keypoints is None:
                continue
            pixels[c, f], confidence[c, f] = keypoint_columns(keypoints)
    return camera_ids, pixels, confidence


def _rodrigues(rvecs: np.ndarray) -> np.ndarray:
    """(N, 3) rotation vectors -> (N, 3, 3) matrices."""
    theta = np.linalg.norm(rvecs, axis=1)[:, None, None]
    safe = np.where(theta < 1e-12, 1.0, theta)
    k = rvecs[:, :, None] / safe
    kx = np.zeros((rvecs.shape[0], 3, 3))
    kx[:, 0, 1], kx[:, 0, 2] = -k[:, 2, 0], k[:, 1, 0]
    kx[:, 1, 0], kx[:, 1, 2] = k[:, 2, 0], -k[:, 0, 0]
    kx[:, 2, 0], kx[:, 2, 1] = -k[:, 1, 0], k[:, 0, 0]
    eye = np.eye(3)[None]
    return eye + np.sin(theta) * kx + (1 - np.cos(theta)) * kx @ kx


class _Problem:
    """The bundle adjustment with the points eliminated (variable projection): parameters
    are [rvec, t] of every camera but the reference, then the log focal scale of every
    camera; for given cameras every point is triangulated optimally (`triangulate_batch`),
    so the solver moves a few dozen numbers instead of thousands."""

    def __init__(self, pixels: np.ndarray, weights: np.ndarray, K0: list[np.ndarray]) -> None:
        self.pixels = pixels  # (C, P, 2)
        self.weights = weights  # (C, P), 0 where a camera did not see the point
        self.cameras = pixels.shape[0]
        self.focal0 = np.array([k[0, 0] for k in K0])
        self.centre = np.array([k[:2, 2] for k in K0])
        self.pose_size = 6 * (self.cameras - 1)
        self.observed = weights > 0

    def unpack(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        poses = np.vstack([np.zeros((1, 6)), x[: self.pose_size].reshape(-1, 6)])
        # a focal 20 times off is no camera; unbounded, a wild step made it 0 or inf
        return _rodrigues(poses[:, :3]), poses[:, 3:], np.exp(np.clip(x[self.pose_size :], -3, 3))

    def points(self, x: np.ndarray) -> np.ndarray:
        rotations, translations, focal = self.unpack(x)
        f = (self.focal0 * focal)[:, None, None]
        normalized = (self.pixels - self.centre[:, None, :]) / f
        poses = np.concatenate([rotations, translations[:, :, None]], axis=2)
        return triangulate_batch(poses, normalized, self.weights, steps=3)

    def errors(self, x: np.ndarray) -> np.ndarray:
        """(C, P, 2) pixel residuals (unweighted; 0 where unobserved or undefined)."""
        rotations, translations, focal = self.unpack(x)
        points = np.nan_to_num(self.points(x))
        local = np.einsum("cij,pj->cpi", rotations, points) + translations[:, None, :]
        depth = np.maximum(local[..., 2], 1e-6)
        f = (self.focal0 * focal)[:, None, None]
        projected = local[..., :2] / depth[..., None] * f + self.centre[:, None, :]
        return np.where(self.observed[..., None], projected - self.pixels, 0.0)

    def residuals(self, x: np.ndarray) -> np.ndarray:
        weighted = self.errors(x) * self.weights[..., None]
        _, translations, focal = self.unpack(x)
        gauge = [100.0 * (np.linalg.norm(translations[1]) - 1.0)]
        prior = np.log(focal) / _FOCAL_PRIOR_SIGMA
        return np.concatenate([weighted[self.observed].ravel(), gauge, prior])


def _triangulate_linear(projections: list[np.ndarray], normalized: list[np.ndarray]) -> np.ndarray:
    rows = []
    for P, (x, y) in zip(projections, normalized, strict=True):
        rows.extend([x * P[2] - P[0], y * P[2] - P[1]])
    _, _, vt = np.linalg.svd(np.asarray(rows))
    return vt[-1][:3] / vt[-1][3] if abs(vt[-1][3]) > 1e-12 else np.full(3, np.nan)


def _size(size: tuple[int, int] | list[int]) -> tuple[int, int]:
    return int(size[0]), int(size[1])


def _placed(pose: np.ndarray | None) -> np.ndarray:
    if pose is None:  # pragma: no cover - callers pass placed cameras only
        raise CalibrationError("camera not placed")
    return pose


def _initial_poses(
    pixels: np.ndarray, seen: np.ndarray, K0: list[np.ndarray]
) -> list[np.ndarray | None]:
    """[R | t] (3x4) of each camera in the reference camera's frame, scale unknown."""
    cameras = pixels.shape[0]
    normalized = [
        cv2.undistortPoints(pixels[c].reshape(-1, 1, 2), K0[c], np.zeros(5)).reshape(
            pixels[c].shape
        )
        for c in range(cameras)
    ]
    poses: list[np.ndarray | None] = [None] * cameras
    poses[0] = np.hstack([np.eye(3), np.zeros((3, 1))])
    shared = [int((seen[0] & seen[c]).sum()) for c in range(cameras)]
    first = max(range(1, cameras), key=lambda c: shared[c])
    both = seen[0] & seen[first]
    if both.sum() < 8:
        raise CalibrationError("the cameras share too few confident joints to calibrate")
    a, b = normalized[0][both], normalized[first][both]
    threshold = 3.0 / float(K0[first][0, 0])
    E, mask = cv2.findEssentialMat(a, b, np.eye(3), cv2.RANSAC, 0.999, threshold)
    if E is None:
        raise CalibrationError("the essential matrix could not be estimated")
    _, R, t, _ = cv2.recoverPose(E[:3], a, b, np.eye(3), mask=mask)
    poses[first] = np.hstack([R, t.reshape(3, 1)])
    for _ in range(cameras):
        for c in range(cameras):
            if poses[c] is not None:
                continue
            placed = [i for i in range(cameras) if poses[i] is not None]
            object_points, image_points = [], []
            for f, j in zip(*np.nonzero(seen[c]), strict=True):
                views = [i for i in placed if seen[i, f, j]]
                if len(views) < 2:
                    continue
                point = _triangulate_linear(
                    [_placed(poses[i]) for i in views],
                    [normalized[i][f, j] for i in views],
                )
                if np.isfinite(point).all():
                    object_points.append(point)
                    image_points.append(normalized[c][f, j])
            if len(object_points) < 12:
                continue
            ok, rvec, tvec, _ = cv2.solvePnPRansac(
                np.asarray(object_points),
                np.asarray(image_points),
                np.eye(3),
                np.zeros(5),
                reprojectionError=threshold * 2,
            )
            if ok:
                poses[c] = np.hstack([cv2.Rodrigues(rvec)[0], tvec.reshape(3, 1)])
    return poses


def self_calibrate(
    observations: dict[str, Sequence[np.ndarray | None]],
    image_sizes: dict[str, tuple[int, int]],
    body_height_m: float,
    horizontal_fov_deg: float | dict[str, float] = 65.0,
    max_frames: int = MAX_FRAMES,
) -> StationCalibration:
    """Calibrate from keypoints. `observations[camera_id][k]` is that camera's (33, 3) x, y
    (pixels), confidence (or a (33, 4) BlazePose array; None when it saw nobody) at the k-th
    instant: frames are aligned by index across cameras (paired by capture time). The
    person should move (a few reps) and be seen whole. Raises CalibrationError when the
    views do not share enough joints, ValueError for a body height outside 0.5..2.5 m.

    The field of view is where the fit starts, not a constraint: a person's joints pin the
    focal length only weakly, and from a poor start the fit can settle where it explains
    too little (about half of the first attempts on the suite's two-camera squat). Wider
    and narrower starts are then tried on the same frames (`FOV_STARTS`). A fit from
    another start must explain `GOOD_INLIER_SHARE` of the joints to be kept: with two
    cameras, a fit from a far-off start on frames half of garbage explained 78% of them,
    with the cameras placed 35 degrees wrong. Other starts are tried only while the solve
    has taken under `RETRY_WITHIN_S` (a failing start ran 10 s alone, 20 s on a busy node).
    """
    if not 0.5 <= body_height_m <= 2.5:
        raise ValueError(f"body height {body_height_m} m is not a person's")
    if len(observations) < 2:
        raise CalibrationError("a station needs at least two cameras")
    stated: StationCalibration | None = None  # the fit from the stated field of view
    failure: CalibrationError | None = None
    started = time.monotonic()
    stated_fovs: dict[str, float] = {}
    for factor in FOV_STARTS:
        if factor != FOV_STARTS[0] and time.monotonic() - started > RETRY_WITHIN_S:
            break  # a person waits for the answer: no more starts after a long solve
        if isinstance(horizontal_fov_deg, dict):
            fovs = {c: _scaled_fov(v, factor) for c, v in horizontal_fov_deg.items()}
        else:
            fovs = dict.fromkeys(observations, _scaled_fov(horizontal_fov_deg, factor))
        try:
            fit = _calibrate_from(observations, image_sizes, body_height_m, fovs, max_frames)
        except CalibrationError as exc:
            logger.info("self-calibration from a %.2fx field of view: %s", factor, exc)
            failure = failure or exc
            continue
        if float(fit.details["inlier_share"]) >= GOOD_INLIER_SHARE:
            return _refit_mirrored(fit, observations, image_sizes, body_height_m, fovs, max_frames)
        if factor == FOV_STARTS[0]:
            stated = fit
            stated_fovs = fovs
    if stated is not None:
        return _refit_mirrored(
            stated, observations, image_sizes, body_height_m, stated_fovs, max_frames
        )
    assert failure is not None
    raise failure


def _refit_mirrored(
    fit: StationCalibration,
    observations: dict[str, Sequence[np.ndarray | None]],
    image_sizes: dict[str, tuple[int, int]],
    body_height_m: float,
    fovs: dict[str, float],
    max_frames: int,
) -> StationCalibration:
    """BlazePose labels a whole view mirrored in some frames (28% of one lab camera's):
    with the first fit, each frame's mirrored views are found (the triangulation's mirror
    test) and relabelled, and the cameras fitted again when that explains more joints. On
    the lab footage: joints explained 82% -> 98%, camera centres 0.11-0.56 -> 0.09-0.42 m
    off."""
    relabelled: dict[str, list[np.ndarray | None]] = {c: list(v) for c, v in observations.items()}
    count = min(len(v) for v in relabelled.values())
    gate = gate_px([_size(image_sizes[c]) for c in relabelled])
    flips = 0
    for k in range(count):
        views = {c: v[k] for c, v in relabelled.items() if v[k] is not None}
        if len(views) < 3:
            continue  # two views cannot tell a mirror
        result = triangulate_points(fit, {c: np.asarray(v) for c, v in views.items()}, gate)
        for camera_id in result.mirrored:
            relabelled[camera_id][k] = mirrored_keypoints(np.asarray(views[camera_id]))
            flips += 1
    if flips < max(MIN_MIRRORED_FRAMES, MIN_MIRRORED_SHARE * count):
        return fit
    try:
        sequences: dict[str, Sequence[np.ndarray | None]] = dict(relabelled)
        refit = _calibrate_from(sequences, image_sizes, body_height_m, fovs, max_frames)
    except CalibrationError as exc:
        logger.info("self-calibration with mirrored views relabelled: %s", exc)
        return fit
    if float(refit.details["inlier_share"]) < float(fit.details["inlier_share"]):
        return fit
    return replace(refit, details={**refit.details, "mirrored_views_relabelled": flips})


def _scaled_fov(fov_deg: float, factor: float) -> float:
    return float(np.clip(fov_deg * factor, 20.0, 150.0))


def _calibrate_from(
    observations: dict[str, Sequence[np.ndarray | None]],
    image_sizes: dict[str, tuple[int, int]],
    body_height_m: float,
    fovs: dict[str, float],
    max_frames: int,
) -> StationCalibration:
    camera_ids, all_pixels, all_confidence = _observation_arrays(observations)
    cameras = len(camera_ids)
    K0 = [intrinsics_guess(_size(image_sizes[c]), fovs[c]) for c in camera_ids]

    joints = np.array(JOINTS)
    seen_all = all_confidence[:, :, joints] >= MIN_CONFIDENCE  # (C, F, J)
    useful = np.nonzero((seen_all.sum(axis=0) >= 2).sum(axis=1) >= 6)[0]
    if useful.size < 5:
        raise CalibrationError("too few instants where two cameras see the person")
    frames = useful[np.linspace(0, useful.size - 1, min(max_frames, useful.size)).astype(int)]
    pixels = all_pixels[:, frames][:, :, joints]  # (C, F, J, 2)
    confidence = all_confidence[:, frames][:, :, joints]
    seen = seen_all[:, frames]

    initial = _initial_poses(pixels, seen, K0)
    unplaced = [camera_ids[c] for c in range(cameras) if initial[c] is None]
    if unplaced:
        raise CalibrationError(f"cameras {unplaced} share too few joints with the others")
    poses: list[np.ndarray] = [p for p in initial if p is not None]
    scale = float(np.linalg.norm(poses[1][:, 3])) or 1.0
    for p in poses:
        p[:, 3] /= scale

    # the points: every (frame, joint) seen by two cameras or more
    point_pixels = pixels.reshape(cameras, -1, 2)
    point_weights = np.sqrt(confidence.reshape(cameras, -1)) * seen.reshape(cameras, -1)
    shared = (point_weights > 0).sum(axis=0) >= 2
    point_pixels, point_weights = point_pixels[:, shared], point_weights[:, shared]
    x = np.concatenate(
        [np.concatenate([cv2.Rodrigues(p[:, :3])[0].ravel(), p[:, 3]]) for p in poses[1:]]
        + [np.zeros(cameras)]
    )
    keep = point_weights > 0
    for _round in range(2):
        problem = _Problem(point_pixels, np.where(keep, point_weights, 0.0), K0)
        try:
            fit = least_squares(
                problem.residuals,
                x,
                loss="huber",
                f_scale=_ROBUST_SCALE_PX,
                x_scale="jac",
                method="trf",
                max_nfev=100,
            )
        except np.linalg.LinAlgError:  # the views fit no geometry at all
            raise CalibrationError(
                "the views do not agree on where the cameras are: let every camera see "
                "the whole body, move, and try again"
            ) from None
        x = fit.x
        logger.debug("bundle adjustment: %d evaluations, cost %.1f", fit.nfev, fit.cost)
        # drop the observations the fit cannot explain (a swapped or misplaced joint)
        errors = np.linalg.norm(_Problem(point_pixels, point_weights, K0).errors(x), axis=2)
        keep = (point_weights > 0) & (errors <= DEFAULT_GATE_PX)
    observed = point_weights > 0
    inlier_share = float(keep.sum() / max(1, observed.sum()))
    if inlier_share < MIN_INLIER_SHARE:  # a fit that explains so little placed no camera
        raise CalibrationError(
            f"the views agree on only {inlier_share:.0%} of the joints they share: "
            "let every camera see the whole body, move, and try again"
        )
    rms = float(np.sqrt(np.mean(errors[keep] ** 2)))

    rotations, translations, focal = problem.unpack(x)
    for c, camera_id in enumerate(camera_ids):
        width = _size(image_sizes[camera_id])[0]
        fov = 2 * np.degrees(np.arctan(0.5 * width / (K0[c][0, 0] * focal[c])))
        if not PLAUSIBLE_FOV_DEG[0] <= fov <= PLAUSIBLE_FOV_DEG[1]:  # a fit run off to nowhere
            raise CalibrationError(
                f"the fit gives camera {camera_id} a {fov:.0f} degree field of view: let "
                "every camera see the whole body, move, and try again"
            )
    models = {}
    for c, camera_id in enumerate(camera_ids):
        Kmat = K0[c].copy()
        Kmat[0, 0] *= focal[c]
        Kmat[1, 1] *= focal[c]
        models[camera_id] = CameraModel(
            Kmat, np.zeros(5), rotations[c], translations[c].copy(), _size(image_sizes[camera_id])
        )
    unscaled = StationCalibration(models, "self", rms)

    # scale from the body height, then the person's floor frame
    triangulated = []
    for f in range(all_pixels.shape[1]):
        views = {
            camera_ids[c]: np.column_stack([all_pixels[c, f], all_confidence[c, f]])
            for c in range(cameras)
        }
        result = triangulate_points(unscaled, views)
        if (result.views >= 2).sum() >= 12:
            triangulated.append(np.column_stack([result.points, result.confidence]))
    if not triangulated:
        raise CalibrationError("the calibrated cameras triangulate no whole body")
    try:  # from a poor fit the body comes out broken: another start may do better
        stature_units = estimate_stature(triangulated)
        metres = body_height_m / stature_units
        scaled = [np.column_stack([p[:, :3] * metres, p[:, 3]]) for p in triangulated]
        rotation, origin = person_frame(scaled, body_height_m)
    except ValueError as exc:
        raise CalibrationError(str(exc)) from None
    baseline_m = metres  # the gauge: the first two cameras are 1 unit apart
    if baseline_m < MIN_BASELINE_M:  # views with no parallax (one video twice) fit anything
        raise CalibrationError(
            f"the cameras come out {100 * baseline_m:.0f} cm apart: place them at least "
            f"{100 * MIN_BASELINE_M:.0f} cm apart, each seeing the whole body, and try again"
        )
    calibration = unscaled.transformed(rotation, origin, metres, PERSON_FRAME)
    details = {
        "frames": int(len(frames)),
        "observations": int(observed.sum()),
        "inlier_share": round(inlier_share, 4),
        "focal_px": {
            camera_ids[c]: round(float(K0[c][0, 0] * focal[c]), 2) for c in range(cameras)
        },
        "stature_in_baseline_units": round(float(stature_units), 4),
        "body_height_m": body_height_m,
    }
    logger.info(
        "self-calibration: %d frames, rms %.2f px, inliers %.1f%%",
        len(frames),
        rms,
        100 * keep.mean(),
    )
    return StationCalibration(calibration.cameras, "self", rms, calibration.world_frame, details)

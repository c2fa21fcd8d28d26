"""3-D accuracy of a multi-camera station, judged on rendered video through the real pose
model (`python -m komi_rtc.bench.multiview`).

A known 3-D skeleton (`komi_rtc.synthetic`, 1.75 m tall) does squats and a second exercise;
known pinhole cameras (1280x720; 3.3 m away, 1.1 m up; in front, 45 degrees to the left,
at the left side; horizontal fields of view 58, 62 and 66 degrees) film it, each view
rendered as video (`komi_rtc.multiview.synthetic_station.render_person`) and run through
BlazePose full in tracking mode, one estimator per camera. The board (5x7 ChArUco, 0.08 m
squares) is rendered through the same cameras in 16 poses someone could show it in.

Three calibrations are compared:
  board: `calibrate_from_board` on the detected board corners;
  self:  `self_calibrate` on the BlazePose keypoints of the whole recording, with the body
         height stated (1.75 m) and fields of view guessed (65 degrees);
  truth: the true cameras (the floor: what triangulating BlazePose can give at best).

Per calibration: the reprojection error (pixels, between each kept view's BlazePose keypoint
and the triangulated joint reprojected), MPJPE (mm, the mean 3-D distance between the
triangulated and the true joints over 17 body joints and all frames) after one rigid
alignment of the whole recording to the truth (Kabsch: rotation and translation, no scale,
so a wrong scale counts as error) and, for truth and self (whose world frame is meant to be
the person's: origin between the ankles, Y up), without any alignment; the mean absolute
error of the 3-D knee, hip and elbow angles (degrees); and the MPJPE of triangulating the
true 2-D keypoints with that calibration (the calibration's own share of the error).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..multiview.angles3d import joint_angles_3d
from ..multiview.board import DEFAULT_SQUARE_M, BoardView, detect_board
from ..multiview.board_calibration import calibrate_from_board
from ..multiview.cameras import CameraModel, StationCalibration
from ..multiview.self_calibration import self_calibrate
from ..multiview.synthetic_station import (
    board_poses,
    camera_ring,
    person_in_world,
    render_board,
    render_person,
    room,
)
from ..multiview.triangulation import project_fast, triangulate_points
from ..pose.native_log import filter_native_stderr
from ..protocol import KEYPOINT_INDEX as K
from ..synthetic import Look, forward_kinematics, pose_at

BODY_HEIGHT_M = 1.75
SIZE = (1280, 720)
YAWS = {"front": 0.0, "front_left": 45.0, "left": 90.0}
FOVS = {"front": 58.0, "front_left": 62.0, "left": 66.0}
BODY_JOINTS = tuple(
    K[n]
    for n in (
        "nose", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
        "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
        "right_ankle", "left_heel", "right_heel", "left_foot_index", "right_foot_index",
    )
)  # fmt: skip
ANGLES = ("left_knee", "right_knee", "left_hip", "right_hip", "left_elbow", "right_elbow")
REP_SECONDS = 3.0


def _truth(exercise: str, frames: int, fps: float) -> list[np.ndarray]:
    """World keypoints (metres) of `frames` frames of reps at `REP_SECONDS` each."""
    out = []
    for i in range(frames):
        progress = 0.5 - 0.5 * math.cos(2 * math.pi * (i / fps) / REP_SECONDS)
        out.append(person_in_world(forward_kinematics(pose_at(exercise, progress)), BODY_HEIGHT_M))
    return out


def _film(
    cameras: dict[str, CameraModel], truth: list[np.ndarray], fps: float, save: Path | None
) -> dict[str, list[np.ndarray | None]]:
    """Render every frame for every camera and run BlazePose on it (one estimator a camera)."""
    from ..pose.estimator import BlazePoseFull  # loads MediaPipe

    keypoints: dict[str, list[np.ndarray | None]] = {}
    for camera_id, camera in cameras.items():
        estimator = BlazePoseFull()
        found: list[np.ndarray | None] = []
        for i, points in enumerate(truth):
            view = render_person(points, camera, Look(), BODY_HEIGHT_M)
            if save is not None and i == len(truth) // 3:
                bgr = cv2.cvtColor(view.image, cv2.COLOR_RGB2BGR)
                cv2.imwrite(str(save / f"{camera_id}.jpg"), bgr)
            poses = estimator.estimate(view.image, int(1000 * i / fps))
            estimator.after_result()
            found.append(poses[0].keypoints.astype(np.float64) if poses else None)
        estimator.close()
        keypoints[camera_id] = found
    return keypoints


def _board_views(
    cameras: dict[str, CameraModel], poses: int, seed: int
) -> dict[str, list[BoardView | None]]:
    rng = np.random.default_rng(seed)
    background = room(SIZE)
    views: dict[str, list[BoardView | None]] = {camera_id: [] for camera_id in cameras}
    for pose in board_poses(poses, rng, DEFAULT_SQUARE_M):
        for camera_id, camera in cameras.items():
            image = render_board(camera, pose, DEFAULT_SQUARE_M, background, rng)
            views[camera_id].append(detect_board(image) if image is not None else None)
    return views


def _kabsch(estimate: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R, t minimizing |R @ estimate + t - truth| over (N, 3) points (no scale)."""
    me, mt = estimate.mean(axis=0), truth.mean(axis=0)
    u, _, vt = np.linalg.svd((estimate - me).T @ (truth - mt))
    d = np.sign(np.linalg.det(vt.T @ u.T))
    R = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return R, mt - R @ me


def _evaluate(
    calibration: StationCalibration,
    keypoints: dict[str, list[np.ndarray | None]],
    truth: list[np.ndarray],
    cameras_truth: dict[str, CameraModel],
    align: bool,
) -> dict[str, Any]:
    joints = np.array(BODY_JOINTS)
    estimates, truths, reprojection = [], [], []
    angle_errors: list[float] = []
    true_2d_estimates = []
    missing = 0
    for i, points in enumerate(truth):
        views: dict[str, np.ndarray] = {}
        for c, kp in keypoints.items():
            observed = kp[i]
            if observed is not None:
                views[c] = observed
        result = triangulate_points(calibration, views)
        ok = result.views[joints] >= 2
        missing += int((~ok).sum())
        for j in joints[ok]:
            for c, view in views.items():
                pixel, _ = project_fast(calibration.cameras[c], result.points[j])
                error = float(np.linalg.norm(pixel[0] - view[j, :2]))
                if error <= 20.0:  # the views the gate kept
                    reprojection.append(error)
        estimates.append(np.where(ok[:, None], result.points[joints], np.nan))
        truths.append(points[joints])
        pose3d = np.column_stack([result.points, result.confidence])
        true_angles = joint_angles_3d(np.column_stack([points, np.ones(33)]))
        for name, value in joint_angles_3d(pose3d).items():
            if name in ANGLES:
                angle_errors.append(abs(value - true_angles[name]))
        exact = {
            c: np.column_stack([cam.project(points), np.ones(33)])
            for c, cam in cameras_truth.items()
        }
        true_2d_estimates.append(triangulate_points(calibration, exact).points[joints])
    estimate = np.concatenate(estimates)
    target = np.concatenate(truths)
    valid = np.isfinite(estimate).all(axis=1)
    R, t = _kabsch(estimate[valid], target[valid])
    aligned = estimate @ R.T + t
    out: dict[str, Any] = {
        "reprojection_px_mean": float(np.mean(reprojection)),
        "reprojection_px_median": float(np.median(reprojection)),
        "mpjpe_mm_aligned": 1000 * float(np.linalg.norm(aligned - target, axis=1)[valid].mean()),
        "angle_error_deg": float(np.mean(angle_errors)),
        "joints_missing_share": missing / (len(truth) * len(joints)),
    }
    if not align:
        out["mpjpe_mm_unaligned"] = 1000 * float(
            np.linalg.norm(estimate - target, axis=1)[valid].mean()
        )
    exact = np.concatenate(true_2d_estimates)
    R, t = _kabsch(exact, target)
    exact_error = np.linalg.norm(exact @ R.T + t - target, axis=1)
    out["mpjpe_mm_true_2d"] = 1000 * float(np.mean(exact_error))
    return out


def _calibration_figures(
    calibration: StationCalibration, cameras_truth: dict[str, CameraModel]
) -> dict[str, Any]:
    """Focal length error (%) and camera position error (mm, after aligning the camera
    centres rigidly, no scale) of a calibration."""
    ids = list(cameras_truth)
    estimate = np.array([calibration.cameras[c].centre for c in ids])
    truth = np.array([cameras_truth[c].centre for c in ids])
    R, t = _kabsch(estimate, truth)
    position = np.linalg.norm(estimate @ R.T + t - truth, axis=1)
    focal = [100 * (calibration.cameras[c].K[0, 0] / cameras_truth[c].K[0, 0] - 1) for c in ids]
    return {
        "reprojection_error_px": calibration.reprojection_error_px,
        "focal_error_pct": {c: round(f, 2) for c, f in zip(ids, focal, strict=True)},
        "camera_position_error_mm": {
            c: round(1000 * float(p), 1) for c, p in zip(ids, position, strict=True)
        },
    }


def run(
    exercises: list[str],
    frames: int,
    fps: float,
    board_poses_count: int,
    seed: int,
    save: Path | None,
) -> dict[str, Any]:
    cameras = camera_ring(YAWS, SIZE, horizontal_fov_deg=FOVS)
    sizes = {c: cam.size for c, cam in cameras.items()}
    started = time.perf_counter()
    recordings = {}
    for exercise in exercises:
        truth = _truth(exercise, frames, fps)
        recordings[exercise] = (truth, _film(cameras, truth, fps, save))
    filmed = time.perf_counter()

    board = calibrate_from_board(_board_views(cameras, board_poses_count, seed), sizes)
    board_done = time.perf_counter()
    observations: dict[str, Sequence[np.ndarray | None]] = {
        c: [kp for exercise in exercises for kp in recordings[exercise][1][c]] for c in cameras
    }
    selfcal = self_calibrate(observations, sizes, BODY_HEIGHT_M)
    self_done = time.perf_counter()
    truth_cal = StationCalibration(cameras, "board", 0.0, "the truth's")
    calibrations = {"board": board, "self": selfcal, "truth": truth_cal}

    report: dict[str, Any] = {
        "setup": {
            "cameras": {c: {"yaw_deg": YAWS[c], "hfov_deg": FOVS[c]} for c in cameras},
            "size": SIZE,
            "distance_m": 3.3,
            "body_height_m": BODY_HEIGHT_M,
            "frames_per_exercise": frames,
            "fps": fps,
            "board_poses": board_poses_count,
            "board_square_m": DEFAULT_SQUARE_M,
            "seed": seed,
        },
        "seconds": {
            "render_and_pose": round(filmed - started, 1),
            "board_calibration": round(board_done - filmed, 1),
            "self_calibration": round(self_done - board_done, 1),
        },
        "calibrations": {
            name: _calibration_figures(cal, cameras)
            for name, cal in calibrations.items()
            if name != "truth"
        },
        "self_calibration_details": selfcal.details,
        "results": {},
    }
    for exercise, (truth, keypoints) in recordings.items():
        for name, calibration in calibrations.items():
            result = _evaluate(calibration, keypoints, truth, cameras, align=name == "board")
            report["results"].setdefault(exercise, {})[name] = result
    return report


def _table(report: dict[str, Any]) -> str:
    lines = [
        "| exercise | calibration | reproj. px (mean/median) | MPJPE mm aligned | "
        "MPJPE mm unaligned | angle err. deg | MPJPE mm from true 2-D |",
        "|---|---|---|---|---|---|---|",
    ]
    for exercise, by_calibration in report["results"].items():
        for name, r in by_calibration.items():
            unaligned = r.get("mpjpe_mm_unaligned")
            lines.append(
                f"| {exercise} | {name} | {r['reprojection_px_mean']:.1f} / "
                f"{r['reprojection_px_median']:.1f} | {r['mpjpe_mm_aligned']:.1f} | "
                f"{'-' if unaligned is None else f'{unaligned:.1f}'} | "
                f"{r['angle_error_deg']:.1f} | {r['mpjpe_mm_true_2d']:.1f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--exercises", nargs="+", default=["squat", "lunge_left"])
    parser.add_argument("--frames", type=int, default=90, help="frames per exercise")
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--board-poses", type=int, default=16)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("artifacts/multiview_benchmark.json"))
    parser.add_argument(
        "--save-frames", type=Path, default=None, help="a folder for one rendered frame per camera"
    )
    args = parser.parse_args(argv)
    filter_native_stderr()
    if args.save_frames is not None:
        args.save_frames.mkdir(parents=True, exist_ok=True)
    report = run(
        args.exercises, args.frames, args.fps, args.board_poses, args.seed, args.save_frames
    )
    print(
        json.dumps({"calibrations": report["calibrations"], "seconds": report["seconds"]}, indent=1)
    )
    print(_table(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Real footage through the real server: Pose2Sim's lab, 4 cameras, one station.

`python -m komi_rtc.bench.real [--seconds S] [--fps F] [--scale X] [--load N]
[--self-calibration] [--out FILE.json]`

Starts the server as its own process, lists the 4 lab cameras in station `lab` and installs
the lab's Qualisys calibration as a Pose2Sim TOML file (`PUT /stations/lab/calibration`),
then streams the 4 videos (bench/real_footage.py: 60 fps, 1088x1920, replayed at `--fps`
and `--scale` of their size) from KOMI's own camera peer: one process, one capture
timeline, so every view shows the same instant and the sender reports carry capture time.
`--load N` runs N busy processes meanwhile (a loaded machine); `--offline` runs no server:
BlazePose on every frame at `--fps`, triangulated as a station does (what the server gives
when it has the time to analyse every frame). Measured:
- the person found in each view (share of analysed frames with a pose);
- `pose3d` in groups: share of groups with a 3-D pose (8 of the 12 limb joints or more);
- bone-length CV over groups (thigh, shin, upper arm, forearm, both sides), its median;
- reprojection of the 12 limb joints of `pose3d` into each view, against that view's own
  keypoints (mirrored when the station says it took that view mirrored), p95 per view;
- one instant: share of groups of two or more views whose frames are one frame of the
  recording (each camera peer knows which frame it sent at which pts);
- with `--self-calibration`: the station calibrated from the person (`POST .../calibrate`
  `{"method": "self"}`), compared with the lab's after a similarity alignment: focal
  lengths, camera centres, orientations, and the stature each calibration implies.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np

from ..camera.peer import CameraPeer
from ..media.capture_timeline import CaptureTimeline
from ..multiview import (
    CalibrationError,
    StationCalibration,
    estimate_stature,
    gate_px,
    mirrored_keypoints,
    read_qualisys,
    self_calibrate,
    to_toml,
    triangulate_points,
    wire_pose3d,
)
from ..pose import create_estimator
from ..protocol import KEYPOINT_INDEX
from .real_footage import LabStation, RecordingInMemory, lab_station
from .server_process import free_port, wait_ready

STATION = "lab"
DEFAULT_HEIGHT_M = 1.7  # the server's body_height_m when none is stated
CAMERAS = ("cam01", "cam02", "cam03", "cam04")
RECORDING_FPS = 60.0
LIMBS = [
    f"{side}_{joint}"
    for side in ("left", "right")
    for joint in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")
]
BONES = [
    (f"{side}_{a}", f"{side}_{b}")
    for side in ("left", "right")
    for a, b in (("hip", "knee"), ("knee", "ankle"), ("shoulder", "elbow"), ("elbow", "wrist"))
]
MIN_LIMB_JOINTS = 8  # a group "has a 3-D pose" with at least this many limb joints
TARGETS = {
    "found": 0.99,
    "pose3d": 0.90,
    "bone_cv_median": 0.06,
    "reprojection_p95_px": 25.0,
    "one_instant": 0.95,
}


def _keypoints(message: dict[str, Any]) -> np.ndarray | None:
    """The most prominent person of a frame_processed message as (33, 3) x, y, conf."""
    poses = message.get("pose_data", {}).get("pose") or []
    if not poses:
        return None

    def area(pose: dict[str, Any]) -> float:
        xs = [k["x"] for k in pose["keypoints"]]
        ys = [k["y"] for k in pose["keypoints"]]
        return (max(xs) - min(xs)) * (max(ys) - min(ys))

    pose = max(poses, key=area)
    return np.array([[k["x"], k["y"], k["confidence"]] for k in pose["keypoints"]])


async def _request(
    http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> dict[str, Any]:
    async with http.request(method, url, **kwargs) as response:
        answer = await response.json(content_type=None)
        if response.status != 200:
            raise RuntimeError(f"{method} {url}: {response.status} {answer}")
        return dict(answer)


async def stream(
    url: str, token: str, calibration: StationCalibration, args: argparse.Namespace
) -> dict[str, Any]:
    """Stream the lab's 4 views into the station; returns what every camera received."""
    lab = lab_station()
    width = round(1088 * args.scale / 2) * 2
    height = round(1920 * args.scale / 2) * 2
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        await _request(http, "POST", f"{url}/stations/{STATION}", json={"cameras": CAMERAS})
        await _request(
            http,
            "PUT",
            f"{url}/stations/{STATION}/calibration",
            data=to_toml(calibration),
            headers={"Content-Type": "application/toml"},
        )
        loop = asyncio.get_running_loop()
        timeline = CaptureTimeline(args.fps)
        peers = []
        for camera_id, path in zip(CAMERAS, lab.videos, strict=True):
            first, count = _aligned(lab, camera_id, args)
            source = await loop.run_in_executor(
                None, RecordingInMemory, path, width, height, first, count
            )
            peer = CameraPeer(
                url, camera_id, source, args.fps, token=token, station=STATION, timeline=timeline
            )
            peer.messages = asyncio.Queue()
            peers.append(peer)
        received: dict[str, list[dict[str, Any]]] = {c: [] for c in CAMERAS}
        sent: dict[str, dict[int, float]] = {c: {} for c in CAMERAS}  # pts -> capture unix s
        tasks = [asyncio.create_task(p.run(), name=p.camera_id) for p in peers]
        calibrated: dict[str, Any] | None = None
        summary: dict[str, Any] = {}
        try:
            deadline = time.monotonic() + args.seconds
            while time.monotonic() < deadline:
                for peer in peers:
                    assert peer.messages is not None
                    while not peer.messages.empty():
                        message = peer.messages.get_nowait()
                        kind = message.get("type")
                        if kind == "frame_processed" or (
                            kind == "station_processed" and peer.camera_id == CAMERAS[0]
                        ):
                            received[peer.camera_id].append(message)
                        track = peer.track
                        for key in ("frame_pts",):
                            if track is not None and isinstance(message.get(key), int):
                                captured = track.captured_unix_of(message[key])
                                if captured is not None:
                                    sent[peer.camera_id][message[key]] = captured
                await asyncio.sleep(0.05)  # polling the peers' queues until the deadline
            listing = await _request(http, "GET", f"{url}/stations")
            summary = next(s for s in listing["stations"] if s["id"] == STATION)
            if args.self_calibration:
                calibrated = await _self_calibrate(http, url, peers)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for peer in peers:
                await peer.close()
    # station messages name each camera's frames by pts: their capture, as each peer knew
    for peer_messages in received.values():
        for message in peer_messages:
            if message.get("type") == "station_processed":
                message["true_captured"] = {
                    c: sent[c].get(pts) for c, pts in message["frames"].items()
                }
    return {
        "received": received,
        "size": (width, height),
        "self_calibration": calibrated,
        "station": summary,
    }


async def _self_calibrate(
    http: aiohttp.ClientSession, url: str, peers: list[CameraPeer]
) -> dict[str, Any]:
    """Calibrate the station from the person while the peers stream (it needs 90 groups in
    which every camera sees the person)."""
    streaming = asyncio.create_task(_drain(peers))
    try:
        async with http.post(
            f"{url}/stations/{STATION}/calibrate", json={"method": "self", "seconds": 120}
        ) as response:
            answer = await response.json(content_type=None)
            if response.status != 200:
                return {"error": answer.get("error", str(answer)), "status": response.status}
        return await _request(http, "GET", f"{url}/stations/{STATION}/calibration")
    finally:
        streaming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await streaming


async def _drain(peers: list[CameraPeer]) -> None:
    while True:
        for peer in peers:
            while peer.messages is not None and not peer.messages.empty():
                peer.messages.get_nowait()
        await asyncio.sleep(0.2)  # polling: keeps the queues short while calibrating


def measure(data: dict[str, Any], calibration: StationCalibration, fps: float) -> dict[str, Any]:
    """The figures of the module docstring from what the cameras received."""
    received = data["received"]
    seen = calibration.scaled_to({c: tuple(data["size"]) for c in CAMERAS})
    frames: dict[str, dict[int, np.ndarray | None]] = {c: {} for c in CAMERAS}
    found = {}
    for camera_id in CAMERAS:
        analysed = [m for m in received[camera_id] if m.get("type") == "frame_processed"]
        for message in analysed:
            frames[camera_id][message["frame_pts"]] = _keypoints(message)
        people = sum(1 for m in analysed if _keypoints(m) is not None)
        found[camera_id] = round(people / len(analysed), 4) if analysed else 0.0
    groups = [m for m in received[CAMERAS[0]] if m.get("type") == "station_processed"]
    limb_ids = [KEYPOINT_INDEX[n] for n in LIMBS]
    with_pose = 0
    lengths: list[list[float]] = []
    errors: dict[str, list[float]] = {c: [] for c in CAMERAS}
    poses3d = []
    one_instant = several = 0
    full = 0
    for group in groups:
        true = [t for t in group.get("true_captured", {}).values() if t is not None]
        if len(group["frames"]) >= 2 and len(true) == len(group["frames"]):
            several += 1
            one_instant += (max(true) - min(true)) < 0.5 / RECORDING_FPS
        full += len(group["frames"]) == len(CAMERAS)
        pose3d = group.get("pose3d")
        if not pose3d:
            continue
        points = np.array([[k["x"], k["y"], k["z"], k["confidence"]] for k in pose3d])
        good = points[:, 3] > 0
        if good[limb_ids].sum() < MIN_LIMB_JOINTS:
            continue
        with_pose += 1
        poses3d.append(points)
        lengths.append(
            [
                float(np.linalg.norm(points[KEYPOINT_INDEX[a], :3] - points[KEYPOINT_INDEX[b], :3]))
                if good[KEYPOINT_INDEX[a]] and good[KEYPOINT_INDEX[b]]
                else np.nan
                for a, b in BONES
            ]
        )
        mirrored = set(group.get("mirrored", []))
        for camera_id, pts in group["frames"].items():
            keypoints = frames.get(camera_id, {}).get(pts)
            if keypoints is None or camera_id not in seen.cameras:
                continue
            if camera_id in mirrored:
                keypoints = mirrored_keypoints(keypoints)
            joints = [i for i in limb_ids if good[i]]
            projected = seen.cameras[camera_id].project(points[joints, :3])
            errors[camera_id].extend(
                np.linalg.norm(projected - keypoints[joints, :2], axis=1).tolist()
            )
    table = np.array(lengths) if lengths else np.zeros((0, len(BONES)))
    with np.errstate(all="ignore"):
        cv = np.nanstd(table, axis=0) / np.nanmean(table, axis=0)
    stature = None
    if poses3d:
        with contextlib.suppress(ValueError):
            stature = round(estimate_stature(poses3d), 3)
    return {
        "fps": fps,
        "size": list(data["size"]),
        "analysed": {c: len(frames[c]) for c in CAMERAS},
        "group_sizes": {
            n: sum(1 for g in groups if len(g["frames"]) == n) for n in range(1, len(CAMERAS) + 1)
        },
        "groups": len(groups),
        "full_groups": round(full / len(groups), 4) if groups else 0.0,
        "found": found,
        "pose3d": round(with_pose / len(groups), 4) if groups else 0.0,
        "bone_cv": {f"{a}-{b}": round(float(v), 4) for (a, b), v in zip(BONES, cv, strict=True)},
        "bone_cv_median": round(float(np.nanmedian(cv)), 4) if lengths else None,
        "reprojection_p95_px": {
            c: round(float(np.percentile(e, 95)), 1) if e else None for c, e in errors.items()
        },
        "mirrored_share": {
            c: round(sum(c in g.get("mirrored", []) for g in groups) / len(groups), 3)
            if groups
            else 0.0
            for c in CAMERAS
        },
        "one_instant": round(one_instant / several, 4) if several else None,
        "stature_m_lab": stature,
    }


def _aligned(lab: LabStation, camera_id: str, args: argparse.Namespace) -> tuple[int, int]:
    """(first frame, frames) of a view: as recorded, or with `--shift-cam03` the lab's
    cam03 shifted by `LabStation.frame_offsets` (its joints fit the others best 4 frames
    later; the figures it gives are mixed: bone CV 0.036 against 0.041, cam03 p95 24.1
    against 19.7 px, offline at 60 fps), so not by default."""
    offsets = lab.frame_offsets if getattr(args, "shift_cam03", False) else {}
    return offsets.get(camera_id, 0), lab.frames - max(offsets.values(), default=0)


def offline(args: argparse.Namespace, calibration: StationCalibration) -> dict[str, Any]:
    """Without the server: BlazePose on every `60 / fps`-th frame of each view (one
    estimator per camera, as the server keeps), triangulated as a station does, measured as
    `measure` does. What the server would give with time to analyse every frame."""
    lab = lab_station()
    width = round(1088 * args.scale / 2) * 2
    height = round(1920 * args.scale / 2) * 2
    step = max(1, round(RECORDING_FPS / args.fps))
    received: dict[str, list[dict[str, Any]]] = {c: [] for c in CAMERAS}
    for camera_id, path in zip(CAMERAS, lab.videos, strict=True):
        estimator = create_estimator()
        capture = cv2.VideoCapture(str(path))
        first, count = _aligned(lab, camera_id, args)
        index = -first  # the instant of the other views this frame shows
        try:
            while index < count:
                ok, bgr = capture.read()
                if not ok:
                    break
                if index >= 0 and index % step == 0:
                    small = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA)
                    rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
                    poses = estimator.estimate(rgb, int(index * 1000 / RECORDING_FPS))
                    estimator.after_result()
                    received[camera_id].append(
                        {
                            "type": "frame_processed",
                            "frame_pts": index,
                            "pose_data": {"pose": [p.to_json() for p in poses]},
                        }
                    )
                index += 1
        finally:
            capture.release()
            estimator.close()
    seen = calibration.scaled_to({c: (width, height) for c in CAMERAS})
    gate = gate_px([(width, height)])
    for index in range(0, len(received[CAMERAS[0]]) * step, step):
        views = {}
        for camera_id in CAMERAS:
            message = next(m for m in received[camera_id] if m["frame_pts"] == index)
            keypoints = _keypoints(message)
            if keypoints is not None:
                views[camera_id] = keypoints
        result = triangulate_points(seen, views, max_reprojection_px=gate)
        received[CAMERAS[0]].append(
            {
                "type": "station_processed",
                "frames": {c: index for c in views},
                "pose3d": wire_pose3d(result),
                "mirrored": list(result.mirrored),
                "true_captured": {c: index / RECORDING_FPS for c in views},
            }
        )
    return {"received": received, "size": (width, height), "self_calibration": None}


def _self_calibrate_offline(
    data: dict[str, Any], calibration: StationCalibration
) -> dict[str, Any]:
    """The server's self-calibration (multiview.self_calibrate, the default height, 1.70 m,
    as when none is stated) on the offline keypoints, against the lab's."""
    frames = {
        c: [_keypoints(m) for m in data["received"][c] if m.get("type") == "frame_processed"]
        for c in CAMERAS
    }
    sizes = {c: tuple(data["size"]) for c in CAMERAS}
    started = time.monotonic()
    try:
        estimate = self_calibrate(dict(frames), sizes, DEFAULT_HEIGHT_M)
    except (CalibrationError, ValueError) as exc:
        return {"error": str(exc)}
    compared = compare_calibrations(estimate, calibration)
    compared["solve_s"] = round(time.monotonic() - started, 1)
    compared["inlier_share"] = estimate.details.get("inlier_share")
    compared["mirrored_views_relabelled"] = estimate.details.get("mirrored_views_relabelled", 0)
    # the lab's metres per estimate unit, times the height the estimate assumed
    compared["implied_height_m"] = round(DEFAULT_HEIGHT_M * compared["scale_to_lab"], 3)
    return compared


def compare_calibrations(
    estimate: StationCalibration, reference: StationCalibration
) -> dict[str, Any]:
    """Focal length ratios, and camera centres and orientations after the similarity
    (rotation, translation, scale) that best maps the estimate's centres onto the lab's."""
    ids = [c for c in reference.cameras if c in estimate.cameras]
    size = {c: estimate.cameras[c].size for c in ids}
    lab = reference.scaled_to(size)
    a = np.array([estimate.cameras[c].centre for c in ids])
    b = np.array([lab.cameras[c].centre for c in ids])
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    u, s, vt = np.linalg.svd((b - mean_b).T @ (a - mean_a))
    d = np.sign(np.linalg.det(u @ vt))
    rotation = u @ np.diag([1.0, 1.0, d]) @ vt
    scale = float((s * [1.0, 1.0, d]).sum() / ((a - mean_a) ** 2).sum())
    aligned = (scale * (rotation @ (a - mean_a).T)).T + mean_b
    centre_errors = np.linalg.norm(aligned - b, axis=1)
    angles = []
    for c in ids:
        relative = lab.cameras[c].R @ rotation @ estimate.cameras[c].R.T
        angles.append(float(np.degrees(np.arccos(np.clip((np.trace(relative) - 1) / 2, -1, 1)))))
    return {
        "focal_ratio": {
            c: round(float(estimate.cameras[c].K[0, 0] / lab.cameras[c].K[0, 0]), 3) for c in ids
        },
        "centre_error_m": {c: round(float(e), 3) for c, e in zip(ids, centre_errors, strict=True)},
        "orientation_error_deg": {c: round(a, 1) for c, a in zip(ids, angles, strict=True)},
        "scale_to_lab": round(scale, 3),
        "stated_height_m": estimate.details.get("body_height_m"),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    calibration = read_qualisys(lab_station().qualisys_calibration)
    if getattr(args, "offline", False):
        data = offline(args, calibration)
        result = measure(data, calibration, args.fps)
        result["offline"] = True
        if getattr(args, "self_calibration", False):
            result["self_calibration"] = _self_calibrate_offline(data, calibration)
        result["loadavg_1min"] = round(os.getloadavg()[0], 2)
        return result
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    token = secrets.token_urlsafe(24)
    load: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, KOMI_ADMIN_TOKEN=token, PYTHONUNBUFFERED="1", GLOG_minloglevel="2")
        log_path = Path(tmp) / "server.log"
        with open(log_path, "wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "komi_rtc.server", "--host", "127.0.0.1"]
                + ["--port", str(port), "--state-dir", str(Path(tmp) / "state")]
                + list(getattr(args, "server_args", None) or []),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_ready(url + "/healthz", server)
                for _ in range(args.load):
                    load.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
                data = asyncio.run(stream(url, token, calibration, args))
            finally:
                for busy in load:
                    busy.kill()
                    busy.wait()
                server.send_signal(signal.SIGINT)
                try:
                    server.wait(30)
                except subprocess.TimeoutExpired:
                    server.kill()
    result = measure(data, calibration, args.fps)
    result["stature_m_server"] = data["station"].get("stature_m")
    result["partial_groups_server"] = data["station"].get("partial_groups")
    result["load_processes"] = args.load
    result["loadavg_1min"] = round(os.getloadavg()[0], 2)
    self_cal = data.get("self_calibration")
    if self_cal is not None:
        if "error" in self_cal:
            result["self_calibration"] = self_cal
        else:
            estimate = StationCalibration.from_json(self_cal)
            result["self_calibration"] = compare_calibrations(estimate, calibration)
    return result


def report(result: dict[str, Any]) -> str:
    """The README's table rows."""
    rows = [
        "| figure | target | measured |",
        "|---|---|---|",
        "| person found in each view | >= 99% | "
        + ", ".join(f"{c} {v:.1%}" for c, v in result["found"].items())
        + " |",
        f"| groups with `pose3d` | >= 90% | {result['pose3d']:.1%} of {result['groups']} |",
        f"| bone-length CV, median of 8 | <= 0.06 | {result['bone_cv_median']} |",
        "| reprojection p95 per view (px) | <= 25 | "
        + ", ".join(f"{c} {v}" for c, v in result["reprojection_p95_px"].items())
        + " |",
        f"| groups of one instant | >= 95% | {result['one_instant']:.1%} |"
        if result["one_instant"] is not None
        else "| groups of one instant | >= 95% | - |",
        "| views taken mirrored (share of groups) | - | "
        + ", ".join(f"{c} {v:.0%}" for c, v in result["mirrored_share"].items())
        + " |",
        f"| groups with all 4 views | - | {result['full_groups']:.0%} |",
        f"| stature from the lab-calibrated `pose3d` | - | {result['stature_m_lab']} m"
        + (
            f" (the station's `stature_m`: {result['stature_m_server']} m)"
            if result.get("stature_m_server")
            else ""
        )
        + " |",
    ]
    self_cal = result.get("self_calibration")
    if self_cal and "error" not in self_cal:
        rows += [
            "| self-calibration: focal length / lab's | within 10% | "
            + ", ".join(f"{c} {v}" for c, v in self_cal["focal_ratio"].items())
            + " |",
            "| self-calibration: camera centres off (m, after similarity) | <= 0.2 | "
            + ", ".join(f"{c} {v}" for c, v in self_cal["centre_error_m"].items())
            + " |",
            "| self-calibration: orientation off (deg) | - | "
            + ", ".join(f"{c} {v}" for c, v in self_cal["orientation_error_deg"].items())
            + " |",
            f"| self-calibration: scale to the lab's (stated height {self_cal['stated_height_m']}"
            f" m) | - | {self_cal['scale_to_lab']} |",
            f"| self-calibration: joints explained, mirrored views relabelled, solve | - | "
            f"{self_cal.get('inlier_share')}, {self_cal.get('mirrored_views_relabelled')}, "
            f"{self_cal.get('solve_s')} s |",
        ]
    elif self_cal:
        rows.append(f"| self-calibration | - | failed: {self_cal['error']} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m komi_rtc.bench.real", description=__doc__)
    parser.add_argument("--seconds", type=float, default=40.0, help="streaming time (40)")
    parser.add_argument("--fps", type=float, default=15.0, help="frames a second (15)")
    parser.add_argument("--scale", type=float, default=0.5, help="of 1088x1920 (0.5)")
    parser.add_argument("--load", type=int, default=0, help="busy processes meanwhile (0)")
    parser.add_argument("--self-calibration", action="store_true")
    parser.add_argument(
        "--offline",
        action="store_true",
        help="no server: BlazePose on every frame at --fps, triangulated as a station does",
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--shift-cam03",
        action="store_true",
        help="show cam03 4 frames later than recorded (where its joints fit the others best)",
    )
    parser.add_argument(
        "--server-arg",
        dest="server_args",
        action="append",
        default=[],
        help="pass this option to the server (repeatable), e.g. --server-arg=--keyframe-interval=1",
    )
    args = parser.parse_args(argv)
    result = run(args)
    print(report(result), flush=True)
    if args.offline:
        print(f"(offline: every frame at {args.fps:g} fps, load average {result['loadavg_1min']})")
    else:
        print(
            f"({args.fps:g} fps at {result['size'][0]}x{result['size'][1]}, {args.seconds:g} s, "
            f"{args.load} busy processes, load average {result['loadavg_1min']})"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A Qualisys calibration export (`.qca.txt`, XML) as a station calibration.

Motion-capture labs calibrate their video cameras with Qualisys; Pose2Sim (David Pagnon et
al., BSD-3-Clause) converts such a file in `Pose2Sim.calibration.calib_qca_fun`, and this
reader follows its conventions so a lab's file gives the same cameras in KOMI:
- intrinsics are in 1/64 pixel (`focalLengthU`, `centerPointU`...) on the sensor; the
  principal point is moved by the video field of view's `left`/`top`, and the frame size is
  that field of view (`fov_video`);
- distortion k1, k2, p1, p2 are divided by 64 as well (as Pose2Sim does);
- `transform` is the camera's pose in the world in millimetres (rotation columns the camera
  axes); OpenCV's world-to-camera R, t follow, then a half turn about the camera's x axis
  (Qualisys cameras look along -z with y up, OpenCV's along +z with y down).
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np

from .cameras import CalibrationError, CameraModel, StationCalibration

_HALF_TURN_X = np.diag([1.0, -1.0, -1.0])  # rotation by pi about x
MAX_QCA_BYTES = 1 << 20  # a file for 32 cameras is under 100 kB


def _number(element: ElementTree.Element, name: str) -> float:
    text = element.get(name)
    if text is None:
        raise CalibrationError(f"Qualisys calibration: <{element.tag}> has no {name!r}")
    try:
        value = float(text)
    except ValueError:
        raise CalibrationError(f"Qualisys calibration: {name}={text!r} is not a number") from None
    if not math.isfinite(value):
        raise CalibrationError(f"Qualisys calibration: {name} is not finite")
    return value


def _natural_key(name: str) -> list[object]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def read_qualisys(source: str | Path | bytes) -> StationCalibration:
    """A `.qca.txt` file (path or its bytes) -> the station calibration of its video
    cameras, named by their `serial` (cam01...), in metres. Raises CalibrationError on a
    file that is not a Qualisys calibration."""
    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else source
    if len(data) > MAX_QCA_BYTES:
        raise CalibrationError("Qualisys calibration: file too large")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise CalibrationError("Qualisys calibration: document type declarations are refused")
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise CalibrationError(f"Qualisys calibration: not XML ({exc})") from None
    cameras: dict[str, CameraModel] = {}
    residuals = []
    for tag in root.findall("cameras/camera"):
        model = tag.get("model", "").lower()
        if not any(kind in model for kind in ("video", "none")):
            continue  # a marker camera: no video to analyse
        name = tag.get("serial") or f"cam{len(cameras) + 1:02d}"
        fov, intrinsic, transform = (tag.find(n) for n in ("fov_video", "intrinsic", "transform"))
        if fov is None or intrinsic is None or transform is None:
            raise CalibrationError(f"Qualisys calibration: camera {name} lacks a field")
        left, top = _number(fov, "left"), _number(fov, "top")
        width = round(_number(fov, "right") - left + 1)
        height = round(_number(fov, "bottom") - top + 1)
        fu, fv = _number(intrinsic, "focalLengthU") / 64, _number(intrinsic, "focalLengthV") / 64
        cu = _number(intrinsic, "centerPointU") / 64 - left
        cv = _number(intrinsic, "centerPointV") / 64 - top
        K = np.array([[fu, 0.0, cu], [0.0, fv, cv], [0.0, 0.0, 1.0]])
        dist = np.array(
            [
                _number(intrinsic, "radialDistortion1") / 64,
                _number(intrinsic, "radialDistortion2") / 64,
                _number(intrinsic, "tangentalDistortion1") / 64,
                _number(intrinsic, "tangentalDistortion2") / 64,
                0.0,
            ]
        )
        rows = [[_number(transform, f"r{i}{j}") for j in (1, 2, 3)] for i in (1, 2, 3)]
        axes = np.array(rows)  # as Pose2Sim: transposed once on reading, once to invert
        position = np.array([_number(transform, k) for k in ("x", "y", "z")]) / 1000.0
        if not np.allclose(axes @ axes.T, np.eye(3), atol=1e-5):
            raise CalibrationError(f"Qualisys calibration: camera {name}: not a rotation")
        R = _HALF_TURN_X @ axes
        t = _HALF_TURN_X @ (-axes @ position)
        cameras[name] = CameraModel(K, dist, R, t, (width, height))
        residual = tag.get("avg-residual")
        if residual is not None:
            residuals.append(float(residual))
    if len(cameras) < 2:
        raise CalibrationError("Qualisys calibration: fewer than two video cameras")
    ordered = {name: cameras[name] for name in sorted(cameras, key=_natural_key)}
    return StationCalibration(
        ordered,
        "file",
        0.0,
        world_frame="the Qualisys lab's frame (metres, Z up)",
        details={"source": "qualisys", "avg_residual_mm": residuals},
    )

"""A station calibration as the TOML file Pose2Sim and Anipose write and read.

One table per camera, then `[metadata]`:
    [cam01]
    name = "cam01"
    size = [1088.0, 1920.0]                      # w, h pixels
    matrix = [[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]
    distortions = [k1, k2, p1, p2]               # (a fifth, k3, is read too)
    rotation = [rx, ry, rz]                      # Rodrigues, world -> camera
    translation = [tx, ty, tz]                   # metres
    fisheye = false
    [metadata]
    adjusted = false
    error = 0.0
Camera tables become camera ids by their `name` (else the table's key); `mapping`, or a
`[komi] cameras = {cam01 = "phone_a"}` table in the file, renames them. Pose2Sim takes every
table but `[metadata]` for a camera, so a file shared with it should carry no `[komi]`
table (use the request's mapping instead); exports never write one.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import cv2
import numpy as np

from ..protocol import InvalidRequest, validate_camera_id
from .cameras import CalibrationError, CameraModel, StationCalibration

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MAX_TOML_BYTES = 256 * 1024  # 4 cameras take about 2 kB
MAX_CAMERAS = 16
_RESERVED = ("metadata", "komi")


def _vector(table: dict[str, Any], key: str, camera: str, length: tuple[int, ...]) -> np.ndarray:
    value = table.get(key)
    try:
        array = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        array = np.zeros(0)
    if array.ndim != 1 or array.size not in length or not np.isfinite(array).all():
        sizes = " or ".join(str(n) for n in length)
        raise CalibrationError(f"camera {camera}: '{key}' must be {sizes} numbers")
    return array


def _matrix(table: dict[str, Any], camera: str) -> np.ndarray:
    try:
        K = np.asarray(table.get("matrix"), np.float64)
    except (TypeError, ValueError):
        K = np.zeros(0)
    if K.shape != (3, 3) or not np.isfinite(K).all():
        raise CalibrationError(f"camera {camera}: 'matrix' must be 3 rows of 3 numbers")
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise CalibrationError(f"camera {camera}: the focal lengths must be positive")
    return K


def parse_toml(data: bytes | str, mapping: dict[str, str] | None = None) -> StationCalibration:
    """A Pose2Sim/Anipose calibration file -> a StationCalibration (method "file"). Raises
    CalibrationError with a message for the person who sent it: not TOML, too large, a
    camera lacking a field, a name that is no camera id and is not mapped."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_TOML_BYTES:
        raise CalibrationError(f"calibration file over {MAX_TOML_BYTES // 1024} KiB")
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise CalibrationError("calibration file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise CalibrationError(f"not TOML: {exc}") from None
    komi = document.get("komi", {})
    names: dict[str, str] = {}
    if isinstance(komi, dict) and isinstance(komi.get("cameras"), dict):
        names.update({str(k): str(v) for k, v in komi["cameras"].items()})
    names.update(mapping or {})
    cameras: dict[str, CameraModel] = {}
    for key, table in document.items():
        if key in _RESERVED:
            continue
        if not isinstance(table, dict):
            raise CalibrationError(f"'{key}' must be a camera table ([{key}])")
        if len(cameras) >= MAX_CAMERAS:
            raise CalibrationError(f"more than {MAX_CAMERAS} cameras")
        name = str(table.get("name", key))
        camera_id = names.get(name, names.get(key, name))
        try:
            camera_id = validate_camera_id(camera_id)
        except InvalidRequest:
            raise CalibrationError(
                f"camera {name!r} is not a camera id: map it to one "
                f"(?cameras={name[:20]}:camera_id or [komi] cameras = {{{name[:20]} = ...}})"
            ) from None
        if camera_id in cameras:
            raise CalibrationError(f"two cameras map to {camera_id!r}")
        if table.get("fisheye", False) is True:
            raise CalibrationError(f"camera {name}: fisheye lenses are not supported")
        size = _vector(table, "size", name, (2,))
        if not all(0 < v <= 16384 for v in size):
            raise CalibrationError(f"camera {name}: 'size' must be a frame's width and height")
        K = _matrix(table, name)
        dist = np.zeros(5)
        given = _vector(table, "distortions", name, (4, 5))
        dist[: given.size] = given
        rotation = _vector(table, "rotation", name, (3,))
        translation = _vector(table, "translation", name, (3,))
        R, _ = cv2.Rodrigues(rotation.reshape(3, 1))
        width, height = (round(float(v)) for v in size)
        cameras[camera_id] = CameraModel(K, dist, R, translation, (width, height))
    if len(cameras) < 2:
        raise CalibrationError("a station calibration needs at least two cameras")
    metadata = document.get("metadata", {})
    error = metadata.get("error", 0.0) if isinstance(metadata, dict) else 0.0
    error = float(error) if isinstance(error, (int, float)) and math.isfinite(error) else 0.0
    return StationCalibration(
        cameras,
        "file",
        error,
        world_frame="as in the imported file (metres)",
        details={"source": "toml", "names": {c: n for n, c in names.items() if c in cameras}},
    )


def _number(value: float) -> str:
    """A TOML float that reads back to the same double."""
    return repr(float(value))


def _array(values: Any) -> str:
    return "[ " + ", ".join(_number(v) for v in np.asarray(values, np.float64).ravel()) + "]"


def _string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped) + '"'


def _key(text: str) -> str:
    bare = all(c.isalnum() and c.isascii() or c in "_-" for c in text) and text
    return text if bare else _string(text)


def to_toml(calibration: StationCalibration) -> str:
    """The calibration as Pose2Sim writes it (one table per camera id, `[metadata]`), so
    Pose2Sim, Anipose or KOMI can read it back; floats keep every digit."""
    lines: list[str] = []
    for camera_id, cam in calibration.cameras.items():
        rotation, _ = cv2.Rodrigues(cam.R)
        K = cam.K
        dist = cam.dist.ravel()[:5]
        dist = dist[:4] if dist.size < 5 or dist[4] == 0 else dist
        lines += [
            f"[{_key(camera_id)}]",
            f"name = {_string(camera_id)}",
            f"size = [ {_number(cam.size[0])}, {_number(cam.size[1])}]",
            "matrix = [ " + ", ".join(_array(row) for row in (K[0], K[1], K[2])) + "]",
            f"distortions = {_array(dist)}",
            f"rotation = {_array(rotation)}",
            f"translation = {_array(cam.t)}",
            "fisheye = false",
            "",
        ]
    lines += [
        "[metadata]",
        "adjusted = false",
        f"error = {_number(calibration.reprojection_error_px)}",
        f"komi_method = {_string(calibration.method)}",
        f"komi_world_frame = {_string(calibration.world_frame)}",
        "",
    ]
    return "\n".join(lines)

"""Calibrating a station live: `POST /stations/{id}/calibrate` collects what the method
needs from the streaming cameras, solves it off the event loop, and installs the result;
`POST /stations/{id}/calibration` installs one made elsewhere (JSON, or a Pose2Sim/Anipose
TOML file) and `GET` gives it back in either form; `GET
/calibration/board.png` serves the ChArUco board to print or show on a screen."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from aiohttp import web

from ..multiview import (
    DEFAULT_SQUARE_M,
    CalibrationError,
    StationCalibration,
    board_png,
    calibrate_from_board,
    detect_board,
    parse_toml,
    self_calibrate,
    to_toml,
)
from ..protocol import InvalidRequest, KomiError, validate_camera_id
from .station_pairing import ViewItem
from .stations import Station

logger = logging.getLogger(__name__)

SELF_FRAMES = 90  # paired frames of the whole station: a few reps' worth
BOARD_POSES = 12  # board positions seen by at least two cameras
BOARD_EVERY_S = 0.4
TOML_TYPE = "application/toml"
MAX_MAPPED = 16  # cameras a `cameras` mapping may name


class NotCalibrated(KomiError):
    status = 404


class NotEnoughData(KomiError):
    status = 408


class StationNotReady(KomiError):
    status = 409


_BOARD_PNG: bytes | None = None


async def board_image(request: web.Request) -> web.Response:
    global _BOARD_PNG
    if _BOARD_PNG is None:
        _BOARD_PNG = await asyncio.get_running_loop().run_in_executor(None, board_png)
    return web.Response(
        body=_BOARD_PNG,
        content_type="image/png",
        headers={"Content-Disposition": 'inline; filename="komi-charuco-board.png"'},
    )


def _number(body: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InvalidRequest(f"'{key}' must be a number from {low:g} to {high:g}")
    return float(value)


async def calibrate(station: Station, body: dict[str, Any]) -> dict[str, Any]:
    method = body.get("method", "self")
    if method not in ("self", "board"):
        raise InvalidRequest("'method' must be 'self' (the person's keypoints) or 'board'")
    seconds = _number(body, "seconds", 60.0, 5.0, 300.0)
    if len(station.members) < 2:
        raise StationNotReady(
            f"station {station.id} needs at least two streaming cameras to calibrate"
        )
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    try:
        if method == "self":
            height = _number(body, "body_height_m", 1.7, 0.5, 2.5)
            fov = _number(body, "horizontal_fov_deg", 65.0, 20.0, 150.0)
            observations, sizes = await _collect_keypoints(station, seconds)
            sequences: dict[str, Sequence[np.ndarray | None]] = dict(observations)
            calibration = await loop.run_in_executor(
                None, lambda: self_calibrate(sequences, sizes, height, fov)
            )
        else:
            square = _number(body, "square_m", DEFAULT_SQUARE_M, 0.005, 1.0)
            views, sizes = await _collect_board(station, seconds)
            calibration = await loop.run_in_executor(
                None, lambda: calibrate_from_board(views, sizes, square)
            )
    except (CalibrationError, ValueError) as exc:  # e.g. the body not seen whole
        raise StationNotReady(f"calibration failed: {exc}") from None
    station.calibration = calibration
    logger.info(
        "station %s calibrated (%s) in %.1f s: %.2f px",
        station.id,
        method,
        time.monotonic() - started,
        calibration.reprojection_error_px,
    )
    return {
        "station_id": station.id,
        "calibrated": True,
        "method": calibration.method,
        "reprojection_error_px": round(float(calibration.reprojection_error_px), 2),
        "cameras": sorted(calibration.cameras),
    }


async def _collect_keypoints(
    station: Station, seconds: float
) -> tuple[dict[str, list[np.ndarray | None]], dict[str, tuple[int, int]]]:
    """Paired frames in which every camera of the station sees the person."""
    cameras = sorted(station.members)
    observations: dict[str, list[np.ndarray | None]] = {c: [] for c in cameras}
    sizes: dict[str, tuple[int, int]] = {}
    enough = asyncio.get_running_loop().create_future()

    def observe(group: list[ViewItem]) -> None:
        by_camera = {item.camera_id: item for item in group}
        if set(by_camera) != set(cameras):
            return
        keypoints = {c: by_camera[c].keypoints() for c in cameras}
        if any(k is None for k in keypoints.values()):
            return
        for c in cameras:
            observations[c].append(keypoints[c])
            sizes[c] = (by_camera[c].width, by_camera[c].height)
        if len(observations[cameras[0]]) >= SELF_FRAMES and not enough.done():
            enough.set_result(None)

    station.observers.append(observe)
    try:
        await asyncio.wait_for(enough, seconds)
    except asyncio.TimeoutError:
        got = len(observations[cameras[0]])
        raise NotEnoughData(
            f"only {got} of {SELF_FRAMES} frames showed the person to every camera within "
            f"{seconds:g} s: stand where all cameras see you whole and move (a few reps)"
        ) from None
    finally:
        station.observers.remove(observe)
    return observations, sizes


def _detect(frame: Any) -> Any:
    return detect_board(frame.to_ndarray(format="bgr24"))


async def _collect_board(
    station: Station, seconds: float
) -> tuple[dict[str, list[Any]], dict[str, tuple[int, int]]]:
    """Board detections from every camera's newest frame, a few times a second."""
    loop = asyncio.get_running_loop()
    cameras = sorted(station.members)
    views: dict[str, list[Any]] = {c: [] for c in cameras}
    sizes: dict[str, tuple[int, int]] = {}
    deadline = time.monotonic() + seconds
    poses = 0
    while poses < BOARD_POSES:
        if time.monotonic() > deadline:
            raise NotEnoughData(
                f"the board was seen by two cameras at once only {poses} of {BOARD_POSES} "
                f"times within {seconds:g} s: hold it (GET /calibration/board.png) where "
                "the cameras see it, and move it between positions"
            )
        found: dict[str, Any] = {}
        for camera_id in cameras:
            session = station.members.get(camera_id)
            latest = session.newest.latest if session is not None else None
            if latest is None:
                continue
            frame = latest.frame
            sizes[camera_id] = (frame.width, frame.height)
            found[camera_id] = await loop.run_in_executor(None, _detect, frame)
        if sum(1 for v in found.values() if v is not None) >= 2:
            poses += 1
            for camera_id in cameras:
                views[camera_id].append(found.get(camera_id))
        await asyncio.sleep(BOARD_EVERY_S)  # sampling the cameras, not synchronisation
    return views, sizes


def install(station: Station, body: dict[str, Any]) -> dict[str, Any]:
    """`POST /stations/{id}/calibration`: a calibration made elsewhere (StationCalibration
    JSON, as GET /stations shows it)."""
    try:
        calibration = StationCalibration.from_json(body)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidRequest(f"not a station calibration: {exc}") from None
    return _installed(station, calibration)


def install_toml(station: Station, data: bytes, cameras: str | None) -> dict[str, Any]:
    """A Pose2Sim/Anipose TOML file; `cameras` (the `cameras` query parameter) maps the
    file's camera names to camera ids: `cam01:phone_a,cam02:phone_b`."""
    try:
        calibration = parse_toml(data, parse_camera_mapping(cameras))
    except CalibrationError as exc:
        raise InvalidRequest(f"not a station calibration: {exc}") from None
    return _installed(station, calibration)


def parse_camera_mapping(text: str | None) -> dict[str, str]:
    """`cam01:phone_a,cam02:phone_b` -> {"cam01": "phone_a", ...}; 400 on anything else."""
    if not text:
        return {}
    mapping: dict[str, str] = {}
    for item in text.split(",")[:MAX_MAPPED]:
        name, sep, camera_id = item.partition(":")
        if not sep or not name or not camera_id:
            raise InvalidRequest(
                "'cameras' must map file camera names to camera ids: cam01:phone_a,cam02:phone_b"
            )
        mapping[name[:64]] = validate_camera_id(camera_id)
    return mapping


def _installed(station: Station, calibration: StationCalibration) -> dict[str, Any]:
    station.calibration = calibration
    logger.info(
        "station %s: calibration installed (%s, cameras %s)",
        station.id,
        calibration.method,
        ", ".join(sorted(calibration.cameras)),
    )
    return {
        "station_id": station.id,
        "calibrated": True,
        "method": calibration.method,
        "cameras": sorted(calibration.cameras),
    }


def exported(station: Station, as_toml: bool) -> tuple[str, str]:
    """`GET /stations/{id}/calibration`: (body, content type), TOML or JSON; 404 before the
    station is calibrated."""
    calibration = station.calibration
    if calibration is None:
        raise NotCalibrated(f"station {station.id} is not calibrated")
    if as_toml:
        return to_toml(calibration), TOML_TYPE
    return json.dumps(calibration.to_json()), "application/json"

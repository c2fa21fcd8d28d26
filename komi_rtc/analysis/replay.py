"""Analyse a recorded session (JSON Lines of frame_processed) through the live code path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..protocol.messages import RepCompleted
from .catalog import Catalog
from .live import LiveAnalysis


class RecordingError(ValueError):
    """A recording line is not a valid frame_processed message; names the line."""


def read_recording(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the frame_processed messages; other message types are skipped."""
    try:
        handle = open(path, encoding="utf-8")
    except OSError as exc:
        raise RecordingError(f"{path}: {exc.strerror}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                message = json.loads(line)
            except ValueError:
                raise RecordingError(f"{path}:{number}: not valid JSON (truncated file?)") from None
            if not isinstance(message, dict):
                raise RecordingError(f"{path}:{number}: a line must be a JSON object")
            if message.get("type") != "frame_processed":
                continue
            problem = _check(message)
            if problem:
                raise RecordingError(f"{path}:{number}: {problem}")
            yield message


def _check(message: dict[str, Any]) -> str | None:
    for key in ("width", "height", "timestamp"):
        if not isinstance(message.get(key), (int, float)):
            return f"'{key}' missing or not a number"
    pose_data = message.get("pose_data")
    if not isinstance(pose_data, dict) or not isinstance(pose_data.get("pose"), list):
        return "'pose_data.pose' missing"
    for pose in pose_data["pose"]:
        keypoints = pose.get("keypoints") if isinstance(pose, dict) else None
        if not isinstance(keypoints, list) or len(keypoints) != 33:
            return "each pose needs 33 keypoints"
        for keypoint in keypoints:
            if not isinstance(keypoint, dict) or not all(
                isinstance(keypoint.get(k), (int, float)) for k in ("id", "x", "y")
            ):
                return "a keypoint needs numeric 'id', 'x' and 'y'"
            if not 0 <= keypoint["id"] < 33:
                return "keypoint 'id' out of range"
    return None


def replay_analyses(
    path: Path, exercise: str, profile: str = "standard", catalog: Catalog | None = None
) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None, list[RepCompleted]]]:
    """Each recorded message with the analysis and events the live path computes for it."""
    live = LiveAnalysis("replay", catalog)
    live.set_exercise(exercise, profile)
    for message in read_recording(path):
        analysis, events = live.update(message)
        yield message, analysis, events


def analyse_recording(
    path: Path, exercise: str, profile: str = "standard", catalog: Catalog | None = None
) -> dict[str, Any]:
    live = LiveAnalysis("replay", catalog)
    live.set_exercise(exercise, profile)
    frames = 0
    for message in read_recording(path):
        live.update(message)
        frames += 1
    assert live.analyser is not None
    return {"file": str(path), "frames": frames, **live.analyser.summary()}

"""Pose estimation behind a small interface: an RGB frame in, poses with 33 keypoints out.

The default backend is MediaPipe BlazePose *full* as bundled with mediapipe 0.10.21, so it
runs with no download. `--model FILE.task` selects MediaPipe's Tasks API (several people).
An estimator keeps tracking state, so each camera gets its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..protocol import KEYPOINT_NAMES

KEYPOINT_COUNT = len(KEYPOINT_NAMES)


@dataclass(frozen=True)
class Pose:
    """One person: `keypoints` is a (33, 4) float32 array of x, y (pixels), z, confidence.
    `world`, when the model gives it, is (33, 3) metres about the hip centre (x right, y
    down, z away from the camera): BlazePose's own 3-D guess. It is not on the wire; the
    video benchmark measures what it would change."""

    keypoints: np.ndarray
    world: np.ndarray | None = None

    def to_json(self) -> dict[str, Any]:
        """The wire form: pixels to 0.1, z to 1e-4, confidence to 1e-3 (rounded in numpy,
        in float64 so the JSON shows the short decimal)."""
        values = self.keypoints.astype(np.float64)
        x, y = np.round(values[:, 0], 1).tolist(), np.round(values[:, 1], 1).tolist()
        z, c = np.round(values[:, 2], 4).tolist(), np.round(values[:, 3], 3).tolist()
        return {
            "keypoints": [
                {"id": i, "name": name, "x": x[i], "y": y[i], "z": z[i], "confidence": c[i]}
                for i, name in enumerate(KEYPOINT_NAMES)
            ]
        }


class PoseEstimator(Protocol):
    def estimate(self, rgb: np.ndarray, timestamp_ms: int) -> list[Pose]:
        """Find the poses in an (H, W, 3) uint8 RGB frame; `timestamp_ms` must increase."""
        ...

    def close(self) -> None: ...


class ModelError(RuntimeError):
    """The pose model cannot be loaded (missing or invalid file)."""


def _landmarks_to_array(landmarks: Any, width: int, height: int) -> np.ndarray:
    array = np.empty((KEYPOINT_COUNT, 4), dtype=np.float32)
    for i, lm in enumerate(landmarks):
        array[i] = (lm.x * width, lm.y * height, lm.z, lm.visibility)
    return array


class BlazePoseFull:
    """MediaPipe solutions Pose, model_complexity=1: the model shipped inside the wheel."""

    def __init__(self, min_detection_confidence: float = 0.5) -> None:
        import mediapipe as mp  # imported here: loading it takes a second

        self._pose = mp.solutions.pose.Pose(
            static_image_mode=False,
            model_complexity=1,
            smooth_landmarks=True,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=0.5,
        )

    def estimate(self, rgb: np.ndarray, timestamp_ms: int) -> list[Pose]:
        result = self._pose.process(rgb)
        if result.pose_landmarks is None:
            return []
        height, width = rgb.shape[:2]
        world = None
        if result.pose_world_landmarks is not None:
            world = np.array(
                [(lm.x, lm.y, lm.z) for lm in result.pose_world_landmarks.landmark], np.float32
            )
        return [Pose(_landmarks_to_array(result.pose_landmarks.landmark, width, height), world)]

    def close(self) -> None:
        self._pose.close()


class TaskPoseLandmarker:
    """MediaPipe Tasks PoseLandmarker from a user's `.task` file, in video mode (tracking)."""

    def __init__(self, model_path: str, max_people: int = 4) -> None:
        if not os.path.isfile(model_path):
            raise ModelError(f"pose model file not found: {model_path}")
        import mediapipe as mp
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=model_path),
            running_mode=vision.RunningMode.VIDEO,
            num_poses=max_people,
        )
        try:
            self._landmarker = vision.PoseLandmarker.create_from_options(options)
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"cannot load pose model {model_path}: {exc}") from None
        self._mp = mp
        self._last_timestamp_ms = -1

    def estimate(self, rgb: np.ndarray, timestamp_ms: int) -> list[Pose]:
        # The Tasks API refuses timestamps that do not increase.
        timestamp_ms = max(timestamp_ms, self._last_timestamp_ms + 1)
        self._last_timestamp_ms = timestamp_ms
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb)
        result = self._landmarker.detect_for_video(image, timestamp_ms)
        height, width = rgb.shape[:2]
        return [Pose(_landmarks_to_array(lms, width, height)) for lms in result.pose_landmarks]

    def close(self) -> None:
        self._landmarker.close()


def create_estimator(model_path: str | None = None) -> PoseEstimator:
    """The default needs no file; a `.task` path selects the Tasks API."""
    if model_path:
        return TaskPoseLandmarker(model_path)
    return BlazePoseFull()

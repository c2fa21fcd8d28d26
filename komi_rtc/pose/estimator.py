"""Pose estimation behind a small interface: an RGB frame in, poses with 33 keypoints out.

The default is MediaPipe's Tasks `PoseLandmarker` on BlazePose (model_choice.py builds its
bundle from files already here), tracking one person per camera with the frames' real times.
`--model FILE.task` takes a user's bundle and looks for several people; `--legacy-pose` keeps
wave 2's legacy solutions API. An estimator keeps tracking state, so each camera gets its own.
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
        """Find the poses in an (H, W, 3) uint8 RGB frame; `timestamp_ms`: its capture time."""
        ...

    @property
    def person_id(self) -> int | None:
        """Which person this camera follows (changes when it follows someone else); None
        when the estimator does not tell people apart."""
        ...

    def after_result(self) -> bool:
        """Work the last frame's result does not wait for, done once it has been sent (the
        worker calls it before taking the next frame); whether there was any."""
        ...

    def close(self) -> None: ...


class ModelError(RuntimeError):
    """The pose model cannot be loaded (missing or invalid file)."""


def _landmarks_to_array(landmarks: Any, width: int, height: int) -> np.ndarray:
    array = np.empty((KEYPOINT_COUNT, 4), dtype=np.float32)
    for i, lm in enumerate(landmarks):
        array[i] = (lm.x * width, lm.y * height, lm.z, lm.visibility)
    return array


class BlazePoseLegacy:
    """MediaPipe's legacy solutions Pose, model_complexity=1 (full): wave 2's path, kept for
    `--legacy-pose` and the benchmark's comparison. It ignores `timestamp_ms`: the legacy API
    steps its clock by 33,333 us per call, so its smoothing assumes 30 fps whatever the real
    interval."""

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

    @property
    def person_id(self) -> int | None:
        return None

    def after_result(self) -> bool:
        return False

    def close(self) -> None:
        self._pose.close()


BlazePoseFull = BlazePoseLegacy  # the name the benchmarks and tests of wave 2 use


class MonotonicMilliseconds:
    """The Tasks API refuses a timestamp that does not increase. Frames carry their capture
    time, which can repeat (two frames in one millisecond) or step back (a camera's clock
    re-synchronised): such a frame gets the last time plus 1 ms, so the model's smoothing
    still sees the real intervals everywhere else."""

    def __init__(self) -> None:
        self.last: int | None = None

    def next(self, timestamp_ms: int) -> int:
        if self.last is not None and timestamp_ms <= self.last:
            timestamp_ms = self.last + 1
        self.last = timestamp_ms
        return timestamp_ms


class TaskPoseLandmarker:
    """MediaPipe Tasks PoseLandmarker in video mode: it tracks the person from frame to frame
    and smooths with the frames' real times. `num_poses=1` tracks one person (the detector runs
    only when they are lost); more runs the detector on every frame (about 1.7x the time).
    `video=False`: image mode, no state from frame to frame (one can serve every camera)."""

    def __init__(self, model_path: str, num_poses: int = 1, video: bool = True) -> None:
        if not os.path.isfile(model_path):
            raise ModelError(f"pose model file not found: {model_path}")
        import mediapipe as mp
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=model_path),
            running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE,
            num_poses=num_poses,
            output_segmentation_masks=False,
        )
        try:
            self._landmarker = vision.PoseLandmarker.create_from_options(options)
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"cannot load pose model {model_path}: {exc}") from None
        self._mp = mp
        self._video = video
        self.clock = MonotonicMilliseconds()
        self.timestamps_ms: list[int] = []  # the last few times given to the model (tests)

    def estimate(self, rgb: np.ndarray, timestamp_ms: int) -> list[Pose]:
        timestamp_ms = self.clock.next(timestamp_ms)
        self.timestamps_ms = [*self.timestamps_ms[-7:], timestamp_ms]
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb)
        if self._video:
            result = self._landmarker.detect_for_video(image, timestamp_ms)
        else:
            result = self._landmarker.detect(image)
        height, width = rgb.shape[:2]
        worlds = result.pose_world_landmarks or []
        poses = []
        for i, landmarks in enumerate(result.pose_landmarks):
            world = None
            if i < len(worlds):
                world = np.array([(lm.x, lm.y, lm.z) for lm in worlds[i]], np.float32)
            poses.append(Pose(_landmarks_to_array(landmarks, width, height), world))
        return poses

    @property
    def person_id(self) -> int | None:
        return None

    def after_result(self) -> bool:
        return False

    def close(self) -> None:
        self._landmarker.close()

"""KOMI RTC: real-time exercise coaching over WebRTC with per-frame pose estimation."""

from .config import ServerConfig
from .pose import Pose, PoseEstimator, create_estimator
from .pose_worker import PoseWorkerPool
from .protocol import KEYPOINT_NAMES

__all__ = [
    "KEYPOINT_NAMES",
    "Pose",
    "PoseEstimator",
    "PoseWorkerPool",
    "ServerConfig",
    "create_estimator",
]

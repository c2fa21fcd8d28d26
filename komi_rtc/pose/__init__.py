"""Pose estimation: the BlazePose estimator, the choice of model, the keyframes and optical
flow between them, and the worker processes that run it all, one tracker per camera, frames
handed over through shared memory."""

from .estimator import ModelError, Pose, PoseEstimator
from .model_choice import POSE_MODELS, PoseSettings, create_estimator
from .worker_pool import CameraPoseChannel, PoseResult, PoseWorkerPool, WorkerFailed

__all__ = [
    "POSE_MODELS",
    "CameraPoseChannel",
    "ModelError",
    "Pose",
    "PoseEstimator",
    "PoseResult",
    "PoseSettings",
    "PoseWorkerPool",
    "WorkerFailed",
    "create_estimator",
]

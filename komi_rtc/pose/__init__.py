"""Pose estimation: the BlazePose estimator and the worker processes that run it, one
estimator per camera, frames handed over through shared memory."""

from .estimator import ModelError, Pose, PoseEstimator, create_estimator
from .worker_pool import CameraPoseChannel, PoseWorkerPool, WorkerFailed

__all__ = [
    "CameraPoseChannel",
    "ModelError",
    "Pose",
    "PoseEstimator",
    "PoseWorkerPool",
    "WorkerFailed",
    "create_estimator",
]

"""Synthetic people: a kinematic body model and its rendering as video, for the demo and benchmarks.

`skeleton` (joint angles -> 33 keypoints) -> `motions` (each exercise as rest/peak joints) ->
`performance` (reps over time) -> `renderer` (a shaded person in a room) -> `exercise_video`
(an endless frame source with per-frame truth).
"""

from .exercise_video import ExercisingPersonSource, FrameTruth
from .motions import MOTIONS, pose_at
from .performance import ExercisePerformance, RepTiming, Tempo
from .renderer import Look, ViewPoint, fit_look, image_keypoints, render_frame, render_room
from .skeleton import Camera, Joints, forward_kinematics, project

__all__ = [
    "MOTIONS",
    "Camera",
    "ExercisePerformance",
    "ExercisingPersonSource",
    "FrameTruth",
    "Joints",
    "Look",
    "RepTiming",
    "Tempo",
    "ViewPoint",
    "fit_look",
    "forward_kinematics",
    "image_keypoints",
    "pose_at",
    "project",
    "render_frame",
    "render_room",
]

"""A rendered person exercising, as a frame source for the demo camera and video benchmarks.

`ExercisingPersonSource` matches the media layer's `FrameSource` (description, read(),
close()) by duck typing, so a machine without a webcam streams someone whose reps the
analysis can count. Every frame's truth (projected keypoints, reps ended) is available.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from .motions import MOTIONS
from .performance import ExercisePerformance, RepTiming, Tempo
from .renderer import Look, ViewPoint, fit_look, image_keypoints, render_frame
from .skeleton import forward_kinematics


@dataclass(frozen=True)
class FrameTruth:
    """What a frame shows: `keypoints` (33, 3) are x, y in pixels and depth in body heights
    (+ farther from the camera, so the far side of a profile has the larger depth)."""

    index: int
    time: float  # seconds
    keypoints: np.ndarray
    reps_done: int


class ExercisingPersonSource:
    """An endless video (RGB frames) of a person doing `exercise` from `view`.

    `view` is "front", "side_left" (the camera sees the person's left side), "side_right" or
    "side" (= "side_left"). `exercise` and `catalog_view` tell a server which exercise to
    preset. `read()` never blocks on a clock: the caller paces it at `fps`.
    Raises ValueError for an exercise the motion table does not know.
    """

    def __init__(
        self,
        width: int,
        height: int,
        fps: float,
        exercise: str = "squat",
        view: str = "front",
        look: Look | None = None,
        reps_per_set: int = 5,
        tempo: Tempo = Tempo(),
        errors: Collection[str] = (),
    ) -> None:
        if exercise not in MOTIONS:
            raise ValueError(f"no motion for exercise {exercise!r}; known: {sorted(MOTIONS)}")
        self.viewpoint = ViewPoint.named("side_left" if view == "side" else view)
        self.exercise = exercise
        self.catalog_view = self.viewpoint.catalog_view
        self.fps = fps
        self.performance = ExercisePerformance(
            exercise, self.catalog_view, reps_per_set, tempo, errors
        )
        self._width, self._height = width, height
        steps = np.linspace(0.0, self.performance.loop_seconds, 24, endpoint=False)
        poses = [forward_kinematics(self.performance.joints_at(float(t))) for t in steps]
        self.look = fit_look(look or Look(), poses, self.viewpoint, width, height)
        self.description = f"rendered person: {exercise}, {view} view"
        self.frame_index = 0

    def read(self) -> np.ndarray:
        """The next frame, (height, width, 3) RGB uint8."""
        points = forward_kinematics(self.performance.joints_at(self.frame_index / self.fps))
        self.frame_index += 1
        return render_frame(points, self.viewpoint, self.look, self._width, self._height)

    def render_at(self, t: float) -> np.ndarray:
        """The frame at `t` seconds into the performance (several views of one person: give
        each the same `t`)."""
        points = forward_kinematics(self.performance.joints_at(t))
        return render_frame(points, self.viewpoint, self.look, self._width, self._height)

    def truth(self, index: int) -> FrameTruth:
        """The truth of frame `index` (0 is the first `read()`)."""
        t = index / self.fps
        points = forward_kinematics(self.performance.joints_at(t))
        keypoints = image_keypoints(points, self.viewpoint, self.look, self._width, self._height)
        return FrameTruth(index, t, keypoints, len(self.performance.reps_until(t)))

    def reps_until(self, index: int) -> list[RepTiming]:
        """The reps that ended by frame `index`; a rep's end frame is ceil(end * fps)."""
        return self.performance.reps_until(index / self.fps)

    def close(self) -> None:
        pass

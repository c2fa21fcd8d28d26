"""Per-camera analysis state. The live path and the replay command both feed it
`frame_processed` messages, so a recording replays to exactly the live numbers."""

from __future__ import annotations

from typing import Any

from ..protocol import InvalidRequest
from ..protocol.messages import ExerciseSet, RepCompleted
from .catalog import PROFILES, Catalog, default_catalog
from .counter import ExerciseAnalyser
from .geometry import keypoints_from_json


def frame_time(message: dict[str, Any]) -> float:
    """The time base of analysis: when the server received the frame (seconds)."""
    timing = message.get("timing")
    if isinstance(timing, dict) and isinstance(timing.get("receive"), (int, float)):
        return float(timing["receive"])
    return float(message["timestamp"])


def main_pose(message: dict[str, Any]) -> dict[str, Any] | None:
    """The person analysed in a `frame_processed` message: the largest one in view."""
    return largest_person(message["pose_data"]["pose"])


def largest_person(people: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not people:
        return None
    if len(people) == 1:
        return people[0]

    def size(pose: dict[str, Any]) -> float:
        xs = [k["x"] for k in pose["keypoints"]]
        ys = [k["y"] for k in pose["keypoints"]]
        return (max(xs) - min(xs)) * (max(ys) - min(ys))

    return max(people, key=size)


class LiveAnalysis:
    def __init__(self, camera_id: str, catalog: Catalog | None = None) -> None:
        self.camera_id = camera_id
        self.catalog = catalog or default_catalog()
        self.analyser: ExerciseAnalyser | None = None

    @property
    def exercise(self) -> str | None:
        return self.analyser.exercise.id if self.analyser else None

    def set_exercise(self, exercise_id: str | None, profile: str = "standard") -> None:
        """Start counting afresh (raises InvalidRequest for an unknown exercise or profile)."""
        if exercise_id is None:
            self.analyser = None
            return
        exercise = self.catalog.get(exercise_id)
        if exercise is None:
            known = ", ".join(sorted(self.catalog.exercises))
            raise InvalidRequest(f"unknown exercise {exercise_id[:64]!r}; known: {known}")
        if profile not in PROFILES:
            raise InvalidRequest(f"'profile' must be one of {', '.join(PROFILES)}")
        self.analyser = ExerciseAnalyser(
            exercise, self.catalog.profiles[profile], self.catalog.messages
        )

    def apply_set_exercise(self, fields: dict[str, Any]) -> ExerciseSet:
        """Validate and apply `set_exercise` (channel or REST); raises InvalidRequest."""
        if "exercise" not in fields:
            raise InvalidRequest("'exercise' is required (an id, or null to stop)")
        exercise = fields["exercise"]
        profile = fields.get("profile", "standard")
        if exercise is not None and not isinstance(exercise, str):
            raise InvalidRequest("'exercise' must be a string (or null to stop)")
        if not isinstance(profile, str):
            raise InvalidRequest("'profile' must be a string")
        self.set_exercise(exercise or None, profile)
        return ExerciseSet(self.camera_id, self.exercise, profile if self.analyser else None)

    def update(self, message: dict[str, Any]) -> tuple[dict[str, Any] | None, list[RepCompleted]]:
        """Analyse a `frame_processed` message (live or recorded): see `analyse`."""
        return self.analyse(
            message["pose_data"]["pose"],
            int(message["width"]),
            int(message["height"]),
            frame_time(message),
        )

    def analyse(
        self, people: list[dict[str, Any]], width: int, height: int, t: float
    ) -> tuple[dict[str, Any] | None, list[RepCompleted]]:
        """The `analysis` field for one frame (None without an exercise) and the reps it
        completed. `people`: poses as on the wire; `t`: when the frame arrived (seconds)."""
        if self.analyser is None:
            return None, []
        pose = largest_person(people)
        keypoints = keypoints_from_json(pose) if pose is not None else None
        analysis, reps = self.analyser.update(keypoints, width, height, t)
        exercise = self.analyser.exercise.id
        return analysis, [RepCompleted(self.camera_id, exercise, rep) for rep in reps]

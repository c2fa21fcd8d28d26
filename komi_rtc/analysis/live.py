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
    """The person analysed in one `frame_processed` message, judged on that frame alone."""
    return MainPerson().choose(
        message["pose_data"]["pose"], int(message["width"]), int(message["height"])
    )


Box = tuple[float, float, float, float]


def _box(pose: dict[str, Any]) -> Box:
    xs = [k["x"] for k in pose["keypoints"]]
    ys = [k["y"] for k in pose["keypoints"]]
    return min(xs), min(ys), max(xs), max(ys)


def _overlap(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class MainPerson:
    """Which of several people the analysis follows: the one it followed last frame while
    they are still there (a passer-by does not take over), else the largest and most
    central one."""

    STICKY_OVERLAP = 0.3

    def __init__(self) -> None:
        self._last: Box | None = None

    def choose(
        self, people: list[dict[str, Any]], width: int, height: int
    ) -> dict[str, Any] | None:
        if not people:
            self._last = None
            return None
        boxes = [_box(p) for p in people]
        if self._last is not None:
            last = self._last
            best = max(range(len(people)), key=lambda i: _overlap(boxes[i], last))
            if _overlap(boxes[best], last) >= self.STICKY_OVERLAP:
                self._last = boxes[best]
                return people[best]

        def prominence(i: int) -> float:
            x0, y0, x1, y1 = boxes[i]
            area = max(0.0, x1 - x0) * max(0.0, y1 - y0)
            off_centre = abs((x0 + x1) / 2 - width / 2) / max(width, 1)  # 0 .. 0.5
            return area * (1.0 - off_centre)

        chosen = max(range(len(people)), key=prominence)
        self._last = boxes[chosen]
        return people[chosen]


class LiveAnalysis:
    def __init__(self, camera_id: str, catalog: Catalog | None = None) -> None:
        self.camera_id = camera_id
        self.catalog = catalog or default_catalog()
        self.analyser: ExerciseAnalyser | None = None
        self._main_person = MainPerson()

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
        pose = self._main_person.choose(people, width, height)
        keypoints = keypoints_from_json(pose) if pose is not None else None
        analysis, reps = self.analyser.update(keypoints, width, height, t)
        exercise = self.analyser.exercise.id
        return analysis, [RepCompleted(self.camera_id, exercise, rep) for rep in reps]

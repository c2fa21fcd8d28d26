"""The per-camera analysis state the live path and the replay command share."""

from __future__ import annotations

from typing import Any

from ..newest_frame import ReceivedFrame
from ..pose import Pose


class LiveAnalysis:
    def __init__(self, camera_id: str) -> None:
        self.camera_id = camera_id
        self.exercise: str | None = None

    def update(
        self, poses: list[Pose], item: ReceivedFrame, now: float
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """Return the `analysis` field for this frame (None without an exercise) and events."""
        return None, []

    def apply_set_exercise(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Validate and apply `set_exercise`; raises InvalidRequest."""
        from ..protocol import InvalidRequest

        raise InvalidRequest("exercise analysis is not available yet")

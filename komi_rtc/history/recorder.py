"""One camera's sets, recorded as they happen for the person tied to the camera.

A set runs from a `set_exercise` to the next one, `"exercise": null`, the camera leaving,
the person being untied, or 60 s without anyone in view (docs/protocol.md, "People and
history"). Every call here only queues a write on the history thread: the frame path
never waits for the database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..analysis.catalog import Catalog
from ..protocol.messages import PersonBest, WireMessage
from .store import History, SetHandle

logger = logging.getLogger(__name__)

OUT_OF_VIEW_S = 60.0


class SetRecorder:
    def __init__(
        self,
        camera_id: str,
        history: History,
        catalog: Catalog,
        announce: Callable[[WireMessage], None] | None = None,
    ) -> None:
        """`announce`: sends a message to the camera and its monitors (the person's best)."""
        self.camera_id = camera_id
        self.announce = announce
        self._history = history
        self._catalog = catalog
        self.person: str | None = None
        self._exercise: str | None = None
        self._profile: str | None = None
        self._set: SetHandle | None = None
        self._last_in_view: float | None = None
        self._out_of_view = False  # the set ended because nobody was in view
        self._half_reps = 0
        self._hold_second = 0

    @property
    def recording(self) -> bool:
        return self._set is not None

    def person_changed(self, person: str | None, now: float) -> None:
        if person == self.person:
            return
        self._end(now, "person changed")
        self.person = person
        if person is not None:
            self._history.write(self._history.store.ensure_person, person, now)
            self._start(now)

    def exercise_changed(self, exercise: str | None, profile: str | None, now: float) -> None:
        self._end(now, "exercise changed" if exercise else "exercise stopped")
        self._exercise, self._profile = exercise, profile
        self._start(now)

    def frame(
        self, analysis: dict[str, Any] | None, reps: list[dict[str, Any]], in_view: bool, now: float
    ) -> None:
        if in_view:
            self._last_in_view = now
            if self._out_of_view:  # back after a break: a new set of the same exercise
                self._out_of_view = False
                self._start(now)
        elif (
            self._set is not None
            and self._last_in_view is not None
            and now - self._last_in_view > OUT_OF_VIEW_S
        ):
            self._end(now, "nobody in view for 60 s")
            self._out_of_view = True
        handle = self._set
        if handle is None or self.person is None:
            return
        store = self._history.store
        for rep in reps:
            self._history.write(store.add_rep, handle, self.person, rep, now)
        if analysis is None or analysis.get("exercise") != self._exercise:
            return
        half = analysis.get("half_reps")
        if isinstance(half, int) and half != self._half_reps:
            self._half_reps = half
            self._history.write(store.set_half_reps, handle, half)
        total = analysis.get("hold_total_seconds")
        good = analysis.get("hold_seconds")
        if isinstance(total, (int, float)) and int(total) > self._hold_second:
            good_s = float(good) if isinstance(good, (int, float)) else 0.0
            was_good = analysis.get("phase") == "hold" and not analysis.get("feedback")
            for second in range(self._hold_second + 1, int(total) + 1):
                self._history.write(
                    store.add_hold_second, handle, second, now, was_good, good_s, float(total)
                )
            self._hold_second = int(total)

    def close(self, now: float) -> None:
        self._end(now, "camera left")

    def _start(self, now: float) -> None:
        if self.person is None or self._exercise is None or self._set is not None:
            return
        known = self._catalog.get(self._exercise)
        kind = known.kind if known is not None else "reps"
        self._set = SetHandle()
        self._half_reps = 0
        self._hold_second = 0
        self._last_in_view = now
        self._history.write(
            self._history.store.start_set,
            self._set,
            self.person,
            self._exercise,
            self._profile,
            kind,
            self.camera_id,
            now,
        )
        logger.info("[%s] recording a %s set for %s", self.camera_id, self._exercise, self.person)
        if self.announce is not None:
            announce, person, exercise = self.announce, self.person, self._exercise

            def send(best: dict[str, Any] | None) -> None:
                announce(PersonBest(self.camera_id, person, exercise, best))

            self._history.query(send, self._history.store.best, person, exercise, kind, self._set)

    def _end(self, now: float, reason: str) -> None:
        if self._set is None:
            return
        self._history.write(self._history.store.end_set, self._set, now, reason)
        logger.info(
            "[%s] %s set for %s ended: %s", self.camera_id, self._exercise, self.person, reason
        )
        self._set = None

"""A station's set is one set (issue 24, item 6): the person tied to a station's cameras gets
one set per station set in history, with the fused count and every view's errors, and no
set per camera."""

from __future__ import annotations

from typing import Any

from komi_rtc.analysis.catalog import default_catalog
from komi_rtc.history.recorder import SetRecorder
from komi_rtc.history.store import History, HistoryStore
from komi_rtc.media.capture_clock import CaptureClock
from komi_rtc.server.station_pairing import ViewItem
from komi_rtc.server.stations import Station

SEEN = [{"keypoints": [{"x": 320.0, "y": 240.0, "confidence": 0.9}]}]  # someone in view


class StationCamera:
    """What a station asks of a camera session, with the session's own set recorder (the
    real one, recording into the same history) so a per-camera set would show."""

    def __init__(self, camera_id: str, person: str, history: History) -> None:
        self.camera_id = camera_id
        self.person = person
        self.station: Any = None
        self.capture_clock = CaptureClock()
        self.sent: list[str] = []
        self.recorder = SetRecorder(camera_id, history, default_catalog())
        self.recorder.person_changed(person, 100.0)

    def set_exercise(self, fields: dict[str, Any], source: str) -> None:
        counted = self.station is not None and self.station.counts_reps
        exercise = None if counted else fields["exercise"]
        self.recorder.exercise_changed(exercise, fields.get("profile"), 100.0)

    def broadcast_text(self, text: str) -> None:
        self.sent.append(text)


def _rep(index: int, ended: float, errors: list[str]) -> dict[str, Any]:
    return {
        "index": index,
        "score": 100.0 - 30 * len(errors),
        "peak_angle_deg": 85.0,
        "rom_deg": 80.0,
        "ended_at": ended,
        "errors": errors,
        "good": not errors,
    }


async def test_a_station_set_is_one_set_with_the_fused_count_and_every_views_errors(tmp_path):
    store = HistoryStore(f"sqlite:///{tmp_path / 'h.sqlite3'}")
    store.prepare(0.0)
    history = History(store)
    station = Station("gym", default_catalog(), lambda: history)
    side = StationCamera("side", "bo", history)
    front = StationCamera("front", "bo", history)
    try:
        station.join(side)
        station.join(front)
        station.set_exercise({"exercise": "squat"}, "test")
        side_view = {"exercise": "squat", "view": "side", "feedback": []}
        front_view = {"exercise": "squat", "view": "front", "feedback": []}
        for index in (1, 2, 3):
            t = 100.0 + 3 * index
            errors = ["knees_cave"] if index == 2 else []
            # both views see every rep; only the front one sees the knees cave
            station.on_view(
                ViewItem("side", t, index, SEEN, 640, 480, side_view, [_rep(index, t, [])])
            )
            station.on_view(
                ViewItem("front", t, index, SEEN, 640, 480, front_view, [_rep(index, t, errors)])
            )
        station.set_exercise({"exercise": None}, "test")
        await history.flush()
        sets = await history.read(store.sets, "bo")
    finally:
        station.close()
        await history.close()
    assert len(sets) == 1, sets  # not one per camera
    [one] = sets
    assert one["camera_id"] == "gym" and one["exercise"] == "squat"
    assert one["reps"] == 3 and one["ended_at"] is not None
    assert one["errors"].get("knees_cave") == 1  # the front view's error, in the fused rep

"""Stations: 2-4 cameras on one person, their frames paired by capture time and analysed as
one (docs/protocol.md, "Stations").

Each camera keeps its own session, pose worker and analysis; a station only listens to
their analysed frames. Frames are paired by capture time (media/capture_clock.py) within
half a frame interval; a group waits for its missing views at most `MAX_WAIT_S`, then goes
on with the views that are there. Each group becomes one `station_processed` message to
every camera of the station and their monitors; a station exercise is counted once
(analysis/fusion.py) and each rep is one `rep_completed` carrying `station_id`. The person
tied to the station's cameras gets one set per station set in history (the fused count,
every view's errors), recorded under the station's id, and none per camera.
"""

from __future__ import annotations

import itertools
import logging
import statistics
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from ..analysis.catalog import Catalog
from ..analysis.fusion import StationFusion, ViewFrame
from ..history.recorder import SetRecorder
from ..history.store import History
from ..media.capture_clock import ClockOffsets, fundamental_step
from ..multiview import (
    StationCalibration,
    estimate_stature,
    gate_px,
    joint_angles_3d,
    triangulate_points,
    wire_pose3d,
)
from ..protocol import InvalidRequest, KomiError, validate_camera_id
from ..protocol.messages import (
    RepCompleted,
    StationExerciseSet,
    StationProcessed,
    WireMessage,
    encode,
)
from .limits import ServerFull
from .station_instants import SharedInstants
from .station_pairing import MIN_INTERVAL_S, Pairer, ViewItem

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_CAMERAS = 4
MAX_STATIONS = 64  # stations nobody streams to are dropped first to make room
STATURE_POSES = 150  # the last 3-D poses the person's stature is estimated from


class UnknownStation(KomiError):
    status = 404


class Station:
    """Owned by the registry; holds no task of its own (its expiry timer is cancelled by
    `close`)."""

    def __init__(
        self,
        station_id: str,
        catalog: Catalog,
        history: Callable[[], History | None] = lambda: None,
    ) -> None:
        """`history`: the server's history once its database is ready (None without)."""
        self.id = station_id
        self._catalog = catalog
        self._history = history
        self._recorder: SetRecorder | None = None  # the person's station sets
        self.members: dict[str, Any] = {}  # camera_id -> CameraSession
        self.wanted: list[str] = []  # ids named by REST or streaming here now
        self.listed: set[str] = set()  # ids a monitor named by REST: their place is kept
        self.pairer = Pairer(self._on_group)
        self.fusion: StationFusion | None = None
        self.exercise: str | None = None
        self.profile: str | None = None
        self.calibration: StationCalibration | None = None
        self.sync_errors_ms: deque[float] = deque(maxlen=300)
        self.groups = 0
        self.partial_groups = 0
        self.observers: list[Callable[[list[ViewItem]], None]] = []  # e.g. self-calibration
        # (calibration, frame sizes, the calibration scaled to them)
        self._scaled: tuple[StationCalibration, Any, StationCalibration] | None = None
        self._size_problem = ""
        self._poses3d: deque[np.ndarray] = deque(maxlen=STATURE_POSES)
        self._last_pose3d: tuple[float, np.ndarray] | None = None  # (captured, (33, 4))
        self.instants = SharedInstants()  # which instant a busy server analyses
        self._clocks: dict[str, ClockOffsets] = {}  # clock id -> the offsets its cameras share

    @property
    def camera_ids(self) -> list[str]:
        return sorted(set(self.wanted) | set(self.members))

    @property
    def counts_reps(self) -> bool:
        return self.fusion is not None

    def join(self, session: Any) -> None:
        if session.camera_id not in self.members and len(self.members) >= MAX_CAMERAS:
            raise InvalidRequest(f"station {self.id} already has {MAX_CAMERAS} cameras")
        self.members[session.camera_id] = session
        if session.camera_id not in self.wanted:
            self.wanted.append(session.camera_id)
        session.station = self
        clock_id = getattr(session, "clock_id", None)
        if clock_id is not None:  # cameras of one clock estimate its offset together
            session.capture_clock.share(self._clocks.setdefault(clock_id, ClockOffsets()))
        self.pairer.set_cameras(sorted(self.members))
        if self.exercise is not None:
            session.set_exercise({"exercise": self.exercise, "profile": self.profile}, "station")
        logger.info(
            "[%s] joined station %s (%d cameras)", session.camera_id, self.id, len(self.members)
        )

    def leave(self, session: Any) -> None:
        """A camera that joined by its offer frees its place; one a monitor listed keeps
        it, to join again when it streams (nobody else can plant an id here for later)."""
        camera_id: str = session.camera_id
        clock = session.capture_clock
        if self.members.get(camera_id) is session:
            del self.members[camera_id]
            setattr(session, "station", None)  # noqa: B010 (a session, typed Any here)
            clock.share(None)
            self.instants.forget(camera_id)
            if camera_id not in self.listed and camera_id in self.wanted:
                self.wanted.remove(camera_id)
            self.pairer.set_cameras(sorted(self.members))
            logger.info("[%s] left station %s", camera_id, self.id)

    def set_exercise(self, fields: dict[str, Any], source: str) -> dict[str, Any]:
        """Analyse the station as one: every camera runs the exercise (for its view's
        metrics), the station counts once."""
        exercise = fields.get("exercise")
        profile = fields.get("profile", "standard")
        if exercise is not None and (
            not isinstance(exercise, str) or self._catalog.get(exercise) is None
        ):
            raise InvalidRequest(f"unknown exercise {str(exercise)[:64]!r}")
        known = self._catalog.get(exercise) if exercise else None
        # counting moves to the station first: the cameras then record no sets of their own
        self.fusion = StationFusion(known) if known is not None else None
        self.exercise = exercise
        self.profile = profile if exercise else None
        for session in self.members.values():
            session.set_exercise({"exercise": exercise, "profile": profile}, f"station {self.id}")
        recorder = self._set_recorder()
        if recorder is not None:
            recorder.person_changed(self.person, time.time())
            recorder.exercise_changed(exercise if known else None, self.profile, time.time())
        logger.info("station %s: exercise %s (%s)", self.id, exercise, source)
        reply = StationExerciseSet(self.id, exercise, self.profile, sorted(self.members))
        self._broadcast(reply)
        return reply.to_wire()

    def on_view(self, item: ViewItem) -> None:
        self.pairer.add(item)

    def frame_to_analyse(self, camera_id: str, candidates: list[tuple[float, T]]) -> T | None:
        """Which of a camera's last frames (capture time, frame; oldest first) its worker
        should analyse: the newest, or, on a busy server whose station cameras all name one
        clock (one process's), the frame of the instant the station's cameras analyse this
        round (station_instants.py), or None while that instant has not arrived from this
        camera. Phones and other cameras of their own clocks keep the newest frame (a shared
        grid tried on two unsynchronised cameras halved their pairs)."""
        newest_time, newest = candidates[-1]
        clocks = {getattr(s, "clock_id", None) for s in self.members.values()}
        if len(clocks) != 1 or None in clocks or len(candidates) < 2:
            return newest
        # the capture interval, from this camera's received frames (the pairer learns it
        # from analysed frames, which a busy server analyses seconds apart)
        times = [t for t, _ in candidates]
        steps = [b - a for a, b in itertools.pairwise(times) if MIN_INTERVAL_S <= b - a]
        interval = fundamental_step(steps) or 2.0 * self.pairer.tolerance_s
        analysed_step = self.pairer.analysed_step_s
        busy = analysed_step is not None and analysed_step >= 1.5 * interval
        received = {}
        for member_id, session in self.members.items():
            captured = session.newest_capture_time()
            if captured is not None:
                received[member_id] = captured
        received[camera_id] = newest_time
        return self.instants.choose(
            camera_id, candidates, received, interval, busy, self.pairer.wait_s
        )

    async def wait_for_round(self, camera_id: str) -> None:
        """Before a camera takes a worker (see `frame_to_analyse`)."""
        await self.instants.wait_turn(camera_id)

    def _broadcast(self, message: WireMessage) -> None:
        text = encode(message)
        for session in self.members.values():
            session.broadcast_text(text)

    def _on_group(self, group: list[ViewItem]) -> None:
        self.groups += 1
        if len(group) < len(self.members):
            self.partial_groups += 1
        captured = [item.captured for item in group]
        sync_error_ms = (max(captured) - min(captured)) * 1000.0
        if len(group) > 1:
            self.sync_errors_ms.append(sync_error_ms)
        for observer in list(self.observers):
            observer(group)
        analysis: dict[str, Any] | None = None
        reps: list[dict[str, Any]] = []
        pose3d, mirrored = self._pose3d(group)
        angles3d = None
        if pose3d is not None:
            angles3d = joint_angles_3d(pose3d)
            if self.fusion is not None:
                self.fusion.observe_angles_3d(statistics.fmean(captured), angles3d)
        if self.fusion is not None:
            frames = [
                ViewFrame(i.camera_id, i.captured, i.analysis, i.reps, bool(i.poses)) for i in group
            ]
            now = time.time()
            analysis, reps = self.fusion.update(frames, now)
            recorder = self._set_recorder()
            if recorder is not None:  # one set per station set: the fused count and errors
                recorder.person_changed(self.person, now)
                in_view = any(item.poses for item in group)
                recorder.frame(analysis, reps, in_view, now)
        if analysis is not None and angles3d is not None:
            analysis["angles3d"] = angles3d
        self._broadcast(
            StationProcessed(
                station_id=self.id,
                timestamp=time.time(),
                frames={i.camera_id: i.pts for i in group},
                sync_error_ms=round(sync_error_ms, 1),
                analysis=analysis,
                pose3d=pose3d,
                captured={i.camera_id: round(i.captured, 4) for i in group},
                mirrored=mirrored,
            )
        )
        if self.fusion is not None:
            for rep in reps:
                source = rep.get("source") or group[0].camera_id
                self._broadcast(RepCompleted(source, self.fusion.exercise.id, rep, self.id))

    def _pose3d(self, group: list[ViewItem]) -> tuple[list[dict[str, Any]] | None, list[str]]:
        """The group's 3-D keypoints (None without a calibration or two views) and the views
        whose labelling was taken mirrored."""
        calibration = self.calibration
        if calibration is None or len(group) < 2:
            return None, []
        views = {}
        sizes = {}
        for item in group:
            keypoints = item.keypoints()
            if keypoints is not None and item.camera_id in calibration.cameras:
                views[item.camera_id] = keypoints
                sizes[item.camera_id] = (item.width, item.height)
        if len(views) < 2:
            return None, []
        try:
            seen = self._seen_as(sizes)
            if seen is None:
                return None, []
            gate = gate_px(list(sizes.values()))  # the gate follows the frame size
            captured = statistics.fmean(item.captured for item in group)
            previous = None
            if self._last_pose3d is not None and 0 < captured - self._last_pose3d[0] <= 1.0:
                previous = self._last_pose3d[1]  # tells two views' labellings apart
            result = triangulate_points(seen, views, max_reprojection_px=gate, previous=previous)
            pose = np.column_stack([result.points, result.confidence])
            self._poses3d.append(pose)
            self._last_pose3d = (captured, pose)
            return wire_pose3d(result), list(result.mirrored)
        except (ValueError, np.linalg.LinAlgError) as exc:
            logger.warning("station %s: triangulation failed: %s", self.id, exc)
            return None, []

    def _seen_as(self, sizes: dict[str, tuple[int, int]]) -> StationCalibration | None:
        """The calibration scaled to the frame sizes the cameras send (a phone lowers its
        resolution under congestion); None, said once, when a size does not fit it."""
        key = tuple(sorted(sizes.items()))
        if self.calibration is None:
            return None
        if (
            self._scaled is None
            or self._scaled[0] is not self.calibration
            or (self._scaled[1] != key)
        ):
            try:
                scaled = self.calibration.scaled_to(sizes)
            except ValueError as exc:
                if self._size_problem != str(exc):
                    self._size_problem = str(exc)
                    logger.warning("station %s: no 3-D pose: %s", self.id, exc)
                return None
            self._scaled = (self.calibration, key, scaled)
        return self._scaled[2]

    @property
    def person(self) -> str | None:
        """The person tied to the station: the one its cameras are tied to (the first by
        id when they disagree)."""
        people = sorted({s.person for s in self.members.values() if s.person})
        return people[0] if people else None

    def _set_recorder(self) -> SetRecorder | None:
        if self._recorder is None:
            history = self._history()
            if history is not None:
                self._recorder = SetRecorder(self.id, history, self._catalog, self._broadcast)
        return self._recorder

    def sync_error_ms(self) -> float | None:
        return round(statistics.fmean(self.sync_errors_ms), 1) if self.sync_errors_ms else None

    def summary(self) -> dict[str, Any]:
        errors = sorted(self.sync_errors_ms)
        return {
            "id": self.id,
            "cameras": self.camera_ids,
            "calibrated": self.calibration is not None,
            "sync_error_ms": self.sync_error_ms(),
            "sync_error_p95_ms": round(errors[int(0.95 * (len(errors) - 1))], 1)
            if errors
            else None,
            "streaming": sorted(self.members),
            "exercise": self.exercise,
            "profile": self.profile,
            "reps": self.fusion.reps if self.fusion is not None else None,
            "groups": self.groups,
            "partial_groups": self.partial_groups,
            "calibration": self.calibration.to_json() if self.calibration is not None else None,
            "stature_m": self._stature_m(),
        }

    def _stature_m(self) -> float | None:
        """The person's height from the last 3-D poses, when the calibration is metric by
        itself (a board or a file; a self-calibration's scale is the stated height)."""
        if self.calibration is None or self.calibration.method == "self" or not self._poses3d:
            return None
        try:
            return round(estimate_stature(list(self._poses3d)), 3)
        except ValueError:
            return None

    def close(self) -> None:
        self.pairer.close()
        self.instants.close()
        if self._recorder is not None:
            self._recorder.close(time.time())


class StationRegistry:
    def __init__(
        self, catalog: Catalog, history: Callable[[], History | None] = lambda: None
    ) -> None:
        self._catalog = catalog
        self._history = history
        self._stations: dict[str, Station] = {}

    def get(self, station_id: str) -> Station:
        station = self._stations.get(station_id)
        if station is None:
            raise UnknownStation(f"unknown station: {station_id}")
        return station

    def ensure(self, station_id: str) -> Station:
        station_id = validate_station_id(station_id)
        if station_id not in self._stations:
            for idle in [s for s in self._stations.values() if not s.members]:
                if len(self._stations) < MAX_STATIONS:
                    break
                idle.close()  # a station nobody streams to makes room
                del self._stations[idle.id]
            if len(self._stations) >= MAX_STATIONS:
                raise ServerFull(f"the server has its maximum of {MAX_STATIONS} stations")
            self._stations[station_id] = Station(station_id, self._catalog, self._history)
        return self._stations[station_id]

    def all(self) -> list[Station]:
        return [self._stations[k] for k in sorted(self._stations)]

    def join(self, station_id: str, session: Any) -> Station:
        current = getattr(session, "station", None)
        if current is not None and current.id != station_id:
            current.leave(session)
        station = self.ensure(station_id)
        station.join(session)
        return station

    def lists(self, station_id: str, camera_id: str) -> bool:
        """A monitor named this camera in the station (it may join by naming the station)."""
        station = self._stations.get(station_id)
        return station is not None and camera_id in station.listed

    def camera_arrived(self, session: Any) -> None:
        """A camera that a station named by REST is waiting for."""
        for station in self._stations.values():
            if session.camera_id in station.listed and session.camera_id not in station.members:
                station.join(session)
                return

    def camera_left(self, session: Any) -> None:
        station = getattr(session, "station", None)
        if station is not None:
            station.leave(session)

    def set_cameras(self, station_id: str, cameras: list[str], live: dict[str, Any]) -> Station:
        if not 1 <= len(cameras) <= MAX_CAMERAS:
            raise InvalidRequest(f"'cameras' must list 1 to {MAX_CAMERAS} distinct camera ids")
        cameras = [validate_camera_id(c) for c in cameras]
        if len(set(cameras)) != len(cameras):
            raise InvalidRequest(f"'cameras' must list 1 to {MAX_CAMERAS} distinct camera ids")
        station = self.ensure(station_id)
        for camera_id in list(station.members):
            if camera_id not in cameras:
                station.leave(station.members[camera_id])
        station.wanted = list(cameras)
        station.listed = set(cameras)
        for camera_id in cameras:
            session = live.get(camera_id)
            if session is not None:
                self.join(station_id, session)
        return station

    def close(self) -> None:
        for station in self._stations.values():
            station.close()


def validate_station_id(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidRequest("a station id must be a string")
    try:
        return validate_camera_id(value)
    except InvalidRequest:
        raise InvalidRequest(
            "a station id must be 1 to 64 characters of letters, digits, '_', '-' or '.', "
            "not starting with '-' and not '.' or '..'"
        ) from None

"""Which person a camera follows, when the model tracks one and others walk through.

BlazePose tracking one person (`num_poses=1`) keeps them while it sees them; when it loses
them (a jump into the sun, a turn) its detector takes whoever scores best, often someone
walking past. Measured on Sports2D's two-person demo: the tracker switched from the person
on the box to the walker when he jumped down. So a pose is accepted only near where the
followed person was last seen and nearer to it than to anyone else seen lately (the detector
for several people looks around every 2-2.5 s while others are about, every 6 s alone, and
whenever the followed person is missing or turns up far from where they were); only after
`GRACE_S` without them does the camera follow someone new (and says so: `person_id`
changes).

Appearance does not tell them apart there: the torso's colour histogram of the jumper on the
box against the sun and on the grass differs as much as the two people's do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .estimator import Pose, TaskPoseLandmarker

# a pose whose centre is this many of the person's heights from where they were last seen is
# theirs, plus REACH_PER_S for each second they have been missing (a jump down from a box
# lands about two heights away within a second)
REACH = 0.6
REACH_PER_S = 2.0
# missing this long, the person has left: follow whoever comes (the person on Sports2D's
# box, lost by the model in the air on a loaded machine, was found again 3.0 s later)
GRACE_S = 4.0
# while following, who else is there is checked this often (the detector for several people
# costs about 35 ms): every 2 s, and never more than once in 20 model frames, so a server
# short of CPU (a model frame every second or two) does not pay it on every frame. It runs
# after the frame's result is sent (`after_result`): the followed person's pose is the
# tracker's either way, and inline it made one camera's p99 latency 52 ms instead of 26
LOOK_AROUND_S = 2.0
LOOK_AROUND_FRAMES = 20
OTHERS_KEPT_S = 3.0  # where someone else was seen (and is going) counts this long
# ... but, while someone else is about, 0.5 s later whatever the model frames, so that they
# are still known when the next look comes: on a loaded box (a few frames analysed a second)
# 20 model frames took over 10 s, the walker was forgotten and taken for the person (a suite
# run). Alone (nobody else seen for OTHERS_KEPT_S), every 6 s: the look finds nobody, and
# every 2.5 s its 35-45 ms would come to about 1.2 ms of each frame at 15 fps
LOOK_AROUND_ALONE_S = 6.0
LOOK_AROUND_LATEST_S = 0.5
MATCH_PX_PER_S = 400.0  # an other seen again: at most this far from where they were going

Box = tuple[float, float, float, float]


def pose_box(pose: Pose) -> Box | None:
    """x0, y0, x1, y1 (pixels) of all 33 keypoints: a backlit person's keypoints all have a
    low visibility, and where BlazePose puts them is still where the person is."""
    points = pose.keypoints[:, :2]
    if not np.isfinite(points).all():
        return None
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


def _centre(box: Box) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


@dataclass(frozen=True)
class _Other:
    """Someone else, where they were seen and how fast they went (pixels per ms): a walker
    seen a second ago is expected further along their way."""

    centre: np.ndarray
    seen_ms: int
    velocity: np.ndarray

    def at(self, time_ms: int) -> np.ndarray:
        return self.centre + self.velocity * (time_ms - self.seen_ms)

    def recent(self, time_ms: int) -> bool:
        return time_ms - self.seen_ms <= OTHERS_KEPT_S * 1000

    @staticmethod
    def seen(centre: np.ndarray, time_ms: int, before: list[_Other]) -> _Other:
        """Seen now at `centre`; moving as from the nearest earlier sighting that fits."""
        best: _Other | None = None
        for other in before:
            elapsed = time_ms - other.seen_ms
            if 0 < elapsed and other.recent(time_ms):
                off = float(np.linalg.norm(other.at(time_ms) - centre))
                if off <= MATCH_PX_PER_S * elapsed / 1000 and (
                    best is None or off < float(np.linalg.norm(best.at(time_ms) - centre))
                ):
                    best = other
        if best is None:
            return _Other(centre, time_ms, np.zeros(2))
        return _Other(centre, time_ms, (centre - best.centre) / (time_ms - best.seen_ms))


class FollowedPerson:
    """The followed person's last box and when it was seen; `person_id` counts the people
    followed on this camera (1 for the first, 0 before anyone)."""

    def __init__(self) -> None:
        self.person_id = 0
        self._box: Box | None = None
        self._seen_ms: int | None = None
        self._others: list[_Other] = []
        self.looked_ms: int | None = None  # when the detector for several people last ran
        self._frames_since_look = 0

    def is_theirs(self, pose: Pose, time_ms: int) -> bool:
        box = pose_box(pose)
        if box is None:
            return False
        if self._box is None or self._seen_ms is None:
            return True
        distance, height = self._from_last(box)
        missing_s = max(0.0, (time_ms - self._seen_ms) / 1000)
        if distance > (REACH + REACH_PER_S * missing_s) * height:
            return False
        other = _centre(box)
        return all(
            float(np.linalg.norm(other - someone.at(time_ms))) >= distance
            for someone in self._others
            if someone.recent(time_ms)
        )

    def near_last_seen(self, pose: Pose) -> bool:
        """Within REACH of where the person was last seen, without the allowance for time
        missing: a pose further away is theirs only if nobody else is nearer (the caller
        checks against everyone the detector for several people finds)."""
        box = pose_box(pose)
        if box is None or self._box is None:
            return box is not None
        distance, height = self._from_last(box)
        return distance <= REACH * height

    def _from_last(self, box: Box) -> tuple[float, float]:
        """How far `box`'s centre is from the followed person's last box's (pixels), and
        that box's size (its longer side): set only once they have been seen."""
        assert self._box is not None
        x0, y0, x1, y1 = self._box
        return float(np.linalg.norm(_centre(box) - _centre(self._box))), max(y1 - y0, x1 - x0, 1.0)

    def gone(self, time_ms: int) -> bool:
        """Missing for longer than GRACE_S (or never seen): anyone may be followed."""
        return self._seen_ms is None or time_ms - self._seen_ms > GRACE_S * 1000

    def choose(self, poses: list[Pose], time_ms: int) -> Pose | None:
        """The followed person among everyone the detector found (`poses`), or, once they
        are gone, the biggest one; the others are remembered."""
        self.looked_ms = time_ms
        self._frames_since_look = 0
        chosen: Pose | None = None
        if not self.gone(time_ms):
            theirs = [p for p in poses if self.is_theirs(p, time_ms)]
            chosen = min(theirs, key=self._distance) if theirs else None
        else:
            boxes = [(pose_box(p), p) for p in poses]
            sized = [((b[2] - b[0]) * (b[3] - b[1]), p) for b, p in boxes if b is not None]
            chosen = max(sized, key=lambda item: item[0])[1] if sized else None
        seen_now = [
            _centre(b)
            for p in poses
            if p is not chosen
            and (chosen is None or not _same(p, chosen))  # the detector's double of them
            and (b := pose_box(p)) is not None
            and not self._where_they_were(b)  # them, even when not taken this time
        ]
        self._others = [
            *[o for o in self._others if o.recent(time_ms)],
            *[_Other.seen(c, time_ms, self._others) for c in seen_now],
        ]
        return chosen

    def _distance(self, pose: Pose) -> float:
        box = pose_box(pose)
        if box is None or self._box is None:
            return 0.0
        return abs(box[0] + box[2] - self._box[0] - self._box[2]) + abs(
            box[1] + box[3] - self._box[1] - self._box[3]
        )

    def _where_they_were(self, box: Box) -> bool:
        """Within half their height of the followed person's last place: them, not another."""
        if self._box is None:
            return False
        distance, height = self._from_last(box)
        return distance < 0.5 * height

    def look_around_due(self, time_ms: int) -> bool:
        """Called once per model frame: whether to look for the others now."""
        self._frames_since_look += 1
        if self.looked_ms is None:  # the first look comes a while after the first sighting
            self.looked_ms = time_ms
            return False
        elapsed_s = (time_ms - self.looked_ms) / 1000
        about = any(other.recent(time_ms) for other in self._others)
        every_s = LOOK_AROUND_S if about else LOOK_AROUND_ALONE_S
        return elapsed_s >= every_s and (
            self._frames_since_look >= LOOK_AROUND_FRAMES
            or elapsed_s >= every_s + LOOK_AROUND_LATEST_S
        )

    def saw(self, pose: Pose, time_ms: int) -> None:
        """`pose` is the followed person at `time_ms` (a new person after `gone`)."""
        if self.gone(time_ms):
            self.person_id += 1
        self._box = pose_box(pose) or self._box
        self._seen_ms = time_ms


class OnePersonLandmarker:
    """One person per camera, tracked (`num_poses=1`: the detector runs only when they are
    lost). A pose away from where the followed person was (the tracker jumped to someone
    walking past), or none, sends the frame to the detector for several people, which looks
    for the followed person there (followed_person.py)."""

    LOOK_FOR_PEOPLE = 4

    def __init__(self, model_path: str) -> None:
        self._tracker = TaskPoseLandmarker(model_path, num_poses=1)
        self._model_path = model_path
        self._followed = FollowedPerson()
        # a frame to look around in once its result is sent: RGB (a copy), time, their pose
        self._look_later: tuple[np.ndarray, int, Pose] | None = None

    @property
    def timestamps_ms(self) -> list[int]:
        return self._tracker.timestamps_ms

    @property
    def person_id(self) -> int | None:
        return self._followed.person_id or None

    def estimate(self, rgb: np.ndarray, timestamp_ms: int) -> list[Pose]:
        poses = self._tracker.estimate(rgb, timestamp_ms)
        time_ms = self._tracker.clock.last or 0
        followed = self._followed
        gone = followed.gone(time_ms)
        if gone and not poses:
            return []  # nobody followed, nobody found: the tracker's detector looked already
        tracked = poses and (gone or followed.is_theirs(poses[0], time_ms))
        chosen: Pose | None
        if tracked and (gone or followed.near_last_seen(poses[0])):
            chosen = poses[0]
            if followed.look_around_due(time_ms):  # the tracker's pose stays: look later
                self._look_later = (rgb.copy(), time_ms, chosen)
        else:
            # missing, or found only thanks to the time missing (far from where they were
            # last seen): the person is whoever of everyone here is theirs and nearest
            everyone = _searcher(self._model_path).estimate(rgb, time_ms)
            if tracked:
                everyone = [poses[0], *[p for p in everyone if not _same(p, poses[0])]]
            chosen = followed.choose(everyone, time_ms)
        if chosen is None:
            return []
        followed.saw(chosen, time_ms)
        return [chosen]

    def after_result(self) -> bool:
        """Look around in the frame kept by `estimate`, if one was: the others seen there are
        noted. Returns whether it looked."""
        if self._look_later is None:
            return False
        rgb, time_ms, theirs = self._look_later
        self._look_later = None
        everyone = _searcher(self._model_path).estimate(rgb, time_ms)
        self._followed.choose([theirs, *[p for p in everyone if not _same(p, theirs)]], time_ms)
        return True

    def close(self) -> None:
        self._look_later = None
        self._tracker.close()


def _same(a: Pose, b: Pose) -> bool:
    """Two detections of one person: their boxes overlap by half."""
    box_a, box_b = pose_box(a), pose_box(b)
    if box_a is None or box_b is None:
        return False
    w = min(box_a[2], box_b[2]) - max(box_a[0], box_b[0])
    h = min(box_a[3], box_b[3]) - max(box_a[1], box_b[1])
    if w <= 0 or h <= 0:
        return False
    smaller = min(
        (box_a[2] - box_a[0]) * (box_a[3] - box_a[1]), (box_b[2] - box_b[0]) * (box_b[3] - box_b[1])
    )
    return w * h >= 0.5 * max(smaller, 1.0)


_SEARCHERS: dict[str, TaskPoseLandmarker] = {}


def _searcher(model_path: str) -> TaskPoseLandmarker:
    """The detector for several people, in image mode (no state), made once per process and
    shared by its cameras: a worker with 8 cameras loads one, not 8 (each load costs about
    as much CPU as 20 frames)."""
    searcher = _SEARCHERS.get(model_path)
    if searcher is None:
        searcher = _SEARCHERS[model_path] = TaskPoseLandmarker(
            model_path, OnePersonLandmarker.LOOK_FOR_PEOPLE, video=False
        )
    return searcher


def close_searchers() -> None:
    """Close the shared detectors (the pose worker does, as it stops)."""
    for searcher in _SEARCHERS.values():
        searcher.close()
    _SEARCHERS.clear()

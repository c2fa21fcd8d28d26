"""The model only where it is needed: per camera, BlazePose runs on keyframes and pyramidal
Lucas-Kanade optical flow carries the 33 keypoints through the frames between.

BlazePose costs about 20 ms of CPU per 640x480 frame; flow on 33 points of the Y plane costs
1-2 ms. Simulated on a rendered squat, the model every 3rd frame plus flow is as close to the
truth as the model on every frame (median 5.7 against 5.6 px), where holding the last pose is
not (6.8 px). Flow is trusted only where it is sure: each point is tracked forward and back
again and must land where it started; when too few do, or the person moves fast, or the
analysis is near a turning point of a repetition (where a peak must not be smoothed away), the
model runs on this very frame or the next.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .estimator import Pose, PoseEstimator

# Lucas-Kanade: a 21x21 window on 4 pyramid levels (3 above the frame) follows up to about
# 60 px of motion between frames at 640x480
_LK_WINDOW = (21, 21)
_LK_LEVELS = 3
# The flow runs on the part of the frame around the person: its cost is mostly building the
# image pyramids, in proportion to the area (33 points on a whole 640x480 frame 1.6-2.0 ms of
# CPU; 1.0 for one point). The margin beyond the keypoints' box covers a fast frame's motion
# (FAST: 12% of the height). Measured (bench/keyframes.py --real): the crop is 8-44% of the
# frame, the model runs on the same frames as with the whole frame's flow and the error
# against every-frame full is the same (within 0.02 px median); flow 1.4-2.8 ms a frame
# instead of 2.7-8.8 (the machine loaded).
CROP_MARGIN_PX = 32
CROP_MARGIN_OF_SIZE = 0.1
_LK_CRITERIA = (3, 20, 0.03)  # cv2.TERM_CRITERIA_EPS | COUNT, 20 iterations, 0.03 px

# a point tracked there and back must land this close to its start: 1.5 px, or 0.5% of the
# person's height on a big person (real video is noisier than rendered at the same size)
FORWARD_BACKWARD_PX = 1.5
FORWARD_BACKWARD_OF_HEIGHT = 0.005
SEEN = 0.5  # a keypoint this visible must be tracked by the flow (others are carried along)
MIN_TRACKED_SHARE = 0.6  # of the seen keypoints; fewer: the flow failed, run the model now
# the flow is sure when 90% of the seen keypoints come back within this share of the limit
# above (on rendered video most frames, on the real videos a tenth to a quarter): then a
# moving person's interval may be one frame longer
SURE_SHARE = 0.2

# motion per frame, as a share of the person's height (their box), of the fastest tenth of
# the keypoints: below STILL the interval may grow past the usual maximum; above FAST the
# model runs on the next frame
# (tuned on the rendered squat and the Pose2Sim and Sports2D videos: python -m
# komi_rtc.bench.keyframes --real)
STILL = 0.004
SLOW = 0.06
FAST = 0.12
TURN_MIN_DEGREES = 2.0  # a joint angle moving less than this a frame is not "moving"
# a turn's model frame is served until the angle has moved this far from it: a rise slowing
# towards the top "slowed sharply" three or four times (the angle comes a frame late, from
# model and flow frames in turn) and called the model on every other frame
TURN_REARM_DEGREES = 15.0


@dataclass
class KeyframeSchedule:
    """When to run the model next, from how the person moves (pure, no frames: unit-tested).
    `max_interval`: the longest gap between model frames while the person moves (1 disables
    the flow), one more while the flow is sure of itself; a still person gets twice that."""

    max_interval: int = 3
    interval: int = 1
    since_model: int = 0
    _signal: list[float] = field(default_factory=list)
    _turn_served: bool = False
    _flow_sure: bool = False  # on the last frame the flow carried
    _served_at: float | None = None  # the angle when the last turn had its model frame

    def model_due(self, has_pose: bool) -> bool:
        """Whether this frame needs the model: no pose to carry, or the interval is over."""
        return (
            self.max_interval <= 1
            or not has_pose
            or self.since_model + 1 >= self.interval
            or self.turn_near()
        )

    def ran_model(self, motion: float | None) -> None:
        """A model frame; `motion` measured between it and the last pose, if there was one."""
        self.since_model = 0
        if self._near_turn():
            self._turn_served = True
            self._served_at = self._signal[-1]
        self._adapt(motion)

    def tracked(self, motion: float, sure: bool = False) -> None:
        """A frame carried by the flow; `sure`: its keypoints came back where they started
        (SURE_SHARE)."""
        self.since_model += 1
        self._flow_sure = sure
        self._adapt(motion)

    def _adapt(self, motion: float | None) -> None:
        """`motion`: per frame, as a share of the person's height (see STILL, SLOW, FAST)."""
        longer = int(self._flow_sure and self.max_interval > 1)
        if motion is None or motion >= FAST:
            self.interval = 1
        elif motion >= SLOW:
            self.interval = min(self.max_interval, 2)
        elif motion >= STILL:
            self.interval = self.max_interval + longer
        else:
            self.interval = 2 * self.max_interval

    def note_signal(self, degrees: float | None) -> None:
        """The analysis's joint angle as last known (the server passes it, a frame or two
        old): a turning point is near when the angle slows down sharply or turns. Each turn
        calls the model once; moving on, TURN_REARM_DEGREES away from where it was served,
        arms it again."""
        if degrees is None:
            self._signal.clear()
            return
        self._signal = [*self._signal[-2:], degrees]
        if len(self._signal) == 3 and not self._near_turn():
            away = self._served_at is None or abs(degrees - self._served_at) >= TURN_REARM_DEGREES
            self._turn_served = self._turn_served and not away

    def turn_near(self) -> bool:
        return not self._turn_served and self._near_turn()

    def _near_turn(self) -> bool:
        if len(self._signal) < 3:
            return False
        a, b, c = self._signal
        before, now = b - a, c - b
        if abs(before) < TURN_MIN_DEGREES:
            return False
        turned = before * now < 0
        slowing = abs(now) < 0.5 * abs(before)
        return turned or slowing


@dataclass(frozen=True)
class TrackedPoses:
    """One frame's poses and how they were found: `tracked` when the flow carried them."""

    poses: list[Pose]
    tracked: bool
    since_model: int
    person_id: int | None = None  # whom the camera follows (followed_person.py)


class KeyframeTracker:
    """One camera's model plus its optical flow, in the pose worker. The frame arrives as its
    luma plane (for the flow) and a way to get RGB (for the model), so a tracked frame is
    never converted to RGB at all."""

    def __init__(self, estimator: PoseEstimator, max_interval: int = 3) -> None:
        self.estimator = estimator
        self.schedule = KeyframeSchedule(max_interval=max_interval)
        self._previous_luma: np.ndarray | None = None
        self._last: Pose | None = None

    def process(
        self,
        luma: np.ndarray | None,
        rgb: Callable[[], np.ndarray],
        timestamp_ms: int,
        signal: float | None = None,
    ) -> TrackedPoses:
        """`luma`: the frame's Y plane (uint8, H x W); `rgb`: converts the frame to RGB, called
        only on a model frame; `signal`: the analysis's joint angle, for turning points."""
        self.schedule.note_signal(signal)
        motion: float | None = None
        if luma is not None and not self.schedule.model_due(self._last is not None):
            assert self._last is not None and self._previous_luma is not None
            carried = _carry(self._previous_luma, luma, self._last)
            if carried is not None:
                pose, motion, sure = carried
                self.schedule.tracked(motion, sure)
                self._previous_luma = luma.copy()
                self._last = pose
                return TrackedPoses(
                    [pose], True, self.schedule.since_model, self.estimator.person_id
                )
        poses = self.estimator.estimate(rgb(), timestamp_ms)
        if len(poses) == 1 and self._last is not None:
            motion = _motion(self._last, poses[0], 1)  # _last: the previous frame's pose
        self.schedule.ran_model(motion)
        # only one person is carried: with several (a `.task` for several people) every
        # frame goes to the model
        self._last = poses[0] if len(poses) == 1 else None
        self._previous_luma = luma.copy() if luma is not None and self._last is not None else None
        return TrackedPoses(poses, False, 0, self.estimator.person_id if poses else None)

    def after_result(self) -> bool:
        """Once the frame's result is sent: the estimator's work that does not hold it up."""
        return self.estimator.after_result()

    def close(self) -> None:
        self.estimator.close()


def _carry(
    previous: np.ndarray, current: np.ndarray, pose: Pose
) -> tuple[Pose, float, bool] | None:
    """The pose moved by the flow from `previous` to `current`, its motion (fastest tenth
    of the keypoints, per frame, as a share of the person's height) and whether the flow was
    sure (SURE_SHARE); None when the flow fails. Keypoints the flow lost move with the
    median of the others; z and confidence stay."""

    x0, y0, x1, y1 = _crop(pose, current.shape[1], current.shape[0])
    origin = np.array([x0, y0], np.float32)
    points = np.ascontiguousarray(pose.keypoints[:, :2] - origin, np.float32).reshape(-1, 1, 2)
    previous, current = previous[y0:y1, x0:x1], current[y0:y1, x0:x1]
    forward, status = _flow(previous, current, points)
    back, back_status = _flow(current, previous, forward)
    start, moved = points.reshape(-1, 2) + origin, forward.reshape(-1, 2) + origin
    error = np.linalg.norm(back.reshape(-1, 2) + origin - start, axis=1)
    limit = max(FORWARD_BACKWARD_PX, FORWARD_BACKWARD_OF_HEIGHT * _height(pose))
    good = (status.ravel() == 1) & (back_status.ravel() == 1) & (error < limit)
    seen = pose.keypoints[:, 3] >= SEEN
    if seen.sum() < 4 or (good & seen).sum() < MIN_TRACKED_SHARE * seen.sum():
        return None
    shift = moved - start
    median_shift = np.median(shift[good], axis=0)
    shift[~good] = median_shift
    keypoints = pose.keypoints.copy()
    keypoints[:, :2] = start + shift
    speed = np.linalg.norm(shift[good & seen], axis=1)
    sure = bool(np.percentile(error[seen], 90) < SURE_SHARE * limit)
    return Pose(keypoints), float(np.percentile(speed, 90)) / _height(pose), sure


def _crop(pose: Pose, width: int, height: int) -> tuple[int, int, int, int]:
    """The part of the frame the flow looks at, x0, y0, x1, y1: the keypoints' box (all 33,
    seen or not) grown by the margins, within the frame."""
    xy = pose.keypoints[:, :2]
    low, high = xy.min(axis=0), xy.max(axis=0)
    margin = CROP_MARGIN_PX + CROP_MARGIN_OF_SIZE * float((high - low).max())
    x0, y0 = np.maximum(np.floor(low - margin), 0).astype(int)
    x1 = int(min(np.ceil(high[0] + margin), width))
    y1 = int(min(np.ceil(high[1] + margin), height))
    if x1 - x0 < 2 * _LK_WINDOW[0] or y1 - y0 < 2 * _LK_WINDOW[1]:
        return 0, 0, width, height  # nobody in the frame to speak of: the whole frame
    return int(x0), int(y0), x1, y1


def _flow(
    source: np.ndarray, target: np.ndarray, points: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pyramidal Lucas-Kanade from `source` to `target`: the points moved and their status."""
    import cv2

    moved, status, _ = cv2.calcOpticalFlowPyrLK(  # type: ignore[call-overload]
        source,
        target,
        points,
        None,
        winSize=_LK_WINDOW,
        maxLevel=_LK_LEVELS,
        criteria=_LK_CRITERIA,
    )
    return moved, status


def _height(pose: Pose) -> float:
    seen_y = pose.keypoints[pose.keypoints[:, 3] >= SEEN, 1]
    return max(float(seen_y.max() - seen_y.min()), 1.0) if len(seen_y) else 1.0


def _motion(before: Pose, after: Pose, frames: int) -> float:
    """The fastest tenth of the seen keypoints' motion per frame, as a share of the height."""
    seen = (before.keypoints[:, 3] >= SEEN) & (after.keypoints[:, 3] >= SEEN)
    if not seen.any():
        return FAST
    speed = np.linalg.norm(after.keypoints[seen, :2] - before.keypoints[seen, :2], axis=1)
    return float(np.percentile(speed, 90)) / frames / _height(after)

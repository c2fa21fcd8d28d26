"""Issue 27: the frames' real times reach the model, the model choice, keyframes with optical
flow between them (and no peak lost between two), and a worker that never waits for a
result to be sent before it gets the next frame."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from contract_client import person_frame
from harness import wait_for

from komi_rtc.analysis.live import LiveAnalysis
from komi_rtc.media.newest_frame import ReceivedFrame
from komi_rtc.pose.estimator import ModelError, Pose
from komi_rtc.pose.followed_person import OnePersonLandmarker
from komi_rtc.pose.keyframes import (
    FAST,
    SLOW,
    STILL,
    KeyframeSchedule,
    KeyframeTracker,
    _crop,
)
from komi_rtc.pose.model_choice import (
    LANDMARK_SHA256,
    PoseSettings,
    bundle_path,
    create_estimator,
    landmark_model_path,
)
from komi_rtc.pose.worker_pool import PoseWorkerPool
from komi_rtc.server.camera_session import CameraSession
from komi_rtc.server.frame_results import frame_time_ms, movement_signal
from komi_rtc.synthetic.exercise_video import ExercisingPersonSource
from komi_rtc.synthetic.performance import Tempo

# ------------------------------------------------------------------ frame times


def _received(pts: int, camera_time: float | None = None) -> ReceivedFrame:
    frame = av.VideoFrame(64, 48, "yuv420p")
    return ReceivedFrame(frame, pts, 0.0, 0.0, None, camera_time)


def test_a_frames_model_time_is_its_capture_time_in_the_cameras_clock():
    # WebRTC: pts in 90 kHz from the first frame; a skipped frame leaves a real gap
    assert frame_time_ms(_received(0)) == 0
    assert frame_time_ms(_received(6000)) == 66
    assert frame_time_ms(_received(18000)) == 200
    # the original protocol's own `timestamp` (seconds) wins over the pts the server made up
    assert frame_time_ms(_received(6000, camera_time=1700000000.25)) == 1700000000250


def test_capture_times_reach_the_model_increasing_even_when_they_repeat_or_step_back():
    estimator = create_estimator(PoseSettings(model="lite"))
    assert isinstance(estimator, OnePersonLandmarker)
    tracker = KeyframeTracker(estimator, max_interval=1)  # the model on every frame
    try:
        for index, time_ms in enumerate([1000, 1066, 1066, 1050, 1200]):
            rgb, _ = person_frame(index)
            found = tracker.process(None, lambda rgb=rgb: rgb, time_ms)
            assert len(found.poses) == 1 and not found.tracked
    finally:
        tracker.close()
    # the real gaps are kept; a repeated or earlier time becomes the last plus 1 ms
    assert estimator.timestamps_ms[-5:] == [1000, 1066, 1067, 1068, 1200]


# ------------------------------------------------------------------ model choice


def test_lite_and_full_are_bundled_offline_from_shipped_files_and_find_the_person(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("KOMI_MODEL_DIR", str(tmp_path))
    shipped = landmark_model_path("lite")
    assert shipped.stat().st_size == 2_819_824
    recorded = (shipped.parent / "pose_landmark_lite.tflite.sha256").read_text().split()[0]
    assert hashlib.sha256(shipped.read_bytes()).hexdigest() == recorded == LANDMARK_SHA256["lite"]
    assert (shipped.parent / "LICENSE").read_text().lstrip().startswith("Apache License")
    rgb, placement = person_frame(0)
    for model in ("lite", "full"):
        bundle = bundle_path(model)
        assert bundle.parent == tmp_path and bundle.suffix == ".task"
        assert bundle_path(model) == bundle  # built once, then reused
        estimator = create_estimator(PoseSettings(model=model))
        try:
            poses = estimator.estimate(rgb, 0)
        finally:
            estimator.close()
        assert len(poses) == 1
        nose_x, nose_y = poses[0].keypoints[0, :2]
        assert placement.x < nose_x < placement.x + placement.size
        assert placement.y < nose_y < placement.y + placement.size / 2


def test_heavy_without_its_download_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("KOMI_MODEL_DIR", str(tmp_path))
    with pytest.raises(ModelError, match=r"setup\.sh --heavy"):
        create_estimator(PoseSettings(model="heavy"))
    env = dict(os.environ, KOMI_MODEL_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "komi_rtc.server", "--pose-model", "heavy", "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "--pose-model heavy" in done.stderr and "setup.sh --heavy" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_damaged_model_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("KOMI_MODEL_DIR", str(tmp_path))
    (tmp_path / "pose_landmark_heavy.tflite").write_bytes(b"not the heavy model")
    with pytest.raises(ModelError, match="sha256 does not match"):
        bundle_path("heavy")


# ------------------------------------------------------------------ keyframe scheduling


def test_the_model_runs_more_often_the_faster_the_person_moves():
    schedule = KeyframeSchedule(max_interval=3)
    assert schedule.model_due(has_pose=False)  # nobody to carry: the model looks

    def model_frames(motion: float, frames: int = 24) -> int:
        count = 0
        for _ in range(frames):
            if schedule.model_due(has_pose=True):
                schedule.ran_model(motion)
                count += 1
            else:
                schedule.tracked(motion)
        return count

    model_frames(SLOW / 2)  # settle
    assert model_frames(SLOW / 2) == 8  # moving: every 3rd frame
    assert model_frames(STILL / 2) == 4  # still: every 6th
    assert model_frames(SLOW * 1.5) == 12  # faster: every 2nd
    assert model_frames(FAST * 2) == 24  # fast: every frame
    schedule.max_interval = 1
    assert model_frames(STILL / 2) == 24  # --keyframe-interval 1: always the model


def test_the_model_runs_once_when_a_repetitions_turning_point_is_near():
    schedule = KeyframeSchedule(max_interval=3)
    schedule.ran_model(STILL / 2)
    for angle in (170.0, 150.0, 130.0):  # going down steadily
        schedule.note_signal(angle)
    schedule.tracked(SLOW / 2)
    assert not schedule.model_due(has_pose=True)
    schedule.note_signal(126.0)  # slowing sharply: the bottom is near
    assert schedule.model_due(has_pose=True)
    schedule.ran_model(SLOW / 2)
    schedule.note_signal(127.0)  # turned, but this turn had its model frame
    assert not schedule.model_due(has_pose=True)
    schedule.tracked(SLOW / 2)
    for angle in (140.0, 155.0):  # on the way up: armed again
        schedule.note_signal(angle)
    schedule.tracked(SLOW / 2)
    schedule.since_model = 0
    schedule.note_signal(158.0)  # slowing near the top
    assert schedule.model_due(has_pose=True)
    schedule.note_signal(None)  # no exercise: no turning points
    assert not schedule.model_due(has_pose=True)


def test_a_sure_flow_lengthens_a_moving_persons_interval_by_one_frame():
    def model_frames(schedule: KeyframeSchedule, sure: bool, frames: int = 24) -> int:
        count = 0
        for _ in range(frames):
            if schedule.model_due(has_pose=True):
                schedule.ran_model(SLOW / 2)
                count += 1
            else:
                schedule.tracked(SLOW / 2, sure)
        return count

    schedule = KeyframeSchedule(max_interval=3)
    model_frames(schedule, sure=True)  # settle
    assert model_frames(schedule, sure=True) == 6  # every 4th frame
    assert model_frames(schedule, sure=False) == 8  # not sure: every 3rd again
    pinned = KeyframeSchedule(max_interval=1)
    assert model_frames(pinned, sure=True) == 24  # --keyframe-interval 1 stays every frame


def test_a_rise_slowing_several_times_towards_the_top_calls_the_model_once():
    schedule = KeyframeSchedule(max_interval=3)
    schedule.ran_model(SLOW / 2)
    calls = 0
    # coming up, a frame late and jerky (model and flow frames in turn): it "slows sharply"
    # at 146, 173 and 177
    for angle in (100.0, 120.0, 140.0, 146.0, 160.0, 170.0, 173.0, 176.0, 177.0):
        schedule.note_signal(angle)
        if schedule.turn_near():
            schedule.ran_model(SLOW / 2)
            calls += 1
        else:
            schedule.tracked(SLOW / 2)
    assert calls == 2  # at 146, at 173 (27 degrees on); 177 is 4 on: served already
    for angle in (170.0, 150.0, 130.0, 110.0, 100.0, 98.0):  # down: the bottom is a new turn
        schedule.note_signal(angle)
        if schedule.turn_near():
            schedule.ran_model(SLOW / 2)
            calls += 1
    assert calls == 3


def test_the_flow_looks_only_at_the_person_and_their_margin():
    keypoints = np.zeros((33, 4), np.float32)
    keypoints[:, 0] = np.linspace(300, 400, 33)  # 100 px wide
    keypoints[:, 1] = np.linspace(100, 300, 33)  # 200 px tall: margin 32 + 20 px
    assert _crop(Pose(keypoints), 640, 480) == (248, 48, 452, 352)
    keypoints[:, 1] = np.linspace(0, 470, 33)  # to the frame's edges: clipped to it
    x0, y0, x1, y1 = _crop(Pose(keypoints), 640, 480)
    assert (y0, y1) == (0, 480) and 0 < x0 < 300 and 400 < x1 < 640


def test_flow_carries_the_keypoints_and_fails_over_to_the_model_on_a_new_scene():
    estimator = create_estimator(PoseSettings(model="lite"))
    tracker = KeyframeTracker(estimator, max_interval=3)
    try:
        first, _ = person_frame(0)
        luma = np.ascontiguousarray(first.mean(axis=2).astype(np.uint8))
        assert not tracker.process(luma, lambda: first, 0).tracked
        tracker.schedule.interval = 3  # as after a still start
        # the same picture shifted 4 px right: the flow follows it
        shifted = np.roll(first, 4, axis=1)
        shifted_luma = np.ascontiguousarray(shifted.mean(axis=2).astype(np.uint8))
        found = tracker.process(shifted_luma, lambda: shifted, 66)
        assert found.tracked and found.since_model == 1
        before = tracker.estimator.estimate(first, 67)[0].keypoints
        moved = found.poses[0].keypoints[:, 0] - before[:, 0]
        seen = before[:, 3] > 0.5
        assert abs(float(np.median(moved[seen])) - 4.0) < 1.0
        # a different picture (a cut): the flow cannot follow, the model runs on this frame
        tracker.schedule.interval = 3
        other = np.full_like(first, 200)
        other_luma = np.full_like(luma, 200)
        assert not tracker.process(other_luma, lambda: other, 133).tracked
    finally:
        tracker.close()


# ------------------------------------------------------------------ a peak between keyframes


def _squat_reps(max_interval: int, pinned: bool) -> tuple[list[dict], int]:
    """Quick side squats (0.5 s down, no hold at the bottom) at 15 fps, through the model
    every `max_interval`-th frame (`pinned`: always that interval, turning points ignored),
    fed to the analysis as the server does; returns its reps and the bottoms (deepest true
    knee angle) that fell on frames the flow carried."""
    import cv2

    fps = 15.0
    tempo = Tempo(down=0.5, hold=0.0, up=0.5, pause=0.4, lead_in=1.6, set_rest=0.5)
    source = ExercisingPersonSource(
        640, 480, fps, exercise="squat", view="side", reps_per_set=3, tempo=tempo
    )
    frames = int(source.performance.loop_seconds * fps)
    bottoms = {round(rep.peak * fps) for rep in source.performance.reps_until(frames / fps)}
    tracker = KeyframeTracker(create_estimator(PoseSettings(model="full")), max_interval)
    if pinned:
        tracker.schedule.turn_near = lambda: False  # type: ignore[method-assign]
        tracker.schedule._adapt = lambda motion: None  # type: ignore[method-assign]
        tracker.schedule.interval = max_interval
    analysis = LiveAnalysis("squat_cam")
    analysis.set_exercise("squat")
    reps: list[dict] = []
    tracked_bottoms = 0
    try:
        for index in range(frames):
            rgb = source.read()
            yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
            found = tracker.process(
                yuv[:480], lambda yuv=yuv: cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420), index * 66
            )
            people = [pose.to_json() for pose in found.poses]
            _, events = analysis.analyse(people, 640, 480, index / fps)
            reps += [event.rep for event in events]
            tracked_bottoms += index in bottoms and found.tracked
    finally:
        tracker.close()
    return reps, tracked_bottoms


def test_a_squats_bottom_between_keyframes_is_not_lost():
    """The model every 3rd frame, its bottoms on frames the flow carries: the analysis counts
    every rep and reads each bottom's knee angle as the model on every frame does."""
    every_frame, _ = _squat_reps(1, pinned=True)
    keyframed, tracked_bottoms = _squat_reps(3, pinned=True)
    assert tracked_bottoms >= 2, "the bottoms fell on model frames: the test proves nothing"
    assert len(keyframed) == len(every_frame) == 3
    for ours, reference in zip(keyframed, every_frame, strict=True):
        assert abs(ours["peak_angle_deg"] - reference["peak_angle_deg"]) < 4.0, (ours, reference)


def test_the_turning_point_signal_is_the_analysed_joint_angle():
    assert movement_signal(None) is None
    assert movement_signal({"phase": "setup", "angles": {"left_knee": 170.0}}) is None
    assert movement_signal({"phase": "working", "angles": {"left_knee": 95.5}}) == 95.5
    assert movement_signal({"phase": "rest", "angles": {}}) is None


# ------------------------------------------------------------------ the pipeline hand-off


def _video_frame(index: int) -> av.VideoFrame:
    rgb, _ = person_frame(index)
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")


async def test_the_next_frame_is_with_the_worker_before_a_result_is_sent(
    pose_pool: PoseWorkerPool,
):
    """A frame that arrives while the worker analyses the previous one goes to the worker
    before the previous result is analysed and sent (no idle worker meanwhile)."""
    handed_over_first: list[bool] = []
    trials = 0
    for trial in range(6):
        channel = pose_pool.open_camera(f"handoff_{trial}")
        results: list[tuple[int, bool, str | None]] = []

        def on_result(session: CameraSession, message, channel=channel, results=results) -> None:
            tracking = message.tracking.source if message.tracking else None
            results.append((message.frame_pts, channel.busy, tracking))

        async def on_closed(session: CameraSession) -> None:
            return None

        session = CameraSession(
            f"handoff_{trial}", "webrtc", channel, on_result=on_result, on_closed=on_closed
        )
        try:
            session.publish_frame(_video_frame(0), 0)
            # polled every millisecond: the model takes 15 ms or more; a first result back
            # before the poll saw it leaves this trial out
            await wait_for(
                lambda channel=channel, results=results: channel.busy or results,
                10,
                "first frame with the worker",
                interval=0.001,
            )
            if results:
                continue
            session.publish_frame(_video_frame(1), 6000)
            newer_waiting = channel.busy  # the first result is not back yet
            await wait_for(lambda results=results: len(results) >= 2, 20, "both results")
        finally:
            await session.close("test over")
        first_pts, busy_when_sent, source = results[0]
        assert first_pts == 0 and source == "model"
        if newer_waiting:
            trials += 1
            handed_over_first.append(busy_when_sent)
    assert trials >= 3, "the worker was too quick to test the hand-off"
    assert all(handed_over_first), handed_over_first


def test_the_lite_model_ships_in_the_package_data():
    import tomllib

    config = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    assert "models/*" in config["tool"]["setuptools"]["package-data"]["komi_rtc.pose"]

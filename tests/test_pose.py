"""The pose interface and its worker pool, with the real bundled model."""

from __future__ import annotations

import subprocess
import sys

import pytest
from contract_client import nose_on_face, person_frame

from komi_rtc.pose.estimator import BlazePoseLegacy, ModelError
from komi_rtc.pose.followed_person import OnePersonLandmarker
from komi_rtc.pose.model_choice import PoseSettings, create_estimator
from komi_rtc.pose.worker_pool import PoseWorkerPool
from komi_rtc.protocol import KEYPOINT_NAMES


@pytest.mark.parametrize("settings", [PoseSettings(), PoseSettings(legacy=True)])
def test_bundled_blazepose_finds_the_person_without_a_download(settings):
    estimator = create_estimator(settings)
    assert isinstance(estimator, BlazePoseLegacy if settings.legacy else OnePersonLandmarker)
    try:
        rgb, placement = person_frame(0)
        poses = estimator.estimate(rgb, 0)
    finally:
        estimator.close()
    assert len(poses) == 1
    assert poses[0].keypoints.shape == (33, 4)
    message = {"pose_data": {"pose": [poses[0].to_json()]}}
    assert nose_on_face(message, placement)
    names = [k["name"] for k in message["pose_data"]["pose"][0]["keypoints"]]
    assert names == list(KEYPOINT_NAMES)


def test_a_missing_or_invalid_task_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        create_estimator(PoseSettings(model_path=str(tmp_path / "missing.task")))
    bad = tmp_path / "bad.task"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load pose model"):
        create_estimator(PoseSettings(model_path=str(bad)))
    pool = PoseWorkerPool(workers=1, settings=PoseSettings(model_path=str(bad)))
    with pytest.raises(ModelError, match="cannot load pose model"):
        pool.start()


async def test_pose_workers_keep_mediapipes_startup_chatter_out_of_the_log(capfd):
    pool = PoseWorkerPool(workers=1)
    pool.start()
    try:
        channel = pool.open_camera("quiet_cam")
        rgb, _ = person_frame(1)
        async with channel.turn():
            result = await channel.analyse(channel.write_rgb(rgb), 0)
        assert len(result.poses) == 1
        channel.close()
    finally:
        pool.stop()
    err = capfd.readouterr().err
    assert "Feedback manager" not in err and "W0000" not in err, err
    assert "GPU suport" not in err and "I0000" not in err, err


def test_the_stderr_filter_passes_every_other_line():
    script = (
        "import os\n"
        "from komi_rtc.pose.native_log import filter_native_stderr\n"
        "thread = filter_native_stderr()\n"
        "os.write(2, b'W0000 00:00 1 inference_feedback_manager.cc:114] Feedback manager\\n')\n"
        "os.write(2, b'E0000 real trouble in a calculator\\n')\n"
        "os.close(2)\n"  # end of input: the filter passes the rest on and ends
        "thread.join(10)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stderr == b"E0000 real trouble in a calculator\n"

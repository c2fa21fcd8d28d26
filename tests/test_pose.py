"""The pose interface and its worker pool, with the real bundled model."""

from __future__ import annotations

import pytest
from contract_client import nose_on_face, person_frame

from komi_rtc.pose.estimator import BlazePoseFull, ModelError, create_estimator
from komi_rtc.pose.worker_pool import PoseWorkerPool
from komi_rtc.protocol import KEYPOINT_NAMES


def test_bundled_blazepose_finds_the_person_without_a_download():
    estimator = create_estimator()
    assert isinstance(estimator, BlazePoseFull)
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
        create_estimator(str(tmp_path / "missing.task"))
    bad = tmp_path / "bad.task"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load pose model"):
        create_estimator(str(bad))
    pool = PoseWorkerPool(workers=1, model_path=str(bad))
    with pytest.raises(ModelError, match="cannot load pose model"):
        pool.start()

"""Real footage through the real server (issue 24): Pose2Sim's lab, a real person filmed by
4 synchronised cameras, streamed by KOMI's own camera peer into one station with the lab's
calibration installed as a TOML file. A short form of `python -m komi_rtc.bench.real`
(which reports the same figures over longer runs: README, "Real footage")."""

from __future__ import annotations

import argparse

import pytest

from komi_rtc.bench.real import run

pytestmark = pytest.mark.bench


def test_the_lab_station_on_real_footage_gives_a_steady_body_of_one_instant():
    result = run(
        argparse.Namespace(seconds=30.0, fps=2.0, scale=0.5, load=0, self_calibration=False)
    )
    print(result)  # the figures, for the log of a failing run
    assert result["size"] == [544, 960]
    for camera_id, share in result["found"].items():
        assert share >= 0.99, (camera_id, share)
    # groups of two or more views hold frames of one instant of the recording
    several = sum(n for size, n in result["group_sizes"].items() if size >= 2)
    assert several >= 10 and result["one_instant"] >= 0.95, result["group_sizes"]
    # the 3-D pose (lab calibration scaled from 1088x1920 to the 544x960 received)
    with_pose = round(result["pose3d"] * result["groups"])
    assert with_pose >= 10
    assert result["bone_cv_median"] <= 0.06, result["bone_cv"]
    for camera_id, p95 in result["reprojection_p95_px"].items():
        assert p95 is not None and p95 <= 25.0, (camera_id, p95)
    # a real person of the lab's size (the triangulated body, not a stated height)
    assert 1.5 <= result["stature_m_lab"] <= 1.9

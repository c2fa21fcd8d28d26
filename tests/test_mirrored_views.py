"""A view whose whole body BlazePose labelled mirrored (left and right swapped: 40% of one
lab camera's frames, issue 24) is recognised against the other views and used mirrored,
instead of being let through joint by joint."""

from __future__ import annotations

import math

import numpy as np
import pytest

from komi_rtc.multiview import StationCalibration, mirrored_keypoints, triangulate_points
from komi_rtc.multiview.synthetic_station import camera_ring, person_in_world
from komi_rtc.protocol import KEYPOINT_INDEX as K
from komi_rtc.synthetic import forward_kinematics, pose_at

YAWS = {"front": 0.0, "front_left": 50.0, "left": 95.0, "back_right": -140.0}
LIMBS = [K[n] for n in ("left_knee", "right_knee", "left_wrist", "right_wrist", "left_elbow")]


@pytest.fixture(scope="module")
def cameras():
    return camera_ring(YAWS, size=(544, 960), horizontal_fov_deg=50.0)


def _instants(count: int) -> list[np.ndarray]:
    return [
        person_in_world(
            forward_kinematics(pose_at("squat", 0.5 - 0.5 * math.cos(2 * math.pi * k / count))),
            1.75,
        )
        for k in range(count)
    ]


def _views(cameras, points, rng):
    return {
        camera_id: np.column_stack(
            [cam.project(points) + rng.normal(0.0, 2.0, (len(points), 2)), np.full(33, 0.9)]
        )
        for camera_id, cam in cameras.items()
    }


@pytest.mark.parametrize("mirrored_view", ["front_left", "back_right"])
def test_a_whole_mirrored_view_is_taken_mirrored_and_the_joints_come_out_right(
    cameras, mirrored_view
):
    calibration = StationCalibration(cameras, "board", 0.0)
    rng = np.random.default_rng(5)
    for points in _instants(12):
        views = _views(cameras, points, rng)
        views[mirrored_view] = mirrored_keypoints(views[mirrored_view])
        result = triangulate_points(calibration, views, max_reprojection_px=15.0)
        assert result.mirrored == (mirrored_view,)
        assert (result.views[LIMBS] == 4).all()  # the mirrored view counts, put right
        assert np.linalg.norm(result.points[LIMBS] - points[LIMBS], axis=1).max() < 0.04
        # without the test, that view is dropped or drags: fewer views on the limbs
        plain = triangulate_points(
            calibration, views, max_reprojection_px=15.0, test_mirrored=False
        )
        assert plain.mirrored == () and (plain.views[LIMBS] < 4).any()


def test_three_views_one_mirrored_give_the_body(cameras):
    """(With two cameras at one height a mirror cannot be told: the swap moves joints along
    the epipolar lines. Three views can.)"""
    three = {c: cameras[c] for c in ("front", "front_left", "left")}
    calibration = StationCalibration(three, "board", 0.0)
    rng = np.random.default_rng(8)
    for points in _instants(8):
        views = _views(three, points, rng)
        views["front"] = mirrored_keypoints(views["front"])
        result = triangulate_points(calibration, views, max_reprojection_px=15.0)
        assert result.mirrored == ("front",)
        assert np.linalg.norm(result.points[LIMBS] - points[LIMBS], axis=1).max() < 0.04


def test_views_labelled_right_are_never_taken_mirrored(cameras):
    calibration = StationCalibration(cameras, "board", 0.0)
    rng = np.random.default_rng(11)
    for points in _instants(30):
        result = triangulate_points(calibration, _views(cameras, points, rng), 15.0)
        assert result.mirrored == ()
        assert np.linalg.norm(result.points[LIMBS] - points[LIMBS], axis=1).max() < 0.04

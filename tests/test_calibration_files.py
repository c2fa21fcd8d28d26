"""Calibration files people already have (issue 24, item 2): a lab's Qualisys export, and
Pose2Sim/Anipose TOML files imported and exported through `/stations/{id}/calibration`;
intrinsics follow each camera's received frame size."""

from __future__ import annotations

import aiohttp
import numpy as np
import pytest
from auth import AUTH_HEADERS

from komi_rtc.bench.real_footage import lab_station
from komi_rtc.multiview import (
    CalibrationError,
    StationCalibration,
    parse_toml,
    read_qualisys,
    to_toml,
)

TOML = {"Content-Type": "application/toml"}


@pytest.fixture(scope="module")
def lab() -> StationCalibration:
    """The lab calibration of Pose2Sim's demo (fails, not skips, without the footage)."""
    return read_qualisys(lab_station().qualisys_calibration)


def test_the_qualisys_reader_puts_each_lab_camera_where_the_file_says(lab):
    assert list(lab.cameras) == ["cam01", "cam02", "cam03", "cam04"]
    cam01 = lab.cameras["cam01"]
    assert cam01.size == (1088, 1920)
    assert cam01.K[0, 0] == pytest.approx(107599.671875 / 64)
    assert cam01.K[0, 2] == pytest.approx(34110.316406 / 64)
    assert cam01.dist[0] == pytest.approx(-0.046183 / 64)
    # the file's transform is each camera's position in millimetres
    assert np.allclose(cam01.centre, [1.4602323709, -1.9091590482, 1.8965058524])
    for cam in lab.cameras.values():
        # every camera looks at the capture volume, where the person stands (near the
        # origin, 0.5-1.5 m up): it projects into the frame, in front of the camera
        person = np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 1.5]])
        assert (cam.depth(person) > 1.0).all()
        pixels = cam.project(person)
        assert ((pixels >= 0) & (pixels < cam.size)).all(), pixels


def test_a_file_that_is_not_a_qualisys_calibration_is_refused_with_a_reason():
    with pytest.raises(CalibrationError, match="not XML"):
        read_qualisys(b"[cam01]\nsize = [1, 2]")
    with pytest.raises(CalibrationError, match="document type"):
        read_qualisys(b'<!DOCTYPE x [<!ENTITY a "b">]><calibration/>')
    with pytest.raises(CalibrationError, match="fewer than two"):
        read_qualisys(b"<calibration><cameras/></calibration>")


def test_toml_export_and_import_round_trip_the_lab_calibration_exactly(lab):
    text = to_toml(lab)
    assert text.startswith('[cam01]\nname = "cam01"\nsize = [ 1088.0, 1920.0]')
    assert "[metadata]" in text and "[komi]" not in text  # Pose2Sim reads every table
    again = parse_toml(text)
    assert list(again.cameras) == list(lab.cameras) and again.method == "file"
    for camera_id, cam in lab.cameras.items():
        other = again.cameras[camera_id]
        assert other.size == cam.size
        for mine, theirs in ((cam.K, other.K), (cam.dist, other.dist), (cam.t, other.t)):
            assert np.array_equal(mine, theirs)
        assert np.allclose(cam.R, other.R, atol=1e-12)
    points = np.array([[0.1, 0.2, 1.0], [-0.3, 0.1, 0.2]])
    for camera_id, cam in lab.cameras.items():
        assert np.allclose(cam.project(points), again.cameras[camera_id].project(points))


def test_toml_camera_names_map_to_camera_ids_by_a_table_or_the_request(lab):
    text = to_toml(lab).replace('name = "cam03"', 'name = "Camera 3 (left)"')
    with pytest.raises(CalibrationError, match="is not a camera id: map it"):
        parse_toml(text)
    mapped = parse_toml(text, {"Camera 3 (left)": "phone_left", "cam01": "phone_front"})
    assert sorted(mapped.cameras) == ["cam02", "cam04", "phone_front", "phone_left"]
    table = text + '\n[komi]\ncameras = { "Camera 3 (left)" = "phone_left" }\n'
    assert "phone_left" in parse_toml(table).cameras
    with pytest.raises(CalibrationError, match="two cameras map to"):
        parse_toml(text, {"Camera 3 (left)": "cam01"})


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[cam01\nsize = 1", "not TOML"),
        ("[cam01]\nname = 'a'\n", "'size' must be 2 numbers"),
        ("[a]\nsize=[10,10]\nmatrix=[[1,0,0],[0,1,0]]\n", "'matrix' must be 3 rows"),
        ("x = 1\n", "'x' must be a camera table"),
        ("[metadata]\nerror = 0.0\n", "at least two cameras"),
    ],
)
def test_a_bad_toml_file_is_refused_with_a_reason(text, reason):
    with pytest.raises(CalibrationError, match=reason):
        parse_toml(text)


def test_intrinsics_follow_the_received_frame_size(lab):
    """A calibration made at 1088x1920 works on a stream at 544x960: every point lands on
    half the pixel coordinates (distortion acts on normalized coordinates)."""
    points = np.random.default_rng(3).uniform([-0.5, -0.5, 0.0], [0.5, 0.5, 1.8], (40, 3))
    half = lab.scaled_to({c: (544, 960) for c in lab.cameras})
    for camera_id, cam in lab.cameras.items():
        small = half.cameras[camera_id]
        assert small.size == (544, 960)
        assert np.allclose(small.project(points), cam.project(points) / 2, atol=1e-6)
        assert np.allclose(
            small.normalize(cam.project(points) / 2), cam.normalize(cam.project(points))
        )
    with pytest.raises(ValueError, match="cam02: frames of 640x480 do not have the aspect"):
        lab.scaled_to({"cam02": (640, 480)})


async def test_a_station_imports_a_toml_file_and_gives_it_back_as_toml_or_json(server, lab):
    text = to_toml(lab).replace('name = "cam02"', 'name = "side cam"')
    base = f"{server.url}/stations/lab"
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.post(f"{server.url}/stations/lab", json={"cameras": ["cam01"]}):
            pass
        async with http.get(f"{base}/calibration") as response:
            assert response.status == 404  # not calibrated yet
            assert "not calibrated" in (await response.json())["error"]
        async with http.put(f"{base}/calibration", data=text, headers=TOML) as response:
            answer = await response.json()
            assert response.status == 400 and "map it" in answer["error"], answer
        async with http.put(
            f"{base}/calibration?cameras=side%20cam:cam02", data=text, headers=TOML
        ) as response:
            answer = await response.json()
            assert response.status == 200, answer
        assert answer["cameras"] == ["cam01", "cam02", "cam03", "cam04"]
        assert answer["method"] == "file"
        async with http.get(f"{base}/calibration", headers={"Accept": "application/toml"}) as r:
            assert r.status == 200 and r.content_type == "application/toml"
            exported = parse_toml(await r.text())
        assert np.allclose(exported.cameras["cam02"].K, lab.cameras["cam02"].K)
        async with http.get(f"{base}/calibration") as response:
            assert response.content_type == "application/json"
            as_json = StationCalibration.from_json(await response.json())
        assert np.allclose(as_json.cameras["cam04"].t, lab.cameras["cam04"].t)
        # JSON stays as it was: what GET gives, POST takes
        async with http.post(f"{base}/calibration", json=as_json.to_json()) as response:
            assert response.status == 200
        for body, reason in (
            (b"[cam01\n", "not TOML"),
            (b"\xff\xfe", "not UTF-8"),
            (b"x" * (300 * 1024), "over 256 KiB"),
        ):
            async with http.put(f"{base}/calibration", data=body, headers=TOML) as response:
                answer = await response.json()
                assert response.status == 400 and reason in answer["error"], answer
        async with http.put(
            f"{base}/calibration?cameras=cam01", data=text, headers=TOML
        ) as response:
            assert response.status == 400
            assert "cam01:phone_a" in (await response.json())["error"]

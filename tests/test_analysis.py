"""Exercise analysis: counting on generated sessions, replay = live, control over the wire."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import aiohttp
import numpy as np
import pytest
from auth import ADMIN_TOKEN, AUTH_HEADERS
from contract_client import PersonTrack, connect_camera, connect_monitor, person_jpeg_base64
from harness import wait_for

from komi_rtc.analysis.catalog import Catalog, default_catalog, load_exercise_file
from komi_rtc.analysis.derive import derive_exercise
from komi_rtc.analysis.replay import analyse_recording, replay_analyses
from komi_rtc.bench.analysis import run_session
from komi_rtc.bench.sessions import MOTIONS, make_session, sessions_for


def test_catalog_has_ten_exercises_in_two_languages():
    catalog = default_catalog()
    assert len(catalog.exercises) >= 10
    for exercise in catalog.exercises.values():
        assert exercise.name["en"] and exercise.name["ko"]
        for rule in exercise.rules:
            assert rule.message["en"] and rule.message["ko"]
    kinds = {e.kind for e in catalog.exercises.values()}
    assert kinds == {"reps", "hold", "range"}


@pytest.mark.parametrize("exercise", [e for e in MOTIONS if MOTIONS[e]["move"]])
def test_every_exercise_is_counted_right_on_generated_sessions(exercise):
    for session in sessions_for(exercise, per_view=3, seed=7):
        summary = run_session(session)
        assert summary["reps"] == session.true_count, (session.view, summary["reps"])
        assert summary["half_reps"] >= sum(1 for r in session.reps if not r.full)
        for rep in summary["repetitions"]:
            assert 0 <= rep["score"] <= 100 and rep["duration_s"] > 0 and rep["rom_deg"] > 0


def test_plank_times_good_form_and_flags_sagging_hips():
    rng = np.random.default_rng(3)
    for _ in range(4):
        session = make_session("plank", "side", rng)
        summary = run_session(session)
        assert abs(summary["hold_seconds"] - session.hold_good_s) < 1.0
        for code in session.hold_errors:
            assert summary["feedback_counts"].get(code, 0) >= 1


def test_nothing_is_counted_while_nobody_holds_the_start_posture():
    rng = np.random.default_rng(5)
    session = make_session("squat", "side", rng, seed_errors=False)
    assert run_session(session)["reps"] == session.true_count
    # drop the rest posture before the first rep: the person walks straight into a squat
    first = session.reps[0].start
    session.messages = [m for m in session.messages if not (0.9 < m["timestamp"] < first - 0.05)]
    summary = run_session(session)
    # the first rep, begun without the start posture, is not counted; every later one is
    assert summary["reps"] == session.true_count - 1


def test_profiles_change_what_counts_as_shallow():
    rng = np.random.default_rng(11)
    while True:
        session = make_session("squat", "side", rng)
        if any("shallow" in r.errors for r in session.reps):
            break
    standard = run_session(session, "standard")
    beginner = run_session(session, "beginner")
    assert standard["feedback_counts"].get("shallow", 0) > 0
    assert beginner["feedback_counts"].get("shallow", 0) == 0


def _write_jsonl(path, messages):
    path.write_text("".join(json.dumps(m) + "\n" for m in messages))
    return path


def test_replay_command_prints_a_summary_and_names_bad_lines(tmp_path):
    session = make_session("push_up", "side", np.random.default_rng(2))
    good = _write_jsonl(tmp_path / "push_up.jsonl", session.messages)
    result = subprocess.run(
        [sys.executable, "-m", "komi_rtc.analysis", "--exercise", "push_up", str(good)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["exercise"] == "push_up"
    assert summary["reps"] == session.true_count
    assert len(summary["rep_scores"]) == summary["reps"]
    lines = good.read_text().splitlines()
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_text("\n".join(lines[:20]) + "\n" + lines[20][: len(lines[20]) // 2])
    result = subprocess.run(
        [sys.executable, "-m", "komi_rtc.analysis", "--exercise", "push_up", str(truncated)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "truncated.jsonl:21" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "komi_rtc.analysis", "--exercise", "flying", str(good)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "unknown exercise" in result.stderr


def test_custom_exercise_from_a_reference_recording(tmp_path):
    rng = np.random.default_rng(21)
    reference = make_session("lateral_raise", "front", rng, seed_errors=False)
    path = _write_jsonl(tmp_path / "reference.jsonl", reference.messages)
    definition = derive_exercise(path, "my_raise", "My raise")
    assert definition["reference"]["reps"] == reference.true_count
    file = tmp_path / "my_raise.json"
    file.write_text(json.dumps(definition))
    catalog = Catalog(tmp_path)
    assert catalog.get("my_raise") == load_exercise_file(file)
    user = make_session("lateral_raise", "front", rng, seed_errors=False)
    user_path = _write_jsonl(tmp_path / "user.jsonl", user.messages)
    summary = analyse_recording(user_path, "my_raise", catalog=catalog)
    assert summary["reps"] == user.true_count
    assert min(summary["rep_scores"]) > 50


async def test_set_exercise_over_the_data_channel_and_rest(server, tmp_path):
    camera = await connect_camera(server.url, PersonTrack(fps=10), "cam_coach")
    monitor = await connect_monitor(server.url, "cam_coach")
    try:
        await camera.next_message("frame_processed")
        camera.send({"type": "set_exercise", "exercise": "squat"})
        reply = await camera.next_message("exercise_set")
        assert reply["exercise"] == "squat" and reply["profile"] == "standard"
        assert (await monitor.next_message("exercise_set"))["exercise"] == "squat"
        while True:
            message = await camera.next_message("frame_processed")
            if "analysis" in message:
                break
        analysis = message["analysis"]
        for key in ("exercise", "reps", "phase", "angles", "feedback", "last_rep"):
            assert key in analysis
        assert analysis["exercise"] == "squat"
        # bad control messages change nothing
        camera.send({"type": "set_exercise", "exercise": "moonwalk"})
        assert "unknown exercise" in (await camera.next_message("error"))["error"]
        camera.send({"type": "set_exercise", "exercise": "plank", "profile": "heroic"})
        assert "profile" in (await camera.next_message("error"))["error"]
        camera.held.clear()
        assert (await camera.next_message("frame_processed"))["analysis"]["exercise"] == "squat"
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
            async with http.get(f"{server.url}/exercises") as response:
                listing = await response.json()
            assert len(listing["exercises"]) >= 10
            assert {"beginner", "standard", "strict"} == set(listing["profiles"])
            async with http.post(
                f"{server.url}/cameras/cam_coach/exercise",
                json={"exercise": "plank", "profile": "strict"},
            ) as response:
                assert response.status == 200
                assert (await response.json())["exercise"] == "plank"
            async with http.post(
                f"{server.url}/cameras/cam_coach/exercise", json={"exercise": "nope"}
            ) as response:
                assert response.status == 400
            async with http.post(
                f"{server.url}/cameras/cam_coach/exercise", data=b"{bad"
            ) as response:
                assert response.status == 400
            async with http.post(
                f"{server.url}/cameras/nobody/exercise", json={"exercise": "plank"}
            ) as response:
                assert response.status == 404
        assert (await camera.next_message("exercise_set"))["exercise"] == "plank"
        camera.held.clear()
        message = await camera.next_message("frame_processed")
        assert message["analysis"]["exercise"] == "plank"
        assert message["analysis"]["profile"] == "strict"
    finally:
        await monitor.close()
        await camera.close()


async def test_set_exercise_over_the_legacy_websocket(server):
    jpeg = person_jpeg_base64(0)
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.ws_connect(f"{server.url}/ws/camera?camera_id=legacy_coach") as ws:
            await ws.receive_json(timeout=10)
            await ws.send_json({"type": "set_exercise", "exercise": "lateral_raise"})
            while (reply := await ws.receive_json(timeout=10))["type"] != "exercise_set":
                pass
            assert reply["exercise"] == "lateral_raise"
            await ws.send_json({"type": "set_exercise", "exercise": 3})
            while (reply := await ws.receive_json(timeout=10))["type"] != "error":
                pass
            await ws.send_json({"type": "frame", "timestamp": 1.0, "image_data": jpeg})
            while (reply := await ws.receive_json(timeout=10))["type"] != "frame_processed":
                pass
            assert reply["analysis"]["exercise"] == "lateral_raise"


async def test_replay_gives_the_live_numbers_for_a_recording(start_server, tmp_path):
    """A live session recorded by the camera peer replays to the same analysis, frame by frame."""
    from komi_rtc.camera.peer import CameraPeer
    from komi_rtc.media.video_sources import open_source

    running = await start_server()
    path = tmp_path / "live.jsonl"
    record = open(path, "w", encoding="utf-8")
    peer = CameraPeer(
        running.url,
        "cam_replay",
        open_source("demo", 640, 480, 15),
        15,
        record=record,
        token=ADMIN_TOKEN,
    )
    task = asyncio.create_task(peer.run())
    try:
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
            status = 0

            async def exercise_set() -> bool:  # 404 until the camera is listed
                nonlocal status
                async with http.post(
                    f"{running.url}/cameras/cam_replay/exercise",
                    json={"exercise": "shoulder_flexion"},
                ) as response:
                    status = response.status
                return status == 200

            await wait_for(exercise_set, timeout=15, what=lambda: f"REST answered {status}")
        await wait_for(lambda: peer.status.results >= 60, timeout=30)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await peer.close()
        record.close()
        await running.server.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    analysed = [m for m in lines if "analysis" in m]
    assert len(analysed) >= 30
    # replay from the first analysed frame, as the live analyser started there
    start = lines.index(analysed[0])
    trimmed = _write_jsonl(tmp_path / "from_start.jsonl", lines[start:])
    compared = 0
    for message, analysis, _ in replay_analyses(trimmed, "shoulder_flexion"):
        assert analysis == message["analysis"]
        compared += 1
    assert compared == len(lines) - start


def test_a_passer_by_does_not_take_over_the_analysis():
    """Two people in the picture: the analysis keeps following the one it followed, even
    when a larger passer-by walks through; frame_processed still lists both."""
    rng = np.random.default_rng(21)
    session = make_session("squat", "front", rng, seed_errors=False)
    alone = run_session(session)["reps"]
    assert alone == session.true_count
    for message in session.messages:
        people = message["pose_data"]["pose"]
        if not people or message["timestamp"] < 2.0:
            continue
        # a bigger person, nearer the camera, to the right, from 2 s on: on its own it
        # would be chosen (larger, still fairly central)
        stranger = {
            "keypoints": [
                {**k, "x": 560 + (k["x"] - 320) * 1.6, "y": 240 + (k["y"] - 240) * 1.6}
                for k in people[0]["keypoints"]
            ]
        }
        message["pose_data"]["pose"] = [stranger, *people]
    assert run_session(session)["reps"] == session.true_count


def test_main_person_is_the_largest_most_central_one_at_first():
    from komi_rtc.analysis.live import MainPerson

    def person(x0: float, y0: float, size: float) -> dict:
        return {
            "keypoints": [
                {"id": i, "x": x0 + size * (i % 3) / 2, "y": y0 + size * (i // 11) / 2}
                for i in range(33)
            ]
        }

    small_centre, big_edge, big_centre = (
        person(300, 200, 80),
        person(0, 0, 300),
        person(200, 100, 300),
    )
    chooser = MainPerson()
    assert chooser.choose([small_centre, big_edge, big_centre], 640, 480) is big_centre
    # sticky: the followed person stays chosen while a bigger one appears elsewhere
    chooser = MainPerson()
    assert chooser.choose([small_centre], 640, 480) is small_centre
    assert chooser.choose([big_centre, small_centre], 640, 480) is small_centre


def test_a_fidgeting_person_still_starts_the_set():
    """Small shifts while holding the start posture (under a quarter of the movement, under
    0.4 s each) do not keep the set from starting."""
    from komi_rtc.analysis.catalog import default_catalog
    from komi_rtc.analysis.counter import ExerciseAnalyser

    catalog = default_catalog()
    analyser = ExerciseAnalyser(
        catalog.get("squat"), catalog.profiles["standard"], catalog.messages
    )
    rng = np.random.default_rng(2)
    session = make_session("squat", "side", rng, seed_errors=False)
    # the standing frames before the first rep, with a knee wobble every 0.3 s
    from komi_rtc.analysis.geometry import keypoints_from_json

    standing = [m for m in session.messages if m["pose_data"]["pose"]][:1][0]
    kp = keypoints_from_json(standing["pose_data"]["pose"][0])
    kp[:, 3] = 0.95  # every keypoint well seen: only the fidgeting is in question
    t = 0.0
    while analyser.phase == "setup" and t < 3.0:
        frame = kp.copy()
        if int(t / 0.3) % 2:  # bend the knees a little: about a fifth of the way down
            frame[25:27, 0] += 27.0
        analyser.update(frame, 640, 480, t)
        t += 1 / 15
    assert analyser.phase == "rest", "the set never started"


async def test_the_server_offers_custom_exercises_from_its_exercise_dir(start_server, tmp_path):
    rng = np.random.default_rng(21)
    reference = make_session("lateral_raise", "front", rng, seed_errors=False)
    definition = derive_exercise(
        _write_jsonl(tmp_path / "reference.jsonl", reference.messages), "my_raise", "My raise"
    )
    (tmp_path / "exercises").mkdir()
    (tmp_path / "exercises" / "my_raise.json").write_text(json.dumps(definition))
    running = await start_server(exercise_dir=tmp_path / "exercises")
    try:
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
            async with http.get(f"{running.url}/exercises") as response:
                ids = {e["id"] for e in (await response.json())["exercises"]}
        assert {"my_raise", "squat"} <= ids
        camera = await connect_camera(running.url, PersonTrack(fps=10), "cam_custom")
        try:
            await camera.next_message("frame_processed")  # the channel is open
            camera.send({"type": "set_exercise", "exercise": "my_raise"})
            assert (await camera.next_message("exercise_set"))["exercise"] == "my_raise"
        finally:
            await camera.close()
    finally:
        await running.server.close()

"""History (design.md, "People and history"): real database files, a real server and real
peers; sets survive restarts and a SIGKILL mid-set."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime

import aiohttp
import pytest
from auth import ADMIN_TOKEN, AUTH_HEADERS
from databases import fresh_database
from harness import wait_for
from sqlalchemy import inspect, text

from komi_rtc.analysis.catalog import default_catalog
from komi_rtc.camera.peer import CameraPeer
from komi_rtc.history.recorder import SetRecorder
from komi_rtc.history.store import History, HistoryStore, SetHandle, migrate, schema_revision
from komi_rtc.media.video_sources import open_source

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.databases)]


async def _get_json(http: aiohttp.ClientSession, url: str) -> dict:
    async with http.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.json()


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrations_run_from_an_empty_database_and_from_the_previous_schema(
    tmp_path, backend, request
):
    def url(name: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / name}.sqlite3"
        return fresh_database(request.getfixturevalue("postgres_url"), name)

    fresh = HistoryStore(url("fresh"))
    migrate(fresh.engine)
    assert schema_revision(fresh.engine) == "0003"
    assert {"people", "sets", "reps", "hold_seconds"} <= set(
        inspect(fresh.engine).get_table_names()
    )
    fresh.close()
    # a database made by the previous schema (0001), with data in it
    old = HistoryStore(url("old"))
    migrate(old.engine, "0001")
    with old.engine.begin() as db:
        db.execute(text("INSERT INTO people (id, created_at) VALUES ('anna', 1.0)"))
        db.execute(
            text(
                "INSERT INTO sets (person_id, exercise, camera_id, started_at, ended_at) "
                "VALUES ('anna', 'squat', 'cam', 10.0, 20.0)"
            )
        )
        db.execute(
            text(
                'INSERT INTO reps (set_id, "index", ended_at, score, good, errors, detail) '
                "VALUES (1, 1, 12.0, 80.0, true, '[\"shallow\"]', '{}')"
            )
        )
    assert schema_revision(old.engine) == "0001"
    old.prepare(time.time())  # what the server does on start
    assert schema_revision(old.engine) == "0003"
    [item] = old.sets("anna")
    assert item["kind"] == "reps" and item["reps"] == 1 and item["errors"] == {"shallow": 1}
    assert item["hold_seconds"] == 0.0
    old.close()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_set_streamed_over_webrtc_is_recorded_with_its_reps(
    start_server, tmp_path, backend, request
):
    db_url = None  # SQLite in the state dir
    if backend == "postgresql":
        db_url = fresh_database(request.getfixturevalue("postgres_url"), "komi_live")
    running = await start_server(state_dir=tmp_path, db_url=db_url)
    peer = CameraPeer(
        running.url,
        "cam_hist",
        open_source("demo", 640, 480, 10),
        fps=10,
        exercise="squat",
        token=ADMIN_TOKEN,
    )
    peer.messages = asyncio.Queue()
    task = asyncio.create_task(peer.run())
    try:
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
            await wait_for(lambda: peer.status.results > 0, timeout=30)
            async with http.post(
                f"{running.url}/cameras/cam_hist/person", json={"person": "anna"}
            ) as response:
                assert response.status == 200
                assert await response.json() == {
                    "type": "person_set",
                    "camera_id": "cam_hist",
                    "person": "anna",
                }
            # the set starts at the next set_exercise
            async with http.post(
                f"{running.url}/cameras/cam_hist/exercise", json={"exercise": "squat"}
            ) as response:
                assert response.status == 200
            live_reps = 0
            async with asyncio.timeout(60):
                while live_reps < 3:
                    message = await peer.messages.get()
                    if message.get("type") == "person_best":
                        assert message["person"] == "anna" and message["exercise"] == "squat"
                    if message.get("type") == "rep_completed":
                        live_reps += 1
            # stop the set, then compare
            async with http.post(
                f"{running.url}/cameras/cam_hist/exercise", json={"exercise": None}
            ) as response:
                assert response.status == 200
            people = await _get_json(http, f"{running.url}/people")
            assert [p["id"] for p in people["people"]] == ["anna"]
            sets = (await _get_json(http, f"{running.url}/people/anna/sets"))["sets"]
            assert len(sets) == 1
            [item] = sets
            assert item["exercise"] == "squat" and item["camera_id"] == "cam_hist"
            assert item["ended_at"] is not None and item["reps"] >= live_reps
            assert item["reps"] == len(item["reps_detail"]) and item["mean_score"] is not None
            for key in ("id", "profile", "started_at", "good_reps", "half_reps", "errors"):
                assert key in item
            async with http.get(f"{running.url}/people/anna/sets.csv") as response:
                assert response.content_type == "text/csv"
                rows = list(csv.DictReader(io.StringIO(await response.text())))
            assert len(rows) == item["reps"]
            for row, rep in zip(rows, item["reps_detail"], strict=True):
                assert int(row["rep"]) == rep["index"]
                assert float(row["score"]) == pytest.approx(rep["score"])
                assert row["errors"] == ";".join(rep["errors"])
                assert int(row["set_id"]) == item["id"]
                # times a person reads, with the offset a program needs for the instant
                started = datetime.fromisoformat(row["set_started_at"])
                ended = datetime.fromisoformat(row["ended_at"])
                assert started.utcoffset() is not None and ended.utcoffset() is not None
                assert started.timestamp() == pytest.approx(item["started_at"], abs=0.001)
                assert ended.timestamp() == pytest.approx(rep["ended_at"], abs=0.001)
            plan = await _get_json(http, f"{running.url}/people/anna/recommendation")
            assert any(i["exercise"] == "squat" for i in plan["items"]), plan
            progress = await _get_json(http, f"{running.url}/people/anna/progress")
            assert progress["exercises"]["squat"][0]["reps"] == item["reps"]
            # a new squat set knows the best so far
            async with http.post(
                f"{running.url}/cameras/cam_hist/exercise", json={"exercise": "squat"}
            ) as response:
                assert response.status == 200
            async with asyncio.timeout(20):
                while True:
                    message = await peer.messages.get()
                    if message.get("type") == "person_best":
                        break
            assert message["best"]["set_id"] == item["id"]
            assert message["best"]["reps"] == item["reps"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await peer.close()


async def test_bad_person_requests_answer_400(server):
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.get(f"{server.url}/people/bad%20id/sets") as response:
            assert response.status == 400
        async with http.get(f"{server.url}/people/nobody/sets") as response:
            assert response.status == 200 and (await response.json())["sets"] == []
        async with http.get(f"{server.url}/people/nobody/recommendation") as response:
            plan = await response.json()
            assert response.status == 200 and plan["person"] == "nobody" and plan["items"]
            for item in plan["items"]:
                assert {"exercise", "sets", "profile", "reason"} <= set(item)
                assert ("reps" in item) != ("hold_s" in item)
                assert item["reason"]["en"] and item["reason"]["ko"]
        async with http.post(f"{server.url}/cameras/none/person", json={"person": "x"}) as r:
            assert r.status == 404


def test_the_recorder_ends_a_set_after_60_s_out_of_view_and_starts_again(tmp_path):
    async def run() -> None:
        store = HistoryStore(f"sqlite:///{tmp_path / 'h.sqlite3'}")
        store.prepare(0.0)
        history = History(store)
        recorder = SetRecorder("cam", history, default_catalog())
        recorder.person_changed("bo", 100.0)
        recorder.exercise_changed("squat", "standard", 100.0)
        rep = {"index": 1, "score": 90.0, "rom_deg": 80.0, "good": True, "errors": []}
        recorder.frame(None, [rep], True, 101.0)
        recorder.frame(None, [], False, 150.0)
        assert recorder.recording  # 49 s out of view: still the same set
        recorder.frame(None, [], False, 162.0)
        assert not recorder.recording
        recorder.frame(None, [], True, 300.0)  # back: a new set
        recorder.frame(None, [{**rep, "index": 2}], True, 301.0)
        recorder.close(310.0)
        await history.flush()
        sets = await history.read(store.sets, "bo")
        await history.close()
        assert [s["reps"] for s in sets] == [1, 1]
        assert sets[1]["ended_at"] == 162.0 and sets[0]["ended_at"] == 310.0

    asyncio.run(run())


def _request(url: str, method: str = "GET", body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={**AUTH_HEADERS, "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def test_a_server_killed_mid_set_keeps_every_completed_rep(server_process, tmp_path):
    options = ("--workers", "1", "--demo", "--state-dir", str(tmp_path))
    server = server_process(*options)
    base = server.url

    def tied() -> bool:  # 404 until the demo camera is up
        person = {"person": "kim"}
        return _request(f"{base}/cameras/demo_camera/person", "POST", person)[0] == 200

    server.wait_until(tied, what="the demo camera tied to kim")
    _request(f"{base}/cameras/demo_camera/exercise", "POST", {"exercise": "squat"})

    def reps_recorded() -> int:
        sets = _request(f"{base}/people/kim/sets")[1].get("sets", [])
        return sets[0]["reps"] if sets and sets[0]["reps"] >= 3 else 0

    recorded = server.wait_until(reps_recorded, what="three reps recorded")
    server.kill()  # mid-set: no shutdown, no flush
    again = server_process(*options, port=server.port)  # its log goes on in the same file

    def sets_after_restart() -> list:
        status, body = _request(f"{base}/people/kim/sets")
        return body["sets"] if status == 200 else []

    sets = again.wait_until(sets_after_restart, what="kim's sets after the restart")
    first = sets[-1]
    assert first["reps"] >= recorded  # every rep seen before the kill, maybe one more
    assert first["ended_at"] is not None and first["end_reason"] == "server stopped"
    assert len(first["reps_detail"]) == first["reps"]
    again.stop()
    assert "Traceback" not in again.log_text()


async def test_a_person_is_tied_by_offer_or_control_message_and_everyone_learns_it(server):
    from contract_client import PersonTrack, connect_camera, connect_monitor

    peer = CameraPeer(
        server.url,
        "cam_tied",
        open_source("demo", 320, 240, 5),
        fps=5,
        exercise="squat",
        token=ADMIN_TOKEN,
        person="lee",
    )
    peer.messages = asyncio.Queue()
    task = asyncio.create_task(peer.run())
    camera = await connect_camera(server.url, PersonTrack(), "cam_other")
    monitor = await connect_monitor(server.url, "cam_other")
    try:
        async with asyncio.timeout(30):
            while (message := await peer.messages.get()).get("type") != "person_best":
                pass
        assert message["person"] == "lee" and message["exercise"] == "squat"
        await camera.next_message("frame_processed")
        camera.send({"type": "set_person", "person": "mo"})
        assert (await camera.next_message("person_set"))["person"] == "mo"
        assert (await monitor.next_message("person_set"))["person"] == "mo"
        camera.send({"type": "set_person", "person": "bad id!"})
        assert "person" in (await camera.next_message("error"))["error"]
        camera.send({"type": "set_person"})
        assert "person" in (await camera.next_message("error"))["error"]
        monitor.send({"type": "set_person", "person": None})  # a trainer unties it
        assert (await camera.next_message("person_set"))["person"] is None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await peer.close()
        await monitor.close()
        await camera.close()


def test_the_history_database_is_readable_by_its_owner_only(tmp_path):
    store = HistoryStore(f"sqlite:///{tmp_path / 'private.sqlite3'}")
    store.prepare(0.0)
    store.ensure_person("pat", 1.0)
    store.close()
    for name in ("private.sqlite3", "private.sqlite3-wal"):
        path = tmp_path / name
        if path.exists():
            assert (os.stat(path).st_mode & 0o777) == 0o600, name


def test_a_hold_is_recorded_second_by_second(tmp_path):
    async def run() -> None:
        from sqlalchemy import func, select
        from sqlalchemy.orm import Session

        from komi_rtc.history.schema import HoldSecond

        store = HistoryStore(f"sqlite:///{tmp_path / 'hold.sqlite3'}")
        store.prepare(0.0)
        history = History(store)
        recorder = SetRecorder("cam", history, default_catalog())
        recorder.person_changed("jo", 100.0)
        recorder.exercise_changed("plank", "standard", 100.0)
        for t, total, good in ((101.0, 0.5, 0.5), (102.0, 1.4, 1.4), (104.5, 3.6, 3.1)):
            analysis = {
                "exercise": "plank",
                "kind": "hold",
                "phase": "hold",
                "hold_total_seconds": total,
                "hold_seconds": good,
                "feedback": [],
            }
            recorder.frame(analysis, [], True, t)
        recorder.close(105.0)
        await history.flush()
        [item] = await history.read(store.sets, "jo")
        with Session(store.engine) as db:
            seconds = db.scalar(select(func.count(HoldSecond.id)))
        await history.close()
        assert item["kind"] == "hold" and item["hold_seconds"] == 3.1
        assert item["hold_total_seconds"] == 3.6 and seconds == 3

    asyncio.run(run())


def test_a_dead_node_s_sets_end_and_a_set_its_camera_began_on_another_node_stays_open(tmp_path):
    """The camera reconnects to node_b (1-3 s) before node_a's death is noticed (5 s): the
    set it began there must survive the ending of node_a's sets."""
    url = f"sqlite:///{tmp_path / 'cluster.sqlite3'}"
    node_a, node_b = HistoryStore(url, "node_a"), HistoryStore(url, "node_b")
    legacy = HistoryStore(url)  # sets written before sets had a node (schema 0002)
    node_a.prepare(0.0)
    on_a, on_b, old_a = SetHandle(), SetHandle(), SetHandle()
    node_a.start_set(on_a, "kim", "squat", "standard", "reps", "cam", 100.0)
    node_a.add_rep(on_a, "kim", {"index": 1, "score": 90.0, "good": True}, 104.0)
    node_b.start_set(on_b, "kim", "squat", "standard", "reps", "cam", 108.0)
    legacy.start_set(old_a, "kim", "squat", "standard", "reps", "cam_old", 50.0)
    legacy.add_rep(old_a, "kim", {"index": 1, "score": 70.0, "good": True}, 55.0)
    untouched, other_legacy = SetHandle(), SetHandle()  # node_b's, and a legacy one elsewhere
    node_b.start_set(untouched, "lee", "squat", "standard", "reps", "cam_lee", 90.0)
    legacy.start_set(other_legacy, "lee", "squat", "standard", "reps", "cam_lee2", 60.0)
    # node_a is back with its id (a restart) before the death is acted on: its new set stays
    back = SetHandle()
    node_a.start_set(back, "kim", "squat", "standard", "reps", "cam", 111.0)
    ended = node_b.end_sets_of_node("node_a", ["cam", "cam_old"], started_before=110.0)
    assert ended == 2
    sets = {s["id"]: s for s in node_b.sets("kim") + node_b.sets("lee")}
    assert sets[on_a.id]["ended_at"] == 104.0 and sets[on_a.id]["reps"] == 1
    assert sets[old_a.id]["ended_at"] == 55.0
    for still_open in (on_b, untouched, other_legacy, back):
        assert sets[still_open.id]["ended_at"] is None
    # node_a restarts with the same id while "cam" is live on node_b: a set node_a left
    # open in its last run is ended, node_b's set of the same camera is not
    node_a.add_rep(back, "kim", {"index": 1, "score": 80.0, "good": True}, 123.0)
    restarted = HistoryStore(url, "node_a")
    live = frozenset({"cam", "cam_lee", "cam_lee2"})
    assert restarted.prepare(130.0, live, live_nodes=frozenset({"node_b"})) == 1
    sets = {s["id"]: s for s in restarted.sets("kim") + restarted.sets("lee")}
    assert sets[back.id]["ended_at"] == 123.0
    assert sets[on_b.id]["ended_at"] is None and sets[untouched.id]["ended_at"] is None
    # node_b dies while no node is up to see it; node_c starts: node_b's sets are ended
    node_b.add_rep(on_b, "kim", {"index": 1, "score": 85.0, "good": True}, 112.0)
    node_c = HistoryStore(url, "node_c")
    assert node_c.prepare(140.0, live, live_nodes=frozenset()) == 2
    sets = {s["id"]: s for s in node_c.sets("kim") + node_c.sets("lee")}
    assert sets[on_b.id]["ended_at"] == 112.0
    assert sets[untouched.id]["ended_at"] == 90.0  # nothing done in it, but kept
    assert sets[other_legacy.id]["ended_at"] is None  # no node: its camera is live
    for store in (node_a, node_b, legacy, restarted, node_c):
        store.close()


def test_csv_times_are_iso_8601_in_the_server_s_time_zone(tmp_path):
    """A person reading the export sees local wall-clock times; the offset keeps the instant."""
    script = (
        "import sys; from komi_rtc.history.store import HistoryStore, SetHandle\n"
        "store = HistoryStore(sys.argv[1]); store.prepare(0.0); handle = SetHandle()\n"
        "store.start_set(handle, 'ana', 'squat', 'standard', 'reps', 'cam', 1780000000.25)\n"
        "store.add_rep(handle, 'ana', {'index': 1, 'score': 90.0, 'errors': []}, 1780000003.5)\n"
        "print(store.csv('ana'), end=''); store.close()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, f"sqlite:///{tmp_path / 'tz.sqlite3'}"],
        env={**os.environ, "TZ": "KST-9"},  # POSIX form: needs no tzdata
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    [row] = list(csv.DictReader(io.StringIO(result.stdout)))
    assert row["set_started_at"] == "2026-05-29T05:26:40.250+09:00"
    assert row["ended_at"] == "2026-05-29T05:26:43.500+09:00"

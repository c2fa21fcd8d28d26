"""A short run of the load benchmark: the report is complete and consistent.

The figures themselves are judged from the full run (README), not here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.bench


def test_short_load_benchmark_report_is_complete(tmp_path):
    out = tmp_path / "bench"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "komi_rtc.bench",
            "--cameras",
            "2",
            "--duration",
            "6",
            "--workers",
            "2",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert (out / "report.png").stat().st_size > 10_000
    designs = {run["design"]: run for run in report["runs"]}
    assert set(designs) == {"komi", "naive"}
    assert {run["camera_encoding"] for run in report["runs"]} == {"live"}
    for design, run in designs.items():
        assert len(run["per_camera"]) == 2
        for camera in run["per_camera"].values():
            assert camera["frames_sent"] > 0
            assert 0 < camera["analysed_share"] <= 1
            for q in ("p50", "p95", "p99"):
                assert camera["latency_ms"][q] > 0
            assert camera["latency_ms"]["p50"] <= camera["latency_ms"]["p95"]
            assert len(camera["monitor_video_fps"]) == 1
            assert camera["monitor_video_fps"][0] > 0
            if design == "komi":  # the server's own count: a frame is analysed or skipped
                skipped = camera["frames_skipped_by_design"]
                assert isinstance(skipped, int)
                # the peer's own count of frames sent is read a moment before the server's
                # last reading: a frame or two either way, never a share of them
                slack = 3
                assert skipped + camera["frames_analysed"] <= camera["frames_sent"] + slack, camera
        total = run["total"]
        assert 0 < total["analysed_share"] <= 1
        assert total["frames_sent"] == sum(c["frames_sent"] for c in run["per_camera"].values())
        assert total["cpu_percent_mean"] > 0 and total["rss_mb_end"] > 0
        assert run["server_samples"]
    ours, baseline = designs["komi"]["total"], designs["naive"]["total"]
    ratio = report["ratios"]["2"]
    assert ratio["analysed_fps_ours_over_baseline"] == round(
        ours["analysed_fps"] / baseline["analysed_fps"], 2
    )
    p95 = ours["latency_ms"]["p95"] / baseline["latency_ms"]["p95"]
    assert ratio["p95_latency_ours_over_baseline"] == round(p95, 3)
    assert f"ours / baseline analysed fps {ratio['analysed_fps_ours_over_baseline']}x" in (
        result.stdout
    )
    assert "| komi | 2 |" in result.stdout and "| naive | 2 |" in result.stdout


def test_short_pose_paths_benchmark_compares_cpu_per_analysed_frame(tmp_path):
    """--pose-paths: wave 2's path and the keyframe paths in one run, each with its analysed
    frames per CPU-second of the server and its workers, and the flow's share; the cameras
    send one loop encoded ahead (rendered once for all of them), so they stream at once."""
    out = tmp_path / "bench"
    result = subprocess.run(
        [sys.executable, "-m", "komi_rtc.bench", "--pose-paths", "--cameras", "1"]
        + ["--monitors", "0", "--duration", "8", "--workers", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    designs = {run["design"]: run["total"] for run in report["runs"]}
    assert set(designs) == {"legacy-every-frame", "keyframes-full", "keyframes-lite"}
    assert {run["camera_encoding"] for run in report["runs"]} == {"ahead"}
    for design, total in designs.items():
        assert total["frames_with_keypoints"] > 0, (design, total)
        assert total["frames_per_cpu_second"] == round(
            total["frames_with_keypoints"] / total["server_cpu_seconds"], 2
        )
        assert 0 < total["main_cpu_ms_per_frame"] < total["cpu_ms_per_frame"]
    assert designs["legacy-every-frame"]["tracked_share"] == 0
    assert designs["keyframes-full"]["tracked_share"] > 0
    assert "| legacy-every-frame | 1 |" in result.stdout and "1.00x" in result.stdout


def test_pose_worker_cpu_benchmark_measures_both_paths_through_the_worker():
    """bench.keyframes --worker: a real pose worker per path, its CPU per frame from /proc;
    the keyframe path's flow carries some frames, wave 2's path none."""
    result = subprocess.run(
        [sys.executable, "-m", "komi_rtc.bench.keyframes", "--worker", "--frames", "20"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line.split("|") for line in result.stdout.splitlines() if "rendered squat" in line]
    assert len(rows) == 4
    for row in rows:
        assert float(row[3]) > 0
        assert (row[4].strip() == "0%") == ("legacy" in row[2])


def test_short_video_benchmark_renders_counts_and_reports(tmp_path):
    """The video benchmark's short form: one rendered session through BlazePose and the live
    analysis, and a complete report (the full run's figures are in the README)."""
    output = tmp_path / "video.json"
    result = subprocess.run(
        [sys.executable, "-m", "komi_rtc.bench.video", "--sessions", "1", "--split", "dev"]
        + ["--exercise", "lateral_raise", "--workers", "1", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads(output.read_text())
    (session,) = report["dev"]["sessions"]
    assert session["person_found"] >= 0.95
    assert session["summary"]["reps"] == session["true_count"] > 0
    table = report["dev"]["table"]
    assert set(table) == {"lateral_raise/front"}
    row = table["lateral_raise/front"]
    assert row["exact"] == 1.0 and row["obo"] == 1.0 and row["sessions"] == 1
    assert row["rom_error_deg"] is not None and row["rom_error_deg"] <= report["targets"]["rom_deg"]
    # the exit code says whether every row meets its targets (form errors too)
    assert result.returncode == (0 if row["meets_targets"] else 1), result.stderr[-2000:]
    assert "lateral_raise/front" in result.stdout


def test_short_attack_benchmark_shows_issue_22_attacks_refused(tmp_path):
    """The attack benchmark's issue-22 modes in short form against this checkout: a flooded
    offer is refused at once while /healthz answers and a streaming camera stays, extra
    `komi` channels are closed and leave no sink, and a camera link reads no one else's
    history (the full run's figures, old code included, are in the README)."""
    out = tmp_path / "attack.json"
    result = subprocess.run(
        [sys.executable, "-m", "komi_rtc.bench.attack", "--attack", "sdp-flood", "channels"]
        + ["history", "--candidates", "1000", "--channels", "5", "--seconds", "2"]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())

    (flood,) = report["sdp-flood"]
    assert flood["candidates"] == 1000
    assert flood["offer_status"] == 400 and "invalid SDP offer" in flood["offer_error"]
    assert flood["offer_s"] < 1.0
    assert flood["healthz_requests"] > 0 and flood["healthz_failed"] == 0
    assert flood["healthz_slowest_s"] < 1.0
    assert not flood["camera_dropped"]

    (channels,) = report["channels"]
    assert channels["channels_opened"] == 5 and channels["channels_kept_open"] == 1
    assert channels["channels_with_results"] == 1 and channels["results"] > 0
    assert any("one 'komi' data channel" in error for error in channels["errors"])
    assert channels["monitors_listed_after_close"] == 0

    (history,) = report["history"]
    assert history["admin_tie_status"] == 200
    assert history["set_person_reply"]["type"] == "error"
    assert "may not tie" in history["set_person_reply"]["error"]
    assert set(history["reads"]) == {"sets", "sets.csv", "recommendation"}
    for read in history["reads"].values():
        assert read["status"] == 403 and "may not read p1's history" in read["error"]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert any("| 1,000 |" in row and "| 400 |" in row for row in rows)  # the table says it too

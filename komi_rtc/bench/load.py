"""`python -m komi_rtc.bench`: load benchmark of the real server, every peer its own process.

Starts the server (ours, and the naive baseline for a side-by-side ratio), N camera peers
streaming the demo person and M monitor peers per camera, all over loopback; samples the
server's CPU and memory (its pose workers included); reports per camera and in total.
`--pose-paths` runs wave 2's path (the legacy API, the model on every frame) and the
keyframe paths (full, lite) side by side and reports analysed frames (those whose
`frame_processed` carries keypoints) per CPU-second of the server and its workers.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from .peer import write_loop_file
from .server_process import TIMELY_MS, free_port, percentiles, wait_ready

WARMUP_S = 3.0

# --pose-paths: each design's server options; every camera does squats (the analysis runs)
POSE_PATHS: dict[str, list[str]] = {
    "legacy-every-frame": ["--legacy-pose", "--keyframe-interval", "1"],
    "keyframes-full": ["--pose-model", "full"],
    "keyframes-lite": ["--pose-model", "lite"],
}


_WATCHED: dict[int, psutil.Process] = {}
_CPU_SECONDS: dict[int, float] = {}  # user + system seconds of each server process seen


def _sample(process: psutil.Process, since: float) -> dict[str, float]:
    """CPU and memory of the server and its pose workers (Process objects are kept, since
    psutil measures CPU between two calls on the same object)."""
    members = [process]
    try:
        members += process.children(recursive=True)
    except psutil.Error:
        pass
    members = [_WATCHED.setdefault(m.pid, m) for m in members]
    cpu = rss = 0.0
    for member in members:
        try:
            cpu += member.cpu_percent(None)
            rss += member.memory_info().rss
            times = member.cpu_times()
            _CPU_SECONDS[member.pid] = times.user + times.system
        except psutil.Error:
            continue  # a process that ended keeps its last reading
    return {
        "t": round(time.monotonic() - since, 2),
        "monotonic": time.monotonic(),
        "cpu_seconds": round(sum(_CPU_SECONDS.values()), 3),
        "main_cpu_seconds": round(_CPU_SECONDS.get(process.pid, 0.0), 3),
        "cpu_percent": round(cpu, 1),
        "rss_mb": round(rss / 2**20, 1),
        "machine_cpu_percent": round(psutil.cpu_percent(None) * (psutil.cpu_count() or 1), 1),
    }


def run_load(
    design: str,
    cameras: int,
    monitors: int,
    fps: float,
    duration: float,
    workers: int | None,
    workdir: Path,
    server_args: list[str] | None = None,
    loop_file: Path | None = None,
) -> dict[str, Any]:
    """One run: returns the report of one server design under one load. `komi-squat`:
    every camera's squats analysed; `komi-history`: also tied to its own person, so every
    rep is written to the history database as it happens. `loop_file`: the cameras send
    this pre-encoded loop (`--encode ahead`) instead of encoding every frame."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # the server runs with access control on, as deployed; its peers present the admin token
    token = secrets.token_urlsafe(24)
    env = dict(
        os.environ,
        PYTHONUNBUFFERED="1",
        GLOG_minloglevel="2",
        KOMI_ADMIN_TOKEN=token,
        KOMI_TOKEN=token,
    )
    if design != "naive":
        command = [
            sys.executable,
            "-m",
            "komi_rtc.server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        if workers:
            command += ["--workers", str(workers)]
        command += ["--state-dir", str(workdir / f"state-{design}-{cameras}")]
        command += ["--max-cameras-per-address", "0"]  # every camera comes from this machine
        command += server_args or []
        if design == "komi-open":
            command.append("--open")
    else:
        command = [sys.executable, "-m", "komi_rtc.bench.naive_server", "--port", str(port)]
    log = open(workdir / f"{design}-server.log", "wb")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    peers: list[tuple[subprocess.Popen[bytes], Path]] = []
    samples: list[dict[str, float]] = []
    stats: dict[str, Any] = {}
    try:
        wait_ready(url + "/", server)
        watched = psutil.Process(server.pid)
        _sample(watched, time.monotonic())  # prime cpu_percent
        started = time.monotonic()

        def spawn(role: str, camera_id: str, out: Path, *extra: str) -> None:
            command = [
                sys.executable,
                "-m",
                "komi_rtc.bench.peer",
                role,
                "--server",
                url,
                "--camera-id",
                camera_id,
                "--duration",
                str(duration),
                "--out",
                str(out),
                *extra,
            ]
            process = subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            peers.append((process, out))

        for i in range(cameras):
            camera_id = f"bench_cam_{i + 1}"
            extra = ["--fps", str(fps)]
            if loop_file is not None:
                extra += ["--loop-file", str(loop_file)]
            if design in ("komi-squat", "komi-history") or design in POSE_PATHS:
                extra += ["--exercise", "squat"]
            if design == "komi-history":
                extra += ["--person", f"bench_person_{i + 1}"]
            spawn("camera", camera_id, workdir / f"{design}-{camera_id}.json", *extra)
            for m in range(monitors):
                spawn("monitor", camera_id, workdir / f"{design}-{camera_id}-monitor{m + 1}.json")
        while any(p.poll() is None for p, _ in peers):
            time.sleep(0.5)  # sampling interval
            samples.append(_sample(watched, started))
            if design != "naive":
                request = urllib.request.Request(
                    url + "/stats", headers={"Authorization": f"Bearer {token}"}
                )
                try:
                    with urllib.request.urlopen(request, timeout=2) as response:
                        read = json.load(response)
                except OSError:
                    read = {}
                # each camera's newest counters while it was there (a camera that connected
                # late on a busy machine, or left already, keeps its last reading)
                latest: dict[str, Any] = stats.setdefault("cameras", {})
                latest.update(read.get("cameras", {}))
            if time.monotonic() - started > duration + 60:
                break
    finally:
        for process, _ in peers:
            if process.poll() is None:
                process.kill()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    results = [json.loads(path.read_text()) for _, path in peers if path.exists()]
    return _report(design, cameras, monitors, fps, duration, results, samples, stats)


def _report(
    design: str,
    cameras: int,
    monitors: int,
    fps: float,
    duration: float,
    results: list[dict[str, Any]],
    samples: list[dict[str, float]],
    stats: dict[str, Any],
) -> dict[str, Any]:
    per_camera: dict[str, Any] = {}
    all_latencies: list[float] = []
    efficiency = _frames_per_cpu_second(results, samples)
    for result in results:
        if result["role"] != "camera":
            continue
        latencies = [row[1] for row in result["results"] if row[0] >= WARMUP_S]
        inference = [row[2] for row in result["results"] if row[0] >= WARMUP_S and row[2]]
        server_ms = [row[3] for row in result["results"] if row[0] >= WARMUP_S and row[3]]
        all_latencies += latencies
        sent = result["frames_sent"]
        analysed = len(result["results"])
        server = stats.get("cameras", {}).get(result["camera_id"], {})
        per_camera[result["camera_id"]] = {
            "reps": result.get("reps", 0),
            "frames_sent": sent,
            "frames_analysed": analysed,
            "analysed_share": round(analysed / sent, 3) if sent else 0.0,
            "analysed_fps": round(analysed / result["duration"], 2),
            "timely_analysed_fps": round(
                sum(1 for row in result["results"] if row[1] <= TIMELY_MS) / result["duration"], 2
            ),
            "frames_skipped_by_design": server.get("frames_skipped"),
            "latency_ms": percentiles(latencies),
            "inference_ms_mean": round(float(np.mean(inference)), 1) if inference else None,
            "server_ms_mean": round(float(np.mean(server_ms)), 1) if server_ms else None,
            "latency_series": _series(result["results"]),
            "monitor_video_fps": [],
        }
    for result in results:
        if result["role"] == "monitor" and result["camera_id"] in per_camera:
            frames = [t for t in result["frames"] if t >= WARMUP_S]
            span = max(1e-6, result["duration"] - WARMUP_S)
            per_camera[result["camera_id"]]["monitor_video_fps"].append(
                round(len(frames) / span, 2)
            )
    shares = [c["analysed_share"] for c in per_camera.values()]
    sent = sum(c["frames_sent"] for c in per_camera.values())
    analysed = sum(c["frames_analysed"] for c in per_camera.values())
    # while the peers stream: the samples taken as they disconnect say nothing of growth
    steady = [s for s in samples if WARMUP_S <= s["t"] <= duration - 1]
    rss = [s["rss_mb"] for s in steady]
    total: dict[str, Any] = {
        "reps": sum(c["reps"] for c in per_camera.values()),
        "frames_sent": sent,
        "frames_analysed": analysed,
        "analysed_share": round(analysed / sent, 3) if sent else 0.0,
        "analysed_fps": round(analysed / duration, 2),
        "timely_analysed_fps": round(sum(c["timely_analysed_fps"] for c in per_camera.values()), 2),
        "latency_ms": percentiles(all_latencies),
        "fairness_spread": round((max(shares) - min(shares)) / max(1e-6, float(np.mean(shares))), 3)
        if shares
        else None,
        "cpu_percent_mean": round(float(np.mean([s["cpu_percent"] for s in samples])), 1)
        if samples
        else None,
        "machine_cpu_percent_mean": round(
            float(np.mean([s["machine_cpu_percent"] for s in samples[1:]])), 1
        )
        if len(samples) > 1
        else None,
        "machine_cpu_percent_capacity": 100 * (psutil.cpu_count() or 1),
        "rss_mb_start": rss[0] if rss else None,
        "rss_mb_end": rss[-1] if rss else None,
        **efficiency,
    }
    if duration >= 150:
        first = [
            row[1]
            for r in results
            if r["role"] == "camera"
            for row in r["results"]
            if WARMUP_S <= row[0] < 60 + WARMUP_S
        ]
        # the minute before the peers stop: results in the last second meet 16 processes
        # tearing down at once, which is the benchmark's doing, not the server's
        last = [
            row[1]
            for r in results
            if r["role"] == "camera"
            for row in r["results"]
            if duration - 61 <= row[0] < duration - 1
        ]
        total["p95_first_minute_ms"] = percentiles(first)["p95"]
        total["p95_last_minute_ms"] = percentiles(last)["p95"]
        after_warmup = [s["rss_mb"] for s in steady if s["t"] >= 60]
        if after_warmup:
            total["memory_growth_after_first_minute"] = round(
                (after_warmup[-1] - after_warmup[0]) / after_warmup[0], 4
            )
    return {
        "design": design,
        "cameras": cameras,
        "monitors_per_camera": monitors,
        "fps": fps,
        "duration_s": duration,
        "per_camera": per_camera,
        "total": total,
        "server_samples": samples,
    }


def _frames_per_cpu_second(
    results: list[dict[str, Any]], samples: list[dict[str, float]]
) -> dict[str, Any]:
    """Analysed frames with keypoints per CPU-second of the server and its workers, over the
    window in which every camera streams (after its warm-up, before the first one stops);
    peers and samples share the machine's monotonic clock."""
    cameras = [r for r in results if r["role"] == "camera" and "start_monotonic" in r]
    if not cameras or len(samples) < 2:
        return {}
    begin = max(r["start_monotonic"] for r in cameras) + WARMUP_S
    end = min(r["start_monotonic"] + r["duration"] for r in cameras) - 1.0
    inside = [s for s in samples if begin <= s["monotonic"] <= end]
    if len(inside) < 2:
        return {}
    begin, end = inside[0]["monotonic"], inside[-1]["monotonic"]
    cpu_seconds = inside[-1]["cpu_seconds"] - inside[0]["cpu_seconds"]
    main_seconds = inside[-1]["main_cpu_seconds"] - inside[0]["main_cpu_seconds"]
    rows = [
        row
        for r in cameras
        for row in r["results"]
        if begin <= r["start_monotonic"] + row[0] <= end and len(row) > 4
    ]
    with_keypoints = sum(row[4] for row in rows)
    tracked = sum(row[5] for row in rows if len(row) > 5)
    return {
        "window_s": round(end - begin, 1),
        "server_cpu_seconds": round(cpu_seconds, 2),
        "frames_with_keypoints": with_keypoints,
        "tracked_share": round(tracked / with_keypoints, 3) if with_keypoints else None,
        "frames_per_cpu_second": round(with_keypoints / cpu_seconds, 2) if cpu_seconds else None,
        "cpu_ms_per_frame": round(cpu_seconds * 1000 / with_keypoints, 1)
        if with_keypoints
        else None,
        # the server process itself (decoding, analysis, messages) apart from its workers
        "main_cpu_ms_per_frame": round(main_seconds * 1000 / with_keypoints, 1)
        if with_keypoints
        else None,
    }


def format_pose_paths(reports: list[dict[str, Any]]) -> str:
    """The side-by-side table of --pose-paths, with each path's ratio to wave 2's."""
    lines = [
        "| path | cameras | analysed share | fairness spread | frames with keypoints per "
        "CPU-s | vs legacy | CPU ms per frame (of which server process) | tracked by flow | "
        "latency p50 / p95 ms |",
        "|" + "---|" * 9,
    ]
    for r in reports:
        t = r["total"]
        legacy = next(
            (
                x["total"].get("frames_per_cpu_second")
                for x in reports
                if x["design"] == "legacy-every-frame" and x["cameras"] == r["cameras"]
            ),
            None,
        )
        rate = t.get("frames_per_cpu_second")
        ratio = f"{rate / legacy:.2f}x" if rate and legacy else "–"
        tracked = t.get("tracked_share")
        lines.append(
            f"| {r['design']} | {r['cameras']} | {t['analysed_share']:.1%} | "
            f"{t['fairness_spread']} | {rate} | {ratio} | {t.get('cpu_ms_per_frame')} "
            f"({t.get('main_cpu_ms_per_frame')}) | "
            f"{'–' if tracked is None else f'{tracked:.0%}'} | "
            f"{t['latency_ms']['p50']} / {t['latency_ms']['p95']} |"
        )
    return "\n".join(lines)


def _series(results: list[list[float]], window: float = 5.0) -> list[list[float | None]]:
    """[window start s, latency p95 ms, mean inference ms, mean server ms] per window, so
    the plot shows latency over time and a drift can be traced to where it happens."""
    if not results:
        return []
    end = results[-1][0]
    series = []
    start = 0.0
    while start <= end:
        rows = [row for row in results if start <= row[0] < start + window]
        if rows:
            inference = [r[2] for r in rows if len(r) > 2 and r[2] is not None]
            server = [r[3] for r in rows if len(r) > 3 and r[3] is not None]
            series.append(
                [
                    start,
                    round(float(np.percentile([r[1] for r in rows], 95)), 1),
                    round(float(np.mean(inference)), 1) if inference else None,
                    round(float(np.mean(server)), 1) if server else None,
                ]
            )
        start += window
    return series


def plot(reports: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for report in reports:
        label = f"{report['design']} {report['cameras']} cam"
        for camera_id, camera in report["per_camera"].items():
            series = camera["latency_series"]
            if series:
                top.plot(
                    [s[0] for s in series],
                    [s[1] for s in series],
                    label=f"{label} {camera_id}",
                    linestyle="-" if report["design"] == "komi" else "--",
                )
        samples = report["server_samples"]
        bottom.plot([s["t"] for s in samples], [s["cpu_percent"] for s in samples], label=label)
    top.set_ylabel("latency p95 (ms, 5 s windows)")
    top.set_yscale("log")
    top.legend(fontsize=6)
    bottom.set_ylabel("server CPU % (all processes)")
    bottom.set_xlabel("seconds")
    bottom.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def format_table(reports: list[dict[str, Any]]) -> str:
    lines = [
        "| design | cameras | fps | analysed share | analysed fps | of which within 0.5 s | "
        "skipped by design | latency p50 / p95 / p99 ms | monitor video fps | fairness spread | "
        "server CPU % | machine CPU % | server RSS MB |",
        "|" + "---|" * 13,
    ]
    for r in reports:
        t = r["total"]
        lat = t["latency_ms"]
        skipped = sum(c["frames_skipped_by_design"] or 0 for c in r["per_camera"].values())
        monitor = [f for c in r["per_camera"].values() for f in c["monitor_video_fps"]]
        lines.append(
            f"| {r['design']} | {r['cameras']} | {r['fps']:g} | {t['analysed_share']:.1%} | "
            f"{t['analysed_fps']} | {t['timely_analysed_fps']} | {skipped} | "
            f"{lat['p50']} / {lat['p95']} / {lat['p99']} | "
            f"{round(float(np.mean(monitor)), 1) if monitor else '–'} | {t['fairness_spread']} | "
            f"{t['cpu_percent_mean']} | {t['machine_cpu_percent_mean']} of "
            f"{t['machine_cpu_percent_capacity']} | {t['rss_mb_start']} → {t['rss_mb_end']} |"
        )
    return "\n".join(lines)


def token_check_cost() -> str:
    """What one token check costs; the server makes one per request or connection and none
    per frame (server/access.py)."""
    from ..server.access import TokenAuthority

    authority = TokenAuthority(secrets.token_urlsafe(24))
    token = authority.mint("camera", "bench_cam_1", 3600)["token"]
    count = 2000
    start = time.perf_counter()
    for _ in range(count):
        authority.check(token)
    per_check_us = (time.perf_counter() - start) / count * 1e6
    return (
        f"token check: {per_check_us:.1f} us each (PyJWT HS256), made once per request or "
        "connection; checks on the per-frame path: 0"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m komi_rtc.bench", description=__doc__)
    parser.add_argument(
        "--nodes",
        metavar="N[,N]",
        help="run the cluster scale-out benchmark instead (bench/cluster.py: --nodes 1,2 --help)",
    )
    parser.add_argument(
        "--cameras", type=int, nargs="+", default=[1, 4], help="camera counts to run (1 4)"
    )
    parser.add_argument("--monitors", type=int, default=1, help="monitors per camera (1)")
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per run (30)")
    parser.add_argument("--workers", type=int, default=None, help="server pose workers")
    parser.add_argument("--no-baseline", action="store_true", help="skip the naive design")
    parser.add_argument(
        "--history-cost",
        action="store_true",
        help="run our server with every camera doing analysed squats, without and with "
        "each camera tied to a person (every rep written to the history database)",
    )
    parser.add_argument(
        "--access-cost",
        action="store_true",
        help="also run our server with --open (no access control), to show what checking "
        "tokens costs on the frame path",
    )
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        help="extra option for our server, e.g. --server-arg=--analysis-fps=5",
    )
    parser.add_argument(
        "--pose-paths",
        action="store_true",
        help="run wave 2's pose path (legacy API, every frame) and the keyframe paths (full, "
        "lite) side by side: analysed frames per server CPU-second and latency",
    )
    parser.add_argument(
        "--encode",
        choices=("live", "ahead"),
        default=None,
        help="live (default): each camera renders the demo person and aiortc encodes every "
        "frame; ahead (the default with --pose-paths): the loop is rendered and encoded to "
        "VP8 once and every camera sends its packets, as a camera's hardware encoder would, "
        "so the cameras leave this machine's cores to the server",
    )
    parser.add_argument("--out", type=Path, default=Path("artifacts/bench"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    encode = args.encode or ("ahead" if args.pose_paths else "live")
    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        loop_file = None
        if encode == "ahead":
            loop_file = Path(tmp) / "loop.vp8"
            print("rendering and encoding the demo loop once for every camera ...", flush=True)
            write_loop_file(loop_file, 640, 480, args.fps)
        for count in args.cameras:
            designs = ["komi"] + (["komi-open"] if args.access_cost else [])
            if args.history_cost:
                designs = ["komi-squat", "komi-history"]
            designs += [] if args.no_baseline else ["naive"]
            if args.pose_paths:
                designs = list(POSE_PATHS)
            for design in designs:
                print(
                    f"running {design}: {count} camera(s) x {args.fps:g} fps, "
                    f"{args.monitors} monitor(s) each, "
                    f"{args.duration:g} s ...",
                    flush=True,
                )
                reports.append(
                    run_load(
                        design,
                        count,
                        args.monitors,
                        args.fps,
                        args.duration,
                        args.workers,
                        Path(tmp),
                        POSE_PATHS.get(design, []) + args.server_arg,
                        loop_file,
                    )
                )
                reports[-1]["camera_encoding"] = encode
    ratios = {}
    ours_total_timely: dict[str, float] = {}
    base_total_timely: dict[str, float | None] = {}
    for count in args.cameras:
        ours = next(r for r in reports if r["design"] != "naive" and r["cameras"] == count)
        base = next((r for r in reports if r["design"] == "naive" and r["cameras"] == count), None)
        ours_total_timely[str(count)] = ours["total"]["timely_analysed_fps"]
        base_total_timely[str(count)] = base["total"]["timely_analysed_fps"] if base else None
        if base:
            p95_ours, p95_base = (
                ours["total"]["latency_ms"]["p95"],
                base["total"]["latency_ms"]["p95"],
            )
            ratios[str(count)] = {
                "analysed_fps_ours_over_baseline": round(
                    ours["total"]["analysed_fps"] / max(1e-6, base["total"]["analysed_fps"]), 2
                ),
                "p95_latency_ours_over_baseline": round(p95_ours / p95_base, 3)
                if p95_ours and p95_base
                else None,
                "timely_analysed_fps_ours_over_baseline": round(
                    ours["total"]["timely_analysed_fps"]
                    / max(1e-6, base["total"]["timely_analysed_fps"]),
                    2,
                )
                if base["total"]["timely_analysed_fps"]
                else None,
            }
    print(format_table(reports))
    if args.pose_paths:
        print(format_pose_paths(reports))
    for report in reports:
        if report["design"] in ("komi-squat", "komi-history"):
            print(
                f"{report['design']}, {report['cameras']} cameras: {report['total']['reps']} "
                "reps counted"
                + (", each written as it happened" if "history" in report["design"] else "")
            )
    if args.access_cost:
        print(token_check_cost())
    for count, ratio in ratios.items():
        print(
            f"{count} camera(s): ours / baseline analysed fps "
            f"{ratio['analysed_fps_ours_over_baseline']}x, p95 latency "
            f"{ratio['p95_latency_ours_over_baseline']}x; analysed fps with results within "
            f"{TIMELY_MS:.0f} ms: ours {ours_total_timely[count]}, baseline "
            f"{base_total_timely[count]}"
        )
    (args.out / "report.json").write_text(json.dumps({"runs": reports, "ratios": ratios}, indent=1))
    plot(reports, args.out / "report.png")
    print(f"JSON: {args.out / 'report.json'}  plot: {args.out / 'report.png'}")
    return 0

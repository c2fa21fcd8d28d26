"""Station benchmark: sync error, fused rep counts and the extra latency of a station.

`python -m komi_rtc.bench.stations [--sessions N] [--seconds S] [--out FILE.json]`

Starts the real server, then per session two camera processes (komi_rtc.bench.station_peer)
film one rendered person doing squats, from the side and from the front, into one station:
started at different times, with their clocks set off by seconds, and in some sessions with
one view failing (its camera sees nobody from some moment on). Measured per session:
- true sync error: how far apart the two frames of each pair really were captured (each
  camera process knows when it captured every frame), and the server's own estimate. The
  cameras are not genlocked: each captures on its own phase, so a pair can be up to half a
  frame interval apart even when the server is exact;
- the server's clock error: per pair, the capture interval the server computed from the
  sender reports against the true one (what pairing depends on);
- the station's rep count against the reps the person really did while it counted, and
  how many of them both views saw (the other view's rep matched to it);
- how much later `station_processed` reaches a camera than its own `frame_processed`.
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

from ..synthetic.exercise_video import ExercisingPersonSource
from .server_process import free_port, wait_ready

FPS = 10.0

# (name, side camera's start delay s, clock offsets (side, front) s, failing view, fail after s)
SCENARIOS: list[tuple[str, float, tuple[float, float], str | None, float | None]] = [
    ("together", 0.0, (0.0, 0.0), None, None),
    ("front starts 1.3 s later", 1.3, (0.0, 0.0), None, None),
    ("front clock +2.5 s", 0.0, (0.0, 2.5), None, None),
    ("clocks -1.7 / +0.8 s, 0.6 s apart", 0.6, (-1.7, 0.8), None, None),
    ("front view fails", 0.0, (0.0, 0.0), "front", 10.0),
    ("side view fails", 0.0, (0.0, 0.0), "side", 10.0),
    ("clock +3 s and front fails", 0.9, (0.0, 3.0), "front", 14.0),
    ("clocks +1 / -1 s", 0.3, (1.0, -1.0), None, None),
]


def _request(url: str, token: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method="POST" if body is not None else "GET",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _quiet_time(performance: Any, after: float) -> float:
    """The first moment after `after` (seconds into the performance) when no rep is in
    progress for the next 0.3 s, so counting starts between reps."""
    reps = performance.reps_until(after + 3 * performance.loop_seconds)
    t = after
    for _ in range(400):
        if all(not (r.start - 0.3 <= t <= r.end + 0.1) for r in reps):
            return t
        t += 0.05
    return after


def run_session(
    url: str, token: str, workdir: Path, index: int, scenario: tuple[Any, ...], seconds: float
) -> dict[str, Any]:
    name, delay, (side_offset, front_offset), failing, fail_after = scenario
    station = f"bench_st_{index}"
    epoch = time.time()
    duration = seconds + 12.0
    env = dict(os.environ, KOMI_TOKEN=token, GLOG_minloglevel="2")
    peers = []
    for camera, view, offset, start in (
        ("side", "side_left", side_offset, 0.0),
        ("front", "front", front_offset, delay),
    ):
        if start:
            time.sleep(start)  # this camera starts later (the scenario)
        command = [sys.executable, "-m", "komi_rtc.bench.station_peer"]
        command += ["--server", url, "--camera-id", f"{station}_{camera}", "--station", station]
        command += ["--view", view, "--epoch", str(epoch), "--fps", str(FPS)]
        command += ["--duration", str(duration - start), "--clock-offset", str(offset)]
        command += ["--out", str(workdir / f"{station}_{camera}.json")]
        if failing == camera and fail_after is not None:
            command += ["--fail-after", str(fail_after - start)]
        peers.append(
            subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        )
    # both cameras streaming and analysed: then count from a moment between reps
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stations = _request(f"{url}/stations", token)["stations"]
        mine = [s for s in stations if s["id"] == station]
        if mine and len(mine[0]["streaming"]) == 2 and mine[0]["groups"] > 10:
            break
        time.sleep(0.2)  # polling the server for a scenario step
    performance = ExercisingPersonSource(320, 240, FPS, "squat", "side_left").performance
    start_at = _quiet_time(performance, time.time() - epoch + 0.5)
    time.sleep(max(0.0, start_at - (time.time() - epoch)))  # until the quiet moment
    _request(f"{url}/stations/{station}/exercise", token, {"exercise": "squat"})
    counted_from = time.time() - epoch
    time.sleep(seconds)  # the session's counting time
    counted_until = time.time() - epoch
    summary = next(s for s in _request(f"{url}/stations", token)["stations"] if s["id"] == station)
    for peer in peers:
        try:
            peer.wait(duration + 60)
        except subprocess.TimeoutExpired:
            peer.kill()
    side = json.loads((workdir / f"{station}_side.json").read_text())
    front = json.loads((workdir / f"{station}_front.json").read_text())
    truth = [
        r
        for r in performance.reps_until(counted_until + 0.5)
        if r.start >= counted_from - 0.05 and r.end <= counted_until - 0.3
    ]
    counted = [
        r
        for r in side["station_reps"]
        if counted_from <= float(r.get("ended_at", 0)) - epoch <= counted_until - 0.3
    ]
    # a rep both views saw: the other view's rep was matched to it (fusion.py)
    both_views = [r for r in counted if len(r.get("views") or {}) == 2]
    true_errors = []
    clock_errors: list[float] = []
    estimated = []
    for _, frames, sync_ms, _, captured in side["station_messages"]:
        if len(frames) != 2:
            continue
        a = side["true_capture"].get(str(frames.get(f"{station}_side")))
        b = front["true_capture"].get(str(frames.get(f"{station}_front")))
        if a is not None and b is not None:
            true_errors.append(abs(a - b) * 1000.0)
            estimated.append(sync_ms)
            # the server's clock for each camera: its capture interval against the true one
            server = captured.get(f"{station}_side"), captured.get(f"{station}_front")
            if None not in server:
                clock_errors.append(abs((a - b) - (server[0] - server[1])) * 1000.0)
    pairs = [m for m in side["station_messages"] if len(m[1]) == 2]
    extra_ms = []
    arrivals = side["frame_arrivals"]
    for received, frames, *_ in side["station_messages"]:
        pts = frames.get(f"{station}_side")
        own = arrivals.get(str(pts))
        if own is not None:
            extra_ms.append((received - own) * 1000.0)

    def pct(values: list[float], q: float) -> float | None:
        return round(float(np.percentile(values, q)), 1) if values else None

    return {
        "scenario": name,
        "true_reps": len(truth),
        "station_reps": len(counted),
        "exact": len(truth) == len(counted),
        "reps_with_both_views": len(both_views),
        "camera_level_reps_sent": side["camera_reps"] + front["camera_reps"],
        "groups": len(side["station_messages"]),
        "paired_share": round(len(pairs) / max(1, len(side["station_messages"])), 3),
        "true_sync_ms_p50": pct(true_errors, 50),
        "true_sync_ms_p95": pct(true_errors, 95),
        "true_sync_ms_max": pct(true_errors, 100),
        "clock_error_ms_p50": pct(clock_errors, 50),
        "clock_error_ms_p95": pct(clock_errors, 95),
        "estimated_sync_ms_mean": round(float(np.mean(estimated)), 1) if estimated else None,
        "server_sync_error_ms": summary["sync_error_ms"],
        "station_extra_latency_ms_p50": pct(extra_ms, 50),
        "station_extra_latency_ms_p95": pct(extra_ms, 95),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m komi_rtc.bench.stations", description=__doc__)
    parser.add_argument("--sessions", type=int, default=len(SCENARIOS))
    parser.add_argument("--seconds", type=float, default=24.0, help="counting time per session")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    token = secrets.token_urlsafe(24)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        env = dict(os.environ, KOMI_ADMIN_TOKEN=token, PYTHONUNBUFFERED="1", GLOG_minloglevel="2")
        log = open(workdir / "server.log", "wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "komi_rtc.server", "--host", "127.0.0.1", "--port", str(port)]
            + ["--state-dir", str(workdir / "state")],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_ready(url + "/healthz", server)
            print(
                "| scenario | reps (true / station) | exact | reps both views saw | "
                "pairs with both views | true sync ms p50 / p95 / max | server's clock error ms "
                "p50 / p95 | server's estimate ms | "
                "station_processed after frame_processed ms p50 / p95 |\n"
                "|---|---|---|---|---|---|---|---|---|",
                flush=True,
            )
            for index in range(args.sessions):
                scenario = SCENARIOS[index % len(SCENARIOS)]
                row = run_session(url, token, workdir, index, scenario, args.seconds)
                rows.append(row)
                print(
                    f"| {row['scenario']} | {row['true_reps']} / {row['station_reps']} | "
                    f"{'yes' if row['exact'] else 'NO'} | {row['reps_with_both_views']} | "
                    f"{row['paired_share']:.0%} | "
                    f"{row['true_sync_ms_p50']} / {row['true_sync_ms_p95']} / "
                    f"{row['true_sync_ms_max']} | {row['clock_error_ms_p50']} / "
                    f"{row['clock_error_ms_p95']} | {row['estimated_sync_ms_mean']} | "
                    f"{row['station_extra_latency_ms_p50']} / "
                    f"{row['station_extra_latency_ms_p95']} |",
                    flush=True,
                )
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()
    exact = sum(r["exact"] for r in rows)
    print(f"fused counts exact in {exact} of {len(rows)} sessions; frames {1000 / FPS:g} ms apart")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

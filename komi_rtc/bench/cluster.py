"""`python -m komi_rtc.bench --nodes 1,2`: scale-out benchmark of a KOMI cluster.

Starts its own Redis and N server nodes (one pose worker each) on this machine, and camera
peers as separate processes, all offering to node 1: the cluster's placement is what spreads
them. Once every camera is placed and warmed up it measures a window: analysed frames a
second in total, per node and per camera (with fairness), latency, and what Redis did
meanwhile (`INFO commandstats` at both ends). The claim it checks: Redis traffic is the
heartbeat's (one pipeline and one MGET per node a second), not the frames'.
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
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from ..server.cluster import HEARTBEAT_S
from .server_process import TIMELY_MS, free_port, percentiles, wait_ready

SAVED_REPORT = Path("docs/benchmarks/cluster_scaleout.json")
PLACEMENT_TIMEOUT_S = 60.0  # peers import aiortc, render their loop and negotiate meanwhile
STOP_TIMEOUT_S = 15.0  # a node stops its pose worker and leaves the cluster meanwhile
POLL_S = 0.25


@dataclass
class _Node:
    id: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class _Camera:
    id: str
    process: subprocess.Popen[bytes]
    out: Path
    spawned: float  # monotonic; the peer's clock starts a little later, after its imports


@dataclass
class _Snapshot:
    """Counters at one edge of the measured window."""

    at: float
    redis: dict[str, int]
    stats: dict[str, dict[str, Any]]  # node id -> its GET /stats
    nodes: list[dict[str, Any]]  # GET /cluster on the entry node
    node_cpu_s: dict[str, float]  # node id -> CPU seconds of the server and its workers
    machine_busy_s: float


@dataclass
class _Fleet:
    """Everything one run started, so `stop()` can end all of it, Ctrl-C included."""

    workdir: Path
    token: str
    redis: subprocess.Popen[bytes] | None = None
    redis_port: int = 0
    nodes: list[_Node] = field(default_factory=list)
    cameras: list[_Camera] = field(default_factory=list)
    _logs: list[Any] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return dict(
            os.environ,
            PYTHONUNBUFFERED="1",
            GLOG_minloglevel="2",
            KOMI_ADMIN_TOKEN=self.token,
            KOMI_TOKEN=self.token,
        )

    def _log(self, name: str) -> tuple[Path, Any]:
        path = self.workdir / f"{name}.log"
        handle = open(path, "wb")
        self._logs.append(handle)
        return path, handle

    def start_redis(self) -> str:
        """A private Redis: no persistence, loopback only, its own counters."""
        import redis

        self.redis_port = free_port()
        _, log = self._log("redis")
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only: Redis stops after the nodes
        )
        url = f"redis://127.0.0.1:{self.redis_port}/0"
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        try:
            while True:
                if self.redis.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self.redis.returncode}")
                try:
                    client.ping()
                    return url
                except redis.RedisError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("redis-server did not answer") from None
                time.sleep(0.1)  # polling a starting server
        finally:
            client.close()

    def start_nodes(self, count: int, redis_url: str) -> None:
        """Start every node at once (each loads its pose model), then wait for all."""
        for index in range(count):
            node_id = f"node_{index + 1}"
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            log_path, log = self._log(node_id)
            process = subprocess.Popen(
                [sys.executable, "-m", "komi_rtc.server", "--host", "127.0.0.1"]
                + ["--port", str(port), "--workers", "1", "--redis", redis_url]
                + ["--public-url", url, "--node-id", node_id]
                + ["--state-dir", str(self.workdir / f"state-{node_id}")]
                + ["--max-cameras-per-address", "0"],  # every camera comes from this machine
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(),
                start_new_session=True,  # stopped by us, in order, never twice
            )
            self.nodes.append(_Node(node_id, url, process, log_path))
        for node in self.nodes:
            wait_ready(node.url + "/healthz", node.process)

    def spawn_camera(
        self,
        camera_id: str,
        fps: float,
        seconds: float,
        size: tuple[int, int] = (640, 480),
        pre_encoded: bool = True,
        nice: int = 0,
    ) -> None:
        """A camera peer process offering to the entry node (node 1). `pre_encoded`: it sends
        its loop encoded once ahead, so encoding does not take the nodes' cores. `nice`: its
        scheduling niceness, so that on a shared machine it yields to the nodes."""
        out = self.workdir / f"{camera_id}.json"
        _, log = self._log(camera_id)
        process = subprocess.Popen(
            (["nice", "-n", str(nice)] if nice else [])  # nice execs: the pid is the peer's
            + [sys.executable, "-m", "komi_rtc.bench.peer", "camera"]
            + ["--server", self.nodes[0].url, "--camera-id", camera_id]
            + ["--fps", f"{fps:g}", "--duration", f"{seconds:g}", "--out", str(out)]
            + ["--width", str(size[0]), "--height", str(size[1])]
            + ["--pre-encoded" if pre_encoded else "--replay"],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.cameras.append(_Camera(camera_id, process, out, time.monotonic()))

    def stop(self) -> None:
        """Peers killed, nodes asked to stop (SIGINT: at once, no draining) then killed
        with their pose workers after STOP_TIMEOUT_S, Redis last. A second Ctrl-C waits."""
        ignoring = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if ignoring else None
        try:
            for camera in self.cameras:
                if camera.process.poll() is None:
                    camera.process.kill()
                camera.process.wait()
            descendants: list[psutil.Process] = []
            for node in self.nodes:
                try:
                    descendants += psutil.Process(node.process.pid).children(recursive=True)
                except psutil.Error:
                    pass
                if node.process.poll() is None:
                    node.process.send_signal(signal.SIGINT)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            for node in self.nodes:
                try:
                    node.process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    print(f"  {node.id} did not stop in {STOP_TIMEOUT_S:g} s: killed", flush=True)
                    node.process.kill()
                    node.process.wait()
            _, alive = psutil.wait_procs(descendants, timeout=5)
            for orphan in alive:
                try:
                    orphan.kill()
                except psutil.Error:
                    pass
            if self.redis is not None and self.redis.poll() is None:
                self.redis.terminate()
                try:
                    self.redis.wait(5)
                except subprocess.TimeoutExpired:
                    self.redis.kill()
                    self.redis.wait()
            for handle in self._logs:
                handle.close()
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    def log_tails(self, lines: int = 15) -> str:
        """The end of each node's log, for a run that failed."""
        parts = []
        for node in self.nodes:
            text = node.log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {node.id} ({node.log.name}) ---\n" + "\n".join(text))
        return "\n".join(parts)


def _get_json(url: str, token: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def _placement(nodes: list[dict[str, Any]]) -> dict[str, list[str]]:
    return {str(node["id"]): sorted(node["cameras"]) for node in nodes}


def _cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by a server and its pose workers."""
    try:
        root = psutil.Process(pid)
        members = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for member in members:
        try:
            times = member.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def _machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy (guest time is already within user time)."""
    times = psutil.cpu_times()._asdict()
    idle = ("idle", "iowait", "guest", "guest_nice")
    return sum(value for name, value in times.items() if name not in idle)


def _snapshot(fleet: _Fleet, redis_client: Any) -> _Snapshot:
    """Redis first, so the window's edges are the same for Redis and the frame counters."""
    commands = redis_client.info("commandstats")
    at = time.monotonic()
    return _Snapshot(
        at=at,
        redis={name.removeprefix("cmdstat_"): int(c["calls"]) for name, c in commands.items()},
        stats={n.id: _get_json(n.url + "/stats", fleet.token) for n in fleet.nodes},
        nodes=_get_json(fleet.nodes[0].url + "/cluster", fleet.token)["nodes"],
        node_cpu_s={n.id: _cpu_seconds(n.process.pid) for n in fleet.nodes},
        machine_busy_s=_machine_busy_seconds(),
    )


def _jain(values: list[float]) -> float | None:
    """Jain's fairness index: 1 when all are equal, 1/n when one takes everything."""
    squares = sum(v * v for v in values)
    if not values or squares == 0:
        return None
    return round(sum(values) ** 2 / (len(values) * squares), 3)


def _spread(values: list[float]) -> dict[str, float | None]:
    return {
        "min_fps": round(min(values), 2) if values else None,
        "max_fps": round(max(values), 2) if values else None,
        "jain_index": _jain(values),
    }


def _wait_for(condition: Any, timeout: float, what: str, fleet: _Fleet) -> Any:
    """Poll `condition()` until it returns something true; a node that exits ends it."""
    deadline = time.monotonic() + timeout
    while True:
        for node in fleet.nodes:
            if node.process.poll() is not None:
                raise RuntimeError(f"{node.id} exited with {node.process.returncode}")
        try:
            value = condition()
        except OSError:
            value = None  # a node busy negotiating may answer late
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not within {timeout:g} s")
        time.sleep(POLL_S)  # polling the cluster's own view


def _hold(seconds: float, fleet: _Fleet) -> None:
    """Let the cameras stream, noticing a node that exits meanwhile."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        for node in fleet.nodes:
            if node.process.poll() is not None:
                raise RuntimeError(f"{node.id} exited with {node.process.returncode}")
        time.sleep(min(POLL_S, left))  # streaming time, not synchronisation


def run_scaleout(
    nodes: int,
    cameras: int = 8,
    fps: float = 15.0,
    duration: float = 30.0,
    warmup: float = 5.0,
    workdir: Path | None = None,
    placement_timeout: float = PLACEMENT_TIMEOUT_S,
    size: tuple[int, int] = (640, 480),
    pre_encoded: bool = True,
    peer_nice: int = 0,
) -> dict[str, Any]:
    """One run: a fresh Redis and `nodes` nodes, `cameras` peers at `fps` offered to node 1,
    measured for `duration` seconds once all are placed and `warmup` seconds have passed.
    Everything it started is stopped before it returns or raises."""
    if nodes < 1 or cameras < 1 or duration <= 0:
        raise ValueError("nodes, cameras and duration must be positive")
    with _workspace(workdir) as directory:
        fleet = _Fleet(directory, secrets.token_urlsafe(24))
        tag = f"[{nodes} node{'s' if nodes > 1 else ''}]"
        try:
            return _measure(
                fleet,
                tag,
                nodes,
                cameras,
                fps,
                duration,
                warmup,
                placement_timeout,
                size,
                pre_encoded,
                peer_nice,
            )
        except (RuntimeError, OSError):
            print(fleet.log_tails(), file=sys.stderr, flush=True)
            raise
        finally:
            print(f"{tag} stopping cameras, nodes and Redis ...", flush=True)
            fleet.stop()


@contextmanager
def _workspace(workdir: Path | None) -> Iterator[Path]:
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir
        return
    with tempfile.TemporaryDirectory(prefix="komi-cluster-bench-") as tmp:
        yield Path(tmp)


def _measure(
    fleet: _Fleet,
    tag: str,
    nodes: int,
    cameras: int,
    fps: float,
    duration: float,
    warmup: float,
    placement_timeout: float,
    size: tuple[int, int],
    pre_encoded: bool,
    peer_nice: int,
) -> dict[str, Any]:
    import redis

    began = time.monotonic()
    redis_url = fleet.start_redis()
    print(f"{tag} Redis on port {fleet.redis_port}; starting {nodes} node(s) ...", flush=True)
    fleet.start_nodes(nodes, redis_url)
    entry = fleet.nodes[0]
    _wait_for(
        lambda: len(_get_json(entry.url + "/cluster", fleet.token)["nodes"]) == nodes,
        10 * HEARTBEAT_S,
        f"{entry.id} seeing all {nodes} nodes",
        fleet,
    )
    print(
        f"{tag} nodes up in {time.monotonic() - began:.1f} s; {cameras} camera(s) x "
        f"{fps:g} fps offered to {entry.id} ...",
        flush=True,
    )
    # each peer streams until the window is surely over, or until SIGTERM after it (they
    # write their results at the end)
    streaming_s = placement_timeout + warmup + duration + 2.0
    expected = [f"bench_cam_{i + 1}" for i in range(cameras)]
    spawned = time.monotonic()
    for camera_id in expected:
        fleet.spawn_camera(camera_id, fps, streaming_s, size, pre_encoded, peer_nice)

    def placed() -> dict[str, list[str]] | None:
        placement = _placement(_get_json(entry.url + "/cluster", fleet.token)["nodes"])
        hosted = sorted(c for ids in placement.values() for c in ids)
        return placement if hosted == sorted(expected) else None

    placement = _wait_for(placed, placement_timeout, f"all {cameras} cameras placed", fleet)
    counts = ", ".join(f"{node} {len(ids)}" for node, ids in placement.items())
    print(
        f"{tag} all placed in {time.monotonic() - spawned:.1f} s ({counts}); "
        f"warming up {warmup:g} s ...",
        flush=True,
    )
    _hold(warmup, fleet)  # the cameras' first frames (decoder, model) are not steady state
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        client.ping()  # connected before the window: the handshake is not counted
        start = _snapshot(fleet, client)
        print(f"{tag} measuring {duration:g} s ...", flush=True)
        _hold(duration, fleet)  # the measured window
        end = _snapshot(fleet, client)
    finally:
        client.close()
    print(f"{tag} measured; the cameras stop and report", flush=True)
    results = {}
    for camera in fleet.cameras:
        if camera.process.poll() is None:
            camera.process.send_signal(signal.SIGTERM)  # it writes its results, then exits
    for camera in fleet.cameras:
        try:
            camera.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"camera peer {camera.id} did not finish") from None
        if camera.out.exists():
            results[camera.id] = json.loads(camera.out.read_text())
    report = _report(fleet, nodes, cameras, fps, warmup, start, end, results)
    report["size"] = f"{size[0]}x{size[1]}"
    report["peer_nice"] = peer_nice
    return report


def _report(
    fleet: _Fleet,
    nodes: int,
    cameras: int,
    fps: float,
    warmup: float,
    start: _Snapshot,
    end: _Snapshot,
    results: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    window = end.at - start.at
    placement = _placement(end.nodes)
    moved = sorted(
        c
        for node, ids in _placement(start.nodes).items()
        for c in ids
        if c not in placement.get(node, [])
    )
    records = {str(n["id"]): n for n in end.nodes}
    per_camera: dict[str, Any] = {}
    per_node: dict[str, Any] = {}
    all_latencies: list[float] = []
    for node in fleet.nodes:
        before = start.stats[node.id]["cameras"]
        after = end.stats[node.id]["cameras"]
        analysed = 0
        for camera_id, counters in after.items():
            if camera_id not in before:
                continue  # arrived (or reconnected) during the window: listed as moved
            frames = counters["frames_analysed"] - before[camera_id]["frames_analysed"]
            analysed += frames
            per_camera[camera_id] = {
                "node": node.id,
                "server_analysed_fps": round(frames / window, 2),
                "received_fps": counters["received_fps"],
            }
        record = records.get(node.id, {})
        per_node[node.id] = {
            "cameras": len(after),
            "camera_ids": sorted(after),
            "analysed_fps": round(analysed / window, 2),
            "capacity_fps": record.get("capacity_fps"),
            "demand_fps": record.get("demand_fps"),
            "spare_fps": record.get("spare_fps"),
            "cpu_percent": round(
                (end.node_cpu_s[node.id] - start.node_cpu_s[node.id]) / window * 100, 1
            ),
        }
    for camera in fleet.cameras:
        result = results.get(camera.id)
        entry = per_camera.setdefault(camera.id, {"node": None, "server_analysed_fps": 0.0})
        if result is None:
            entry.update(analysed_fps=0.0, timely_analysed_fps=0.0, latency_ms=percentiles([]))
            continue
        # the window on the peer's clock, which started after its imports (time.monotonic()
        # is the machine's, so its start says where)
        origin = float(result.get("start_monotonic", camera.spawned))
        first, last = start.at - origin, end.at - origin
        rows = [row for row in result["results"] if first <= row[0] < last]
        latencies = [row[1] for row in rows]
        all_latencies += latencies
        entry.update(
            analysed_fps=round(len(rows) / window, 2),
            timely_analysed_fps=round(sum(1 for x in latencies if x <= TIMELY_MS) / window, 2),
            latency_ms=percentiles(latencies),
        )
    camera_fps = [c["analysed_fps"] for c in per_camera.values()]
    node_fps = [n["analysed_fps"] for n in per_node.values()]
    server_frames = sum(n["analysed_fps"] for n in per_node.values()) * window
    machine = (end.machine_busy_s - start.machine_busy_s) / window * 100
    return {
        "nodes": nodes,
        "workers_per_node": 1,
        "cameras": cameras,
        "fps": fps,
        "warmup_s": warmup,
        "duration_s": round(window, 2),
        "placement": placement,
        "moved_during_window": moved,
        "total": {
            "analysed_fps": round(sum(camera_fps), 2),
            "server_analysed_fps": round(sum(node_fps), 2),
            "offered_fps": round(cameras * fps, 1),
            "timely_analysed_fps": round(
                sum(c["timely_analysed_fps"] for c in per_camera.values()), 2
            ),
            "latency_ms": percentiles(all_latencies),
            "machine_cpu_percent": round(machine, 1),
            "machine_cpu_percent_capacity": 100 * (psutil.cpu_count() or 1),
        },
        "fairness": {"cameras": _spread(camera_fps), "nodes": _spread(node_fps)},
        "per_node": per_node,
        "per_camera": dict(sorted(per_camera.items())),
        "redis": _redis_report(start, end, window, server_frames, records),
    }


def _redis_report(
    start: _Snapshot,
    end: _Snapshot,
    window: float,
    analysed_frames: float,
    records: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Commands in the window by type, against the frames analysed and against what the
    heartbeats alone send: per node and beat one pipeline (SET record, SADD, SET NX of the
    admin token's fingerprint, SMEMBERS, and per camera and station claim an EVAL that runs a GET
    and a SET, each counted by Redis), with other nodes one MGET of their records, and
    every tenth beat an HGETALL of the revocations, a GET of the fingerprint and
    a ZADD, ZREMRANGEBYSCORE and ZRANGE of the nodes' page origins."""
    calls = {
        name: end.redis.get(name, 0) - start.redis.get(name, 0)
        for name in set(start.redis) | set(end.redis)
    }
    calls["info"] = calls.get("info", 0) - 1  # our own INFO at the window's start
    calls = {name: count for name, count in sorted(calls.items()) if count > 0}
    total = sum(calls.values())
    others = len(records) > 1
    heartbeat = sum(
        4 + 3 * (len(r["cameras"]) + len(r.get("stations", []))) + (1 if others else 0) + 0.6
        for r in records.values()
    )
    return {
        "commands_per_s": round(total / window, 2),
        "by_command_per_s": {name: round(count / window, 2) for name, count in calls.items()},
        "commands_per_analysed_frame": round(total / analysed_frames, 4)
        if analysed_frames
        else None,
        "heartbeat_commands_per_s": round(heartbeat / HEARTBEAT_S, 2),
        "heartbeat_round_trips_per_s": round(len(records) * (2 if others else 1) / HEARTBEAT_S, 2),
        "commands_beyond_heartbeat_per_analysed_frame": round(
            max(0.0, total / window - heartbeat / HEARTBEAT_S) * window / analysed_frames, 4
        )
        if analysed_frames
        else None,
    }


def scaleout_ratios(reports: list[dict[str, Any]], rounds: int) -> dict[str, dict[str, Any]]:
    """N nodes' analysed fps over one node's: summed over the rounds, and round by round
    (the runs come in rounds of the node counts, in order)."""
    size = max(1, len(reports) // max(1, rounds))
    per_round = [reports[i : i + size] for i in range(0, len(reports), size)]
    ratios: dict[str, dict[str, Any]] = {}
    for nodes in sorted({r["nodes"] for r in reports if r["nodes"] != 1}):
        pairs = []
        for runs in per_round:
            one = [r["total"]["analysed_fps"] for r in runs if r["nodes"] == 1]
            many = [r["total"]["analysed_fps"] for r in runs if r["nodes"] == nodes]
            if one and many:
                pairs.append((one[0], many[0]))
        if not pairs:
            continue
        ratios[str(nodes)] = {
            "analysed_fps_over_1_node": round(
                sum(m for _, m in pairs) / max(1e-6, sum(o for o, _ in pairs)), 2
            ),
            "rounds": [round(m / max(1e-6, o), 2) for o, m in pairs],
        }
    return ratios


def format_tables(reports: list[dict[str, Any]]) -> str:
    """Markdown tables: the runs, their nodes, and Redis by command."""
    lines = [
        "| nodes | cameras x fps | analysed fps (cameras) | (nodes' counters) | latency p50 / p95 "
        "ms | per camera fps min / max, Jain | per node fps min / max, Jain | machine CPU % | "
        "Redis cmd/s (heartbeat model) | cmd per analysed frame |",
        "|" + "---|" * 10,
    ]
    for r in reports:
        t, cams, nds, red = r["total"], r["fairness"]["cameras"], r["fairness"]["nodes"], r["redis"]
        lines.append(
            f"| {r['nodes']} | {r['cameras']} x {r['fps']:g} | {t['analysed_fps']} | "
            f"{t['server_analysed_fps']} | {t['latency_ms']['p50']} / {t['latency_ms']['p95']} | "
            f"{cams['min_fps']} / {cams['max_fps']}, {cams['jain_index']} | "
            f"{nds['min_fps']} / {nds['max_fps']}, {nds['jain_index']} | "
            f"{t['machine_cpu_percent']} of {t['machine_cpu_percent_capacity']} | "
            f"{red['commands_per_s']} ({red['heartbeat_commands_per_s']}) | "
            f"{red['commands_per_analysed_frame']} |"
        )
    lines += [
        "",
        "| nodes | node | cameras | analysed fps | capacity / demand / spare fps | CPU % |",
        "|" + "---|" * 6,
    ]
    for r in reports:
        for node_id, n in r["per_node"].items():
            lines.append(
                f"| {r['nodes']} | {node_id} | {n['cameras']} | {n['analysed_fps']} | "
                f"{n['capacity_fps']} / {n['demand_fps']} / {n['spare_fps']} | {n['cpu_percent']} |"
            )
    lines += ["", "| nodes | Redis commands a second, by type |", "|---|---|"]
    for r in reports:
        by_type = ", ".join(f"{k} {v}" for k, v in r["redis"]["by_command_per_s"].items())
        lines.append(f"| {r['nodes']} | {by_type or 'none'} |")
    return "\n".join(lines)


def _node_counts(values: list[str]) -> list[int]:
    """`--nodes 1 --nodes 2` and `--nodes 1,2` alike."""
    counts: list[int] = []
    for value in values:
        for part in value.split(","):
            count = int(part)
            if count < 1:
                raise ValueError(f"--nodes {part}: at least 1")
            if count not in counts:
                counts.append(count)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m komi_rtc.bench --nodes", description=__doc__)
    parser.add_argument(
        "--nodes", action="append", required=True, help="node counts: --nodes 1,2 (repeatable)"
    )
    parser.add_argument("--cameras", type=int, default=8, help="camera peers (8)")
    parser.add_argument("--fps", type=float, default=15.0, help="frames a second per camera (15)")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds (30)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds after placement (5)")
    parser.add_argument(
        "--placement-timeout",
        type=float,
        default=PLACEMENT_TIMEOUT_S,
        help=f"seconds for all cameras to be placed ({PLACEMENT_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--size",
        default="640x480",
        help="camera frame size WxH (640x480); smaller frames leave the 2-core test machine's "
        "CPU to inference rather than to sending, receiving and decoding video",
    )
    parser.add_argument(
        "--encode",
        choices=("ahead", "live"),
        default="ahead",
        help="ahead (default): each camera peer encodes its loop to VP8 once and sends the "
        "packets, as a camera's hardware encoder would; live: aiortc encodes every frame, "
        "which takes the nodes' cores on a 2-core machine",
    )
    parser.add_argument(
        "--peer-nice",
        type=int,
        default=0,
        help="niceness of the camera peers (0): 19 makes the load generator yield the cores "
        "to the nodes, the nearest this one machine gets to a load generator of its own",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run the node counts this many times, interleaved (1, 2, 1, 2, ...), and report "
        "the ratio of the summed analysed fps with its spread over the rounds (1)",
    )
    parser.add_argument("--save", action="store_true", help=f"write the report to {SAVED_REPORT}")
    args = parser.parse_args(argv)
    try:
        counts = _node_counts(args.nodes)
        width, _, height = args.size.partition("x")
        size = (int(width), int(height))
    except ValueError as exc:
        parser.error(str(exc))
    if args.repeat < 1:
        parser.error("--repeat: at least 1")

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # SIGTERM stops the run the way Ctrl-C does

    previous = signal.signal(signal.SIGTERM, interrupted)
    reports = []
    try:
        for round_index, count in ((r, c) for r in range(args.repeat) for c in counts):
            if args.repeat > 1:
                print(f"round {round_index + 1} of {args.repeat}: {count} node(s)", flush=True)
            reports.append(
                run_scaleout(
                    count,
                    args.cameras,
                    args.fps,
                    args.duration,
                    args.warmup,
                    placement_timeout=args.placement_timeout,
                    size=size,
                    pre_encoded=args.encode == "ahead",
                    peer_nice=args.peer_nice,
                )
            )
    except KeyboardInterrupt:
        print("interrupted: everything the benchmark started is stopped", file=sys.stderr)
        return 130
    except (RuntimeError, OSError) as exc:
        print(f"cluster benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(format_tables(reports))
    ratios = scaleout_ratios(reports, args.repeat)
    for nodes, ratio in ratios.items():
        spread = ""
        if len(ratio["rounds"]) > 1:
            spread = (
                f" (summed over {len(ratio['rounds'])} rounds; per round "
                f"{min(ratio['rounds']):.2f}x to {max(ratio['rounds']):.2f}x: "
                + ", ".join(f"{r:.2f}" for r in ratio["rounds"])
                + ")"
            )
        summed = ratio["analysed_fps_over_1_node"]
        print(f"analysed fps, {nodes} nodes / 1 node: {summed:.2f}x{spread}")
    for report in reports:
        red = report["redis"]
        print(
            f"Redis, {report['nodes']} node(s): {red['commands_per_s']} commands/s for "
            f"{report['total']['server_analysed_fps']} analysed frames/s; beyond the "
            f"heartbeats' {red['heartbeat_commands_per_s']}/s: "
            f"{red['commands_beyond_heartbeat_per_analysed_frame']} per analysed frame"
        )
    if args.save:
        SAVED_REPORT.parent.mkdir(parents=True, exist_ok=True)
        setup = {
            "command": "python -m komi_rtc.bench " + " ".join(argv or sys.argv[1:]),
            "cores": psutil.cpu_count(),
            "workers_per_node": 1,
            "heartbeat_s": HEARTBEAT_S,
            "camera_encoding": args.encode,
            "peer_nice": args.peer_nice,
            "rounds": args.repeat,
        }
        saved = {"setup": setup, "runs": reports, "ratios": ratios}
        SAVED_REPORT.write_text(json.dumps(saved, indent=1) + "\n")
        print(f"JSON: {SAVED_REPORT}")
    return 0

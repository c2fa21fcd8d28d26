"""The image-bomb attack from issue 11, measured: the server's peak memory while hostile
clients send huge JPEGs over `/ws/camera`, and whether it still answers.

`python -m komi_rtc.bench.attack [--bombs 3] [--repo DIR]`: starts the server of the
checkout in DIR (default: this one; give an older checkout for a before/after figure),
sends the bombs at once, samples the RSS of the server and its pose workers every 20 ms.
Two bombs: the issue's own (a real 20000x20000 grey JPEG, 6 MB) and a forged one (a 16x16
JPEG whose header claims 20000x20000, 1 kB: the cheapest way to ask for 1.2 GB).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import psutil

from .server_process import free_port, wait_ready


def real_bomb(side: int = 20000) -> bytes:
    grey = np.full((side, side), 128, np.uint8)
    return cv2.imencode(".jpg", grey, [cv2.IMWRITE_JPEG_QUALITY, 10])[1].tobytes()


def forged_bomb(side: int = 20000) -> bytes:
    data = bytearray(cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8))[1].tobytes())
    i = 2
    while data[i + 1] not in (0xC0, 0xC1, 0xC2):
        i += 2 + ((data[i + 2] << 8) | data[i + 3])
    data[i + 5 : i + 9] = bytes([side >> 8, side & 255, side >> 8, side & 255])
    return bytes(data)


class PeakRss:
    """Samples the RSS of a process and its children in a thread until stopped."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> int:
        total = 0
        try:
            members = [self._process, *self._process.children(recursive=True)]
        except psutil.Error:
            return 0
        for member in members:
            try:
                total += member.memory_info().rss
            except psutil.Error:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()


async def _send_bomb(url: str, token: str, jpeg: bytes, index: int) -> str:
    """What the server did: answered an error, closed the socket, analysed, or nothing."""
    payload = json.dumps(
        {"type": "frame", "timestamp": 1.0, "image_data": base64.b64encode(jpeg).decode()}
    )
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.ws_connect(
                f"{url}/ws/camera?camera_id=bomb_{index}", max_msg_size=0
            ) as ws:
                await ws.send_str(payload)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    message = await ws.receive(timeout=30)
                    if message.type != aiohttp.WSMsgType.TEXT:
                        return f"socket closed ({ws.close_code})"
                    kind = json.loads(message.data).get("type")
                    if kind in ("error", "frame_processed"):
                        return kind
                return "no answer"
    except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
        return f"connection failed: {type(exc).__name__}"


async def _attack(url: str, token: str, jpeg: bytes, bombs: int) -> list[str]:
    return list(await asyncio.gather(*(_send_bomb(url, token, jpeg, i) for i in range(bombs))))


def run(repo: Path, bombs: int, jpeg: bytes, label: str) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    token = secrets.token_urlsafe(24)
    env = dict(os.environ, KOMI_ADMIN_TOKEN=token, PYTHONUNBUFFERED="1", GLOG_minloglevel="2")
    env["PYTHONPATH"] = str(repo)
    command = [sys.executable, "-m", "komi_rtc.server", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1"]
    server = subprocess.Popen(
        command, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_ready(url + "/", server)
        sampler = PeakRss(server.pid)
        baseline = sampler.now()
        started = time.monotonic()
        with sampler:
            outcomes = asyncio.run(_attack(url, token, jpeg, bombs))
        elapsed = time.monotonic() - started
        alive = server.poll() is None
        answers = False
        if alive:
            request = urllib.request.Request(url + "/", headers={"Accept": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    answers = response.status == 200
            except OSError:
                answers = False
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
    return {
        "server": label,
        "bombs": bombs,
        "bomb_bytes": len(jpeg),
        "baseline_rss_mb": round(baseline / 2**20),
        "peak_rss_mb": round(sampler.peak / 2**20),
        "seconds": round(elapsed, 1),
        "outcomes": sorted(set(outcomes)),
        "server_alive": alive,
        "still_answers": answers,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m komi_rtc.bench.attack", description=__doc__)
    parser.add_argument("--bombs", type=int, nargs="+", default=[1, 3], help="at once (1 3)")
    parser.add_argument(
        "--repo",
        type=Path,
        action="append",
        default=[],
        help="checkout whose server to attack (repeatable; default: this one)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    repos = args.repo or [Path(__file__).resolve().parents[2]]
    print("making the bombs ...", flush=True)
    kinds = {"real 20000x20000 JPEG": real_bomb(), "forged header 20000x20000": forged_bomb()}
    rows = []
    print(
        "| server | bomb | bytes | at once | RSS before MB | peak RSS MB | outcome | "
        "alive and answering |\n|---|---|---|---|---|---|---|---|",
        flush=True,
    )
    for repo in repos:
        label = _describe(repo)
        for kind, jpeg in kinds.items():
            for bombs in args.bombs:
                row = run(repo, bombs, jpeg, label) | {"bomb": kind}
                rows.append(row)
                print(
                    f"| {label} | {kind} | {row['bomb_bytes']:,} | {bombs} | "
                    f"{row['baseline_rss_mb']} | {row['peak_rss_mb']} | "
                    f"{', '.join(row['outcomes'])} | "
                    f"{'yes' if row['still_answers'] else 'NO'} |",
                    flush=True,
                )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


def _describe(repo: Path) -> str:
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "?"
    return f"{repo.name}@{commit}"


if __name__ == "__main__":
    raise SystemExit(main())

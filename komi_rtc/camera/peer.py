"""`python -m komi_rtc.camera`: stream webcams or files to a KOMI RTC server over WebRTC.

Prints live status (frames sent, results received, end-to-end latency from capture to
keypoints back) and reconnects when the server restarts. Latency is exact: an aiortc
receiver reports pts relative to the first frame it got (aiortc's TimestampMapper), so
`frame_pts` plus the pts of our first frame is the pts we captured it with.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import aiohttp
import jwt
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from .. import __version__
from ..media.aiortc_adapter import close_peer_connection
from ..media.capture_timeline import CaptureTimeline
from ..media.video_sources import FrameSource, RecordedSource, SourceError, open_source
from ..protocol import DATA_CHANNEL_LABEL, Offer, validate_camera_id, validate_person_id
from .captured_track import CapturedTrack
from .ice_config import ConfigRefused, fetch_rtc_configuration
from .latency import LatencyWindow

logger = logging.getLogger(__name__)


@dataclass
class CameraStatus:
    camera_id: str
    state: str = "starting"
    problem: str | None = None  # why the last attempt failed, kept until one succeeds
    retry_at: float | None = None  # time.monotonic() of the next attempt, while waiting for it
    results: int = 0
    exercise: str | None = None  # what the server counts, and how far it got
    reps: int = 0
    analysed_times: deque[float] = field(default_factory=lambda: deque(maxlen=256))
    latency: LatencyWindow = field(default_factory=LatencyWindow)
    frames_sent_before: int = 0

    def analysed_fps(self) -> float:
        now = time.monotonic()
        return sum(1 for t in self.analysed_times if now - t <= 3.0) / 3.0


PING_INTERVAL_S = 1.0
SILENT_S = 4.0  # no message (results or pongs) this long: the server is gone


class CameraPeer:
    """One camera: one peer connection at a time, reconnecting with backoff."""

    def __init__(
        self,
        server: str,
        camera_id: str,
        source: FrameSource,
        fps: float,
        record: TextIO | None = None,
        verify_tls: bool = True,
        exercise: str | None = None,
        token: str | None = None,
        person: str | None = None,
        report: Callable[[str], None] | None = None,
        station: str | None = None,
        timeline: CaptureTimeline | None = None,
    ) -> None:
        """`exercise`: asked of the server (`set_exercise`) each time the channel opens.
        `token`: the access token (a camera token, or the admin token). `report`: gets a
        line for each event a person watching wants to see (a failed attempt and when the
        next one is, a refusal); logged at INFO without it. `station`: join it. `timeline`:
        the instants to capture at, shared by the cameras of one process (else its own)."""
        self.server = server.rstrip("/")
        self.token = token
        self.person = person  # whose sets the server records
        self.station = station
        self.timeline = timeline or CaptureTimeline(fps)
        self.camera_id = camera_id
        self.source = source
        self.fps = fps
        self.record = record
        self.verify_tls = verify_tls
        self.exercise = exercise
        self.status = CameraStatus(camera_id)
        self.track: CapturedTrack | None = None
        self.messages: asyncio.Queue[dict[str, Any]] | None = None  # tests read results here
        self._pc: RTCPeerConnection | None = None
        self._last_heard = 0.0
        self.cluster_nodes: list[str] = []  # a cluster's live nodes, as the last answer said
        self._report = report or (lambda line: logger.info("%s", line))

    def servers(self) -> list[str]:
        """Where to offer, in order: the entry node (`server`), then the other nodes of its
        cluster, so the camera survives its entry node's death too."""
        order = [self.server]
        for url in self.cluster_nodes:
            if url.rstrip("/") not in order:
                order.append(url.rstrip("/"))
        return order

    async def run(self) -> None:
        backoff = 1.0
        tried = 0  # servers tried in a row without reaching one
        while True:
            servers = self.servers()
            server = servers[tried % len(servers)]
            try:
                await self.connect_once(server)
                backoff, tried = 1.0, 0
                self.status.problem = "connection ended"
            except (aiohttp.ClientError, OSError, ConnectionError, asyncio.TimeoutError) as exc:
                self.status.problem = f"cannot reach {server}: {_reason(exc)}"
                tried += 1
                if tried % len(servers):  # the next node of the cluster at once
                    logger.warning(
                        "[%s] %s; trying %s",
                        self.camera_id,
                        self.status.problem,
                        servers[tried % len(servers)],
                    )
                    continue  # (the connection is closed below, as after every attempt)
            except AccessRefused as exc:
                # retrying cannot help: a new token is needed (said once, not retried)
                self.status.problem = str(exc)
                self._report(f"[{self.camera_id}] {exc}")
                await self._close_pc()
                self.status.state = "refused"  # for good: no next attempt
                raise
            except ServerRefused as exc:
                self.status.problem = f"server refused the camera: {exc}"
                logger.warning("[%s] server refused: %s", self.camera_id, exc)
            finally:
                await self._close_pc()
            # said once per attempt; the status line counts down to the same moment
            self._report(f"[{self.camera_id}] {self.status.problem}; retrying in {backoff:g} s")
            self.status.retry_at = time.monotonic() + backoff
            try:
                await asyncio.sleep(backoff)  # reconnect delay, not synchronisation
            finally:
                self.status.retry_at = None
            backoff = min(backoff * 2, 10.0)

    def make_track(self) -> CapturedTrack:
        """The track of one connection (the benchmark's replay of pre-encoded video too)."""
        return CapturedTrack(self.source, self.fps, self.timeline)

    async def connect_once(self, server: str | None = None) -> None:
        """Connect (to `server`, else the entry node), stream until the connection ends,
        then return."""
        server = server or self.server
        headers = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        ssl = True if self.verify_tls else False
        timeout = aiohttp.ClientTimeout(total=20)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            try:  # STUN/TURN (with credentials minted for this token) before the offer
                configuration = await fetch_rtc_configuration(http, server, headers, ssl)
            except ConfigRefused as exc:
                raise self._refusal(exc.status, exc.error) from None
            pc, channel, ended = self._peer(configuration)
            answer = await self._offer(http, server, pc, headers, ssl)
        nodes = answer.get("nodes")
        if isinstance(nodes, list):
            self.cluster_nodes = [u for u in nodes if isinstance(u, str)]
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        self.status.state = "connecting"
        self.status.problem = None
        await self._until_ended_or_silent(channel, ended)

    def _peer(
        self, configuration: RTCConfiguration
    ) -> tuple[RTCPeerConnection, Any, asyncio.Event]:
        """This connection's peer with its track and data channel: (the peer, the channel,
        an event set when the connection ends)."""
        pc = self._pc = RTCPeerConnection(configuration)
        track = self.track = self.make_track()
        track.attach(pc.addTrack(track))
        channel = pc.createDataChannel(DATA_CHANNEL_LABEL)
        ended = asyncio.Event()

        @channel.on("message")
        def on_message(raw: str | bytes) -> None:
            self._on_message(raw)

        @pc.on("connectionstatechange")
        def on_state() -> None:
            self.status.state = pc.connectionState
            if pc.connectionState in ("failed", "closed"):
                ended.set()

        @channel.on("close")
        def on_close() -> None:
            ended.set()

        if self.exercise is not None:
            exercise = self.exercise

            @channel.on("open")
            def on_open() -> None:
                channel.send(json.dumps({"type": "set_exercise", "exercise": exercise}))

        return pc, channel, ended

    async def _offer(
        self,
        http: aiohttp.ClientSession,
        server: str,
        pc: RTCPeerConnection,
        headers: dict[str, str],
        ssl: bool,
    ) -> dict[str, Any]:
        """Offer (ICE gathered, TURN allocated) and read the server's answer."""
        await pc.setLocalDescription(await pc.createOffer())
        body = Offer(
            pc.localDescription.sdp,
            "camera",
            self.camera_id,
            person=self.person or None,
            station=self.station or None,
            clock=self.timeline.clock.id,
        ).to_wire()
        async with http.post(f"{server}/offer", json=body, headers=headers, ssl=ssl) as response:
            answer: dict[str, Any] = await response.json(content_type=None)
            if response.status in (401, 403):
                raise self._refusal(response.status, answer.get("error"))
            if response.status != 200:
                raise ServerRefused(f"{response.status} {answer.get('error')}")
        return answer

    def _refusal(self, status: int, error: object) -> AccessRefused:
        """What a 401/403 to the offer means, in one line with what to do."""
        said = f"{status} {error}"
        if not self.token:
            return AccessRefused(
                f"server refused access: {said} (no token given: use --token or KOMI_TOKEN)"
            )
        claims = token_claims(self.token)
        if (
            status == 403
            and self.station is not None
            and claims.get("role") == "camera"
            and claims.get("station") != self.station
        ):  # a camera token that does not name the station: that is what was refused
            return AccessRefused(
                f"server refused to let {self.camera_id} join station {self.station}: {said}",
                station=self.station,
            )
        return AccessRefused(f"server refused access: {said}")

    async def _until_ended_or_silent(self, channel: Any, ended: asyncio.Event) -> None:
        """A server that dies without closing (killed, unplugged) is noticed only after ICE
        gives up (30 s): a ping a second, and silence for SILENT_S, end the connection, so
        the camera reconnects (in a cluster, to a live node) within seconds."""
        self._last_heard = time.monotonic()
        while True:
            try:
                await asyncio.wait_for(ended.wait(), PING_INTERVAL_S)
                return
            except asyncio.TimeoutError:
                pass
            if channel.readyState == "open":
                channel.send(json.dumps({"type": "ping", "t": time.time()}))
            if time.monotonic() - self._last_heard > SILENT_S:
                logger.warning(
                    "[%s] the server has been silent for %g s; reconnecting",
                    self.camera_id,
                    SILENT_S,
                )
                return

    def _on_message(self, raw: str | bytes) -> None:
        self._last_heard = time.monotonic()
        try:
            message = json.loads(raw)
        except ValueError:
            return
        if isinstance(message, dict) and message.get("type") == "pong":
            return  # the liveness check's answer
        if self.messages is not None:
            self.messages.put_nowait(message)
        if message.get("type") != "frame_processed":
            if message.get("type") == "error":
                logger.warning("[%s] server error: %s", self.camera_id, message.get("error"))
            return
        now = time.monotonic()
        analysis = message.get("analysis")
        self.status.exercise = analysis.get("exercise") if isinstance(analysis, dict) else None
        if isinstance(analysis, dict):
            self.status.reps = int(analysis.get("reps", 0))
        self.status.results += 1
        self.status.analysed_times.append(now)
        track = self.track
        if track is not None and isinstance(message.get("frame_pts"), int):
            captured = track.capture_time_of(message["frame_pts"])
            if captured is not None:
                latency_ms = (now - captured) * 1000.0
                self.status.latency.add(latency_ms)
                message["latency_ms"] = round(latency_ms, 1)
            captured_at = track.captured_unix_of(message["frame_pts"])
            if captured_at is not None:
                message["captured_at"] = round(captured_at, 4)
        if self.record is not None:
            self.record.write(json.dumps(message, separators=(",", ":")) + "\n")

    async def _close_pc(self) -> None:
        if self._pc is not None:
            pc, self._pc = self._pc, None
            await close_peer_connection(pc)
        if self.track is not None:
            self.status.frames_sent_before += self.track.frames_sent
            self.track.stop()
            self.track = None

    def frames_sent(self) -> int:
        return self.status.frames_sent_before + (self.track.frames_sent if self.track else 0)

    async def close(self) -> None:
        await self._close_pc()
        # a webcam's close waits for its reading thread: not on the event loop
        await asyncio.get_running_loop().run_in_executor(None, self.source.close)


class ServerRefused(Exception):
    pass


class AccessRefusedExit(Exception):
    """Every camera was refused; `station`: each for joining this station."""

    def __init__(self, station: str | None) -> None:
        super().__init__(station)
        self.station = station


class AccessRefused(ServerRefused):
    """401 or 403: the token is missing, expired, revoked or lacks the right (`station`:
    the right to join that station)."""

    def __init__(self, message: str, station: str | None = None) -> None:
        super().__init__(message)
        self.station = station


def local_admin_token(server: str, state_dir: Path | None = None) -> str | None:
    """On the server's own machine, the admin token the server keeps in its state dir
    (whoever can read that file already holds every right), so local commands just work."""
    host = urlsplit(server).hostname or ""
    if host not in ("localhost", "127.0.0.1", "::1"):
        return None
    path = (state_dir or Path.home() / ".komi_rtc") / "admin_token"
    try:
        token = path.read_text().strip()
    except OSError:
        return None
    if token:
        print(f"using the server's admin token from {path} (give --token to use another)")
    return token or None


def token_claims(token: str | None) -> dict[str, Any]:
    """What a minted token says (read, not verified: the server checks); {} for the admin
    token (not a JWT) or anything unreadable."""
    if not token or token.count(".") != 2:
        return {}
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims if isinstance(claims, dict) else {}


def token_camera_id(token: str | None) -> str | None:
    """The camera id a bound camera token carries."""
    camera_id = token_claims(token).get("camera_id")
    return camera_id if isinstance(camera_id, str) else None


def token_station(token: str | None) -> str | None:
    """The station a camera token names (a join link's): the one it may join."""
    station = token_claims(token).get("station")
    return station if isinstance(station, str) else None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "no answer within 20 s"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return "connection refused (is the server running? is --server right?)"
        return f"{exc.os_error.strerror or exc.os_error} (is --server right?)"
    return str(exc) or type(exc).__name__


def status_line(peer: CameraPeer) -> str:
    """The periodic line about one camera. While it is not connected, only when the next
    attempt is: why the last one failed was said once, when it failed."""
    status = peer.status
    if status.state == "refused":
        return f"[{peer.camera_id}] {status.problem}"
    if status.problem is not None:
        if status.retry_at is None:
            return f"[{peer.camera_id}] not connected; trying again now"
        wait = max(0, math.ceil(status.retry_at - time.monotonic()))
        return f"[{peer.camera_id}] not connected; next try in {wait} s"
    p50, p95 = status.latency.percentile(50), status.latency.percentile(95)
    latency = f"latency p50 {p50:.0f} ms p95 {p95:.0f} ms" if p50 is not None else "latency -"
    if status.exercise:
        latency += f"  {status.exercise}: {status.reps} rep{'' if status.reps == 1 else 's'}"
    return (
        f"[{peer.camera_id}] {status.state:<12} sent {peer.frames_sent():>6}  "
        f"results {status.results:>6}  analysed {status.analysed_fps():4.1f} fps  {latency}"
    )


@dataclass(frozen=True)
class CameraSpec:
    """One camera of the process: its id, source (a webcam index, file, image or demo) and
    the station it joins."""

    camera_id: str
    source: str | int | None
    station: str | None = None


def parse_camera_list(text: str) -> list[CameraSpec]:
    """`camera_1:0@gym1,camera_2:1@gym1` -> CameraSpecs; `@STATION` is optional (a source
    with an `@` of its own: add the station, the last `@` starts it)."""
    cameras = []
    for item in text.split(","):
        camera_id, sep, source = item.strip().partition(":")
        if not sep or not source:
            raise ValueError(f"expected CAMERA_ID:SOURCE[@STATION], got {item!r}")
        station = None
        if "@" in source:
            source, _, station = source.rpartition("@")
            station = validate_station(station)
            if not source:
                raise ValueError(f"expected CAMERA_ID:SOURCE@STATION, got {item!r}")
        cameras.append(CameraSpec(validate_camera_id(camera_id), source, station))
    return cameras


def validate_station(station: str) -> str:
    try:
        return validate_camera_id(station)
    except Exception:
        raise ValueError(
            f"station {station!r}: 1 to 64 of A-Z a-z 0-9 _ - . (not starting with -)"
        ) from None


def camera_specs(args: argparse.Namespace) -> list[CameraSpec]:
    """The cameras the command line asks for; each joins its own `@STATION`, else
    `--station`, else the station the token names (a join link's)."""
    default_station = args.station or token_station(args.token)
    if args.cameras:
        specs = parse_camera_list(args.cameras)
    else:
        source = args.source if args.source is not None else args.camera
        camera_id = args.camera_id or token_camera_id(args.token)
        specs = [CameraSpec(camera_id or f"camera_{int(time.time()) % 100000:05d}", source)]
    return [
        CameraSpec(spec.camera_id, spec.source, spec.station or default_station) for spec in specs
    ]


async def open_sources(
    specs: list[CameraSpec], width: int, height: int, fps: float
) -> list[FrameSource]:
    """Every camera's source, or none: one that fails closes those already open."""
    loop = asyncio.get_running_loop()
    sources: list[FrameSource] = []
    try:
        for spec in specs:
            sources.append(
                await loop.run_in_executor(None, open_source, spec.source, width, height, fps)
            )
    except BaseException:
        for source in sources:
            source.close()
        raise
    return sources


async def run_cameras(
    args: argparse.Namespace, specs: list[CameraSpec], record: TextIO | None
) -> None:
    sources = await open_sources(specs, args.width, args.height, args.fps)
    # one timeline for every camera of the process: they capture at the same instants, and
    # files of one recording replay in step (from --start-at, else when the first streams)
    timeline = CaptureTimeline(args.fps, start_s=args.start_at)
    peers = []
    for spec, source in zip(specs, sources, strict=True):
        joins = f", joining station {spec.station}" if spec.station else ""
        print(
            f"[{spec.camera_id}] streaming {source.description} at {args.fps:g} fps to "
            f"{args.server}{joins}",
            flush=True,
        )
        if isinstance(source, RecordedSource) and args.start_at is not None:
            wait = args.start_at - timeline.clock.now()
            when = time.strftime("%H:%M:%S", time.localtime(args.start_at))
            print(
                f"[{spec.camera_id}] its first frame is at {when}"
                + (f" (in {wait:.0f} s)" if wait > 0 else f" ({-wait:.0f} s ago)"),
                flush=True,
            )
        # the demo person's own exercise, unless another is asked for
        exercise = args.exercise or getattr(source, "exercise", None)
        peers.append(
            CameraPeer(
                args.server,
                spec.camera_id,
                source,
                args.fps,
                record,
                verify_tls=not args.insecure,
                exercise=exercise,
                token=args.token,
                person=args.person,
                report=lambda line: print(line, flush=True),
                station=spec.station,
                timeline=timeline,
            )
        )
    tasks = [asyncio.create_task(peer.run(), name=peer.camera_id) for peer in peers]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    refusals: list[AccessRefused] = []
    try:
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), args.status_interval)
            for peer in peers:
                if peer.status.state != "refused":  # a refusal was said once, when it came
                    print(status_line(peer), flush=True)
            if all(task.done() for task in tasks):
                break  # every camera was refused access: retrying cannot help
    finally:
        for task in tasks:
            task.cancel()
        for outcome in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(outcome, AccessRefused):
                refusals.append(outcome)
        for peer in peers:
            await peer.close()
        print("stopped", flush=True)
    if refusals and len(refusals) == len(peers):
        stations = {refusal.station for refusal in refusals}
        raise AccessRefusedExit(stations.pop() if len(stations) == 1 else None)


def _token_values_joined(argv: list[str]) -> list[str]:
    """`--token -abc...` as `--token=-abc...`: a token may start with "-" (an older admin token
    did), which argparse would read as an option and answer "expected one argument"."""
    joined: list[str] = []
    items = iter(argv)
    for item in items:
        if item == "--token":
            value = next(items, None)
            joined.append("--token" if value is None else f"--token={value}")
        else:
            joined.append(item)
    return joined


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="komi-rtc-camera",
        description="Stream webcams or video files to a KOMI RTC server.",
    )
    parser.add_argument(
        "--server", default="http://localhost:8000", help="server URL (http://localhost:8000)"
    )
    parser.add_argument(
        "--cameras",
        help="several cameras: camera_12345:0,camera_67890:1 (each ID:SOURCE may end in "
        "@STATION: camera_1:0@gym1)",
    )
    parser.add_argument(
        "--station",
        default=None,
        metavar="ID",
        help="every camera of this process joins station ID (the token must name it, or a "
        "monitor must have listed the cameras; a token naming one joins it by default)",
    )
    parser.add_argument(
        "--start-at",
        type=float,
        default=None,
        metavar="EPOCH",
        help="video files: their first frame is at this unix time (looping), so files of one "
        "synchronised recording replay in step across processes; default: when the first "
        "camera of this process streams",
    )
    parser.add_argument(
        "--camera", type=int, default=None, help="webcam index (default: the first that opens)"
    )
    parser.add_argument("--camera-id", default=None, help="camera id (default: generated)")
    parser.add_argument(
        "--source",
        default=None,
        help="video file or image (looped), or 'demo' (a rendered person doing squats), "
        "'demo:EXERCISE' or 'demo:EXERCISE:VIEW' (front, side_left, side_right)",
    )
    parser.add_argument(
        "--exercise",
        default=None,
        help="ask the server to analyse this exercise (see `python -m komi_rtc.analysis "
        "--list`); the demo asks for its own",
    )
    parser.add_argument(
        "--person",
        default=None,
        help="tie the camera to this person: the server records their sets (history)",
    )
    parser.add_argument("--fps", type=float, default=10.0, help="frames a second (10)")
    parser.add_argument("--width", type=int, default=640, help="frame width (640)")
    parser.add_argument("--height", type=int, default=480, help="frame height (480)")
    parser.add_argument(
        "--record",
        default=None,
        metavar="FILE.jsonl",
        help="append every frame_processed message to this file, with when its frame was "
        "captured (captured_at, unix s)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="accept a self-signed server certificate (--https servers)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("KOMI_TOKEN"),
        help="access token: a camera token (bound tokens also set the camera id) or the "
        "admin token; default $KOMI_TOKEN, else (server on localhost) the admin token in "
        "~/.komi_rtc/admin_token",
    )
    parser.add_argument("--status-interval", type=float, default=2.0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--debug", action="store_true", help="verbose logging (aiortc and ICE included)"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(_token_values_joined(sys.argv[1:] if argv is None else argv))
    if args.fps <= 0 or args.width < 16 or args.height < 16:
        parser.error("--fps must be positive and the size at least 16x16")
    if args.camera_id:
        try:
            validate_camera_id(args.camera_id)
        except Exception as exc:
            parser.error(str(exc))
    if args.person:
        try:
            validate_person_id(args.person)
        except Exception as exc:
            parser.error(str(exc))
    if args.start_at is not None and not (math.isfinite(args.start_at) and args.start_at > 0):
        parser.error("--start-at must be a unix time in seconds (date +%s)")
    if not args.token:
        args.token = local_admin_token(args.server)
    try:
        if args.station:
            validate_station(args.station)
        specs = camera_specs(args)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    record = None
    if args.record:
        try:  # a new folder for the recordings is made, as a person expects
            Path(args.record).parent.mkdir(parents=True, exist_ok=True)
            record = open(args.record, "a", encoding="utf-8", buffering=1)
        except OSError as exc:
            parser.error(f"--record {args.record}: {exc.strerror or exc}")
    try:
        asyncio.run(run_cameras(args, specs, record))
    except (SourceError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except AccessRefusedExit as refused:
        if refused.station is not None:
            print(
                f"error: the server refused to let the cameras join station "
                f"{refused.station}; pass a token that names it with --token or KOMI_TOKEN "
                f"(the station's join link, or POST /tokens "
                f'{{"role": "camera", "station": "{refused.station}"}} by a monitor), or have '
                f"a monitor list the cameras with POST /stations/{refused.station}",
                file=sys.stderr,
            )
        else:
            print(
                "error: the server refused access; ask for a camera token (or a camera link) "
                "and pass it with --token or KOMI_TOKEN",
                file=sys.stderr,
            )
        raise SystemExit(3) from None
    except KeyboardInterrupt:
        pass
    finally:
        if record is not None:
            record.close()


if __name__ == "__main__":
    main()

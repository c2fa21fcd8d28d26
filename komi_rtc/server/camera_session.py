"""One camera: its newest frame, its pose analysis loop and the fan-out of every result.

A session is fed either by a WebRTC track (`attach_track`) or by the original KOMI
WebSocket protocol (`publish_frame`). It owns its tasks, its peer connection (if any), its
pose-worker channel and its monitors, and `close()` releases all of them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from ..analysis.catalog import Catalog
from ..analysis.live import LiveAnalysis
from ..history.recorder import SetRecorder
from ..media.aiortc_adapter import close_peer_connection
from ..media.capture_clock import CaptureClock
from ..media.newest_frame import NewestFrame, ReceivedFrame
from ..media.video_forwarding import EncodedVideoTap
from ..pose.worker_pool import CameraPoseChannel, PoseResult, WorkerFailed
from ..protocol.messages import (
    ExerciseSet,
    FrameProcessed,
    PersonSet,
    WireMessage,
    encode,
)
from .analysis_rate import AnalysisRate, SessionStats, log_transition
from .frame_results import frame_processed, frame_time_ms, movement_signal
from .message_sinks import MessageSink
from .station_pairing import ViewItem

logger = logging.getLogger(__name__)

# the last frames received, kept in a station: when the worker is free, the frame of the
# instant the station's other cameras analyse is taken. 16: 1.1 s at 15 fps, what a round
# of 4 cameras on a busy 2-core server took; 12 MB of decoded 544x960 frames, 50 at 1080p
RECENT_FRAMES = 16
# a camera ended for its own bad input waits this long for its data channel to open, so it
# can read why (its first video can arrive before the channel is open)
ERROR_WAIT_S = 3.0


ResultListener = Callable[["CameraSession", FrameProcessed], None]


class CameraSession:
    """Everything about one camera. Other modules read it and call its methods; they never
    write its fields."""

    def __init__(
        self,
        camera_id: str,
        kind: str,
        pose_channel: CameraPoseChannel,
        *,
        on_result: ResultListener,
        on_closed: Callable[[CameraSession], Awaitable[None]],
        stall_timeout_s: float = 5.0,
        analysis_fps: float | None = None,
        result_delay_s: float = 0.0,
        catalog: Catalog | None = None,
        recorder: SetRecorder | None = None,
        on_event: Callable[[CameraSession, str], None] | None = None,
    ) -> None:
        """`on_event`: hears each rep and exercise change (for `/ws/monitor` and the cluster)."""
        self.camera_id = camera_id
        self.kind = kind  # "webrtc" or "websocket"
        self.newest = NewestFrame()
        self.stats = SessionStats()
        self.rate = AnalysisRate(cap_fps=analysis_fps)
        self.closed = asyncio.Event()
        self._latest_pose_data: dict[str, Any] = {"pose": [], "timestamp": None}
        self._pc: RTCPeerConnection | None = None
        self._connected = asyncio.Event()  # the peer connection is up: the stall clock runs
        self._connect_deadline: asyncio.TimerHandle | None = None
        self._video_tap: EncodedVideoTap | None = None  # encoded frames, forwarded to monitors
        self._analysis = LiveAnalysis(camera_id, catalog)
        self._recorder = recorder  # the tied person's sets, written as they happen
        self.person: str | None = None
        self.between_reps = asyncio.Event()  # clear while a rep is under way (drain waits)
        self.between_reps.set()
        self.station: Any = None  # the Station this camera belongs to (stations.py)
        self.monitor_peers: set[Any] = set()  # MonitorPeers, from their offer to their close
        self.capture_clock = CaptureClock()
        self.clock_id: str | None = None  # the camera's clock, as its offer named it
        self._recent: deque[ReceivedFrame] = deque(maxlen=RECENT_FRAMES)
        self._sinks: set[MessageSink] = set()  # the camera's own channel + its monitors'
        self._own_sink: MessageSink | None = None
        self._pending_error: tuple[str, str] | None = None  # (message, close reason)
        self._pose_channel = pose_channel
        self._on_result = on_result
        self._on_event = on_event or (lambda session, text: None)
        self._on_closed = on_closed
        self._stall_timeout_s = stall_timeout_s
        self._min_interval_s = 1.0 / analysis_fps if analysis_fps else 0.0
        self._result_delay_s = result_delay_s
        self._tasks: set[asyncio.Task[None]] = set()
        self._delayed: set[asyncio.TimerHandle] = set()
        self._closers: set[asyncio.Task[None]] = set()
        self._close_task: asyncio.Task[None] | None = None
        self._close_listeners: dict[object, Callable[[], Awaitable[None]]] = {}
        self._results: asyncio.Queue[tuple[ReceivedFrame, PoseResult]] = asyncio.Queue()
        self._movement: float | None = None  # the analysis's joint angle, for keyframes
        self._spawn(self._analyse_loop(), "analyse")
        self._spawn(self._publish_loop(), "publish")

    # ------------------------------------------------------------ ownership

    def _spawn(self, coroutine: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(coroutine)
        task.set_name(f"{self.camera_id}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "[%s] task %s failed", self.camera_id, task.get_name(), exc_info=task.exception()
            )
            self.request_close("internal error")

    def add_close_listener(self, owner: object, listener: Callable[[], Awaitable[None]]) -> None:
        """Monitors register here so they are told and closed when the camera goes."""
        self._close_listeners[owner] = listener

    def remove_close_listener(self, owner: object) -> None:
        self._close_listeners.pop(owner, None)

    def spawn(self, coroutine: Awaitable[None], name: str) -> None:
        """Run a task owned by this session (cancelled by `close()`)."""
        self._spawn(coroutine, name)

    def spawn_closer(self, coroutine: Awaitable[None], name: str) -> None:
        """Run a clean-up task (e.g. a monitor's pc.close()); `close()` awaits, never cancels it:
        aiortc's close does not survive being cancelled half-way."""
        task = asyncio.ensure_future(coroutine)
        task.set_name(f"{self.camera_id}:{name}")
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    @property
    def closing(self) -> bool:
        return self._close_task is not None

    def request_close(self, reason: str) -> None:
        """Start closing from a callback that cannot await (the close task is owned here)."""
        if self._close_task is None:
            self._close_task = asyncio.ensure_future(self._close(reason))
            self._close_task.add_done_callback(self._close_done)

    def _close_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("[%s] close failed", self.camera_id, exc_info=task.exception())

    async def close(self, reason: str) -> None:
        """Close once; a caller cancelled while waiting does not interrupt the close."""
        self.request_close(reason)
        assert self._close_task is not None
        await asyncio.shield(self._close_task)

    async def _close(self, reason: str) -> None:
        logger.info(
            "[%s] camera closing (%s): %d frames received, %d analysed",
            self.camera_id,
            reason,
            self.stats.frames_received,
            self.stats.frames_analysed,
        )
        try:
            if self._recorder is not None:
                self._recorder.close(time.time())
            self.newest.close()
            if self._video_tap is not None:
                self._video_tap.close()
            for handle in self._delayed:
                handle.cancel()
            if self._connect_deadline is not None:
                self._connect_deadline.cancel()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*self._closers, return_exceptions=True)
            for listener in list(self._close_listeners.values()):
                try:
                    await listener()
                except Exception:
                    logger.exception("[%s] monitor close failed", self.camera_id)
            self._close_listeners.clear()
            self._sinks.clear()
            if self._pc is not None:
                await close_peer_connection(self._pc)
        finally:
            # whatever failed above, the worker state and the listing are released
            self._pose_channel.close()
            await self._on_closed(self)
            self.closed.set()

    # ------------------------------------------------------------ input

    def attach_peer(self, pc: RTCPeerConnection) -> None:
        """The camera's peer connection: closed with the session, and closing it closes us."""
        self._pc = pc

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState == "connected":
                self._connected.set()
                if self._connect_deadline is not None:
                    self._connect_deadline.cancel()
            if pc.connectionState in ("failed", "closed"):
                self.request_close(f"peer connection {pc.connectionState}")

    def expect_connection(self, timeout_s: float) -> None:
        """From its answer on, the camera has `timeout_s` to connect, or goes (its slots come
        back). "No video" counts only once it is connected: ICE gathering that waits for an
        unreachable STUN server must not count against the camera."""
        if timeout_s <= 0 or self._connected.is_set():
            return
        self._connect_deadline = asyncio.get_running_loop().call_later(
            timeout_s, self._not_connected, timeout_s
        )

    def _not_connected(self, timeout_s: float) -> None:
        if not self._connected.is_set():
            self.request_close(f"not connected within {timeout_s:g} s")

    def attach_track(self, track: MediaStreamTrack) -> None:
        self._spawn(self._read_track(track), "read")

    def attach_own_channel(self, sink: MessageSink) -> None:
        self._own_sink = sink
        self._sinks.add(sink)
        if self._pending_error is not None:
            text, reason = self._pending_error
            sink.send_text(text)
            self.request_close(reason)

    def end_with_error(self, text: str, reason: str) -> None:
        """End this camera for its own bad input with an `error` message it can read: at
        once when its data channel is open, else when it opens (at most ERROR_WAIT_S)."""
        if self.ending:
            return
        if self.send_own(text):
            self.request_close(reason)
            return
        self._pending_error = (text, reason)
        loop = asyncio.get_running_loop()
        self._delayed.add(loop.call_later(ERROR_WAIT_S, self.request_close, reason))

    @property
    def ending(self) -> bool:
        """Closing, or about to once its error is delivered: take no more of its input."""
        return self.closing or self._pending_error is not None

    def send_own(self, text: str) -> bool:
        """A message for the camera alone (an error about its own input)."""
        return self._own_sink is not None and self._own_sink.send_text(text)

    def attach_video_tap(self, tap: EncodedVideoTap) -> None:
        """The camera's encoded frames, so monitors get them forwarded; closed with us."""
        self._video_tap = tap

    @property
    def video_tap(self) -> EncodedVideoTap | None:
        return self._video_tap

    # ------------------------------------------------------------ output

    def subscribe(self, sink: MessageSink) -> None:
        """A monitor's channel: it gets every message the camera gets from now on."""
        self._sinks.add(sink)

    def unsubscribe(self, sink: MessageSink) -> None:
        self._sinks.discard(sink)

    @property
    def monitor_count(self) -> int:
        return len(self._sinks) - (1 if self._own_sink in self._sinks else 0)

    @property
    def latest_pose_data(self) -> dict[str, Any]:
        """The newest frame's `pose_data` (for `/latest_image`)."""
        return self._latest_pose_data

    @property
    def exercise(self) -> str | None:
        return self._analysis.exercise

    def set_exercise(self, fields: dict[str, Any], source: str) -> ExerciseSet:
        """Apply `set_exercise` (raises InvalidRequest and changes nothing on bad fields);
        the camera and every monitor learn the new exercise."""
        reply = self._analysis.apply_set_exercise(fields)
        logger.info("[%s] exercise set to %s (%s)", self.camera_id, reply.exercise, source)
        if self._recorder is not None:
            # a station that counts records the set (one for all its cameras)
            counted = reply.exercise if not self._station_counts() else None
            self._recorder.exercise_changed(counted, reply.profile, time.time())
        text = encode(reply)
        self.broadcast_text(text)
        self._on_event(self, text)
        return reply

    def set_person(self, person: str | None, source: str) -> PersonSet:
        """Tie the camera to a person (an already validated id; None unties): their sets are
        recorded from now on, and everyone learns it."""
        if person != self.person:
            logger.info("[%s] person set to %s (%s)", self.camera_id, person, source)
        self.person = person
        if self._recorder is not None:
            self._recorder.person_changed(person, time.time())
        reply = PersonSet(self.camera_id, person)
        self.broadcast(reply)
        return reply

    def broadcast(self, message: WireMessage) -> None:
        self.broadcast_text(encode(message))

    def broadcast_text(self, text: str) -> None:
        for sink in tuple(self._sinks):
            sink.send_text(text)

    def _frame_to_analyse(self, waited_on: ReceivedFrame) -> ReceivedFrame | None:
        newest = self.newest.latest or waited_on
        station = self.station
        if station is None or len(self._recent) < 2:
            return newest
        clock = self.capture_clock
        candidates = [
            (clock.estimate(f.pts, f.received_wall, f.camera_time), f) for f in self._recent
        ]
        chosen: ReceivedFrame | None = station.frame_to_analyse(self.camera_id, candidates)
        return chosen

    def newest_capture_time(self) -> float | None:
        """When this camera's newest received frame was captured (server clock), for a
        station choosing the instant its cameras analyse."""
        if not self._recent:
            return None
        frame = self._recent[-1]
        return self.capture_clock.estimate(frame.pts, frame.received_wall, frame.camera_time)

    def _station_counts(self) -> bool:
        return self.station is not None and bool(self.station.counts_reps)

    def capture_time(self, item: ReceivedFrame) -> float:
        """When this frame was captured, in the server's clock (media/capture_clock.py)."""
        if item.camera_time is not None:
            self.capture_clock.source = "timestamp"
            return self.capture_clock.capture_time(item.camera_time, item.received_wall)
        return self.capture_clock.frame_capture_time(item.pts, item.received_wall)

    def frame_arrived(self) -> float:
        """Count a frame in, even one a source drops before decoding; returns the arrival
        time (monotonic) to pass to `publish_frame`."""
        self.stats.frames_received += 1
        now = time.monotonic()
        self.rate.frame_received(now)
        return now

    def publish_frame(
        self,
        frame: av.VideoFrame,
        pts: int,
        rgb: np.ndarray | None = None,
        arrived: float | None = None,
        camera_time: float | None = None,
    ) -> None:
        """`rgb`: the same picture as an RGB array when the caller has one (legacy JPEGs), so
        analysis does not convert it back out of the frame. `arrived`: from `frame_arrived()`
        when the caller counted the frame on arrival. `camera_time`: when the camera says it
        captured the frame, in its own clock (the legacy protocol's `timestamp`)."""
        if arrived is None:
            arrived, wall = self.frame_arrived(), time.time()
        else:
            wall = time.time() - (time.monotonic() - arrived)
        if camera_time is None:
            self.capture_clock.frame_arrived(pts, wall)  # the clock learns from every frame
        received = ReceivedFrame(frame, pts, arrived, wall, rgb, camera_time)
        if self.station is not None:
            self._recent.append(received)  # a station may ask for the frame of an instant
        self.newest.publish(received)

    async def _read_track(self, track: MediaStreamTrack) -> None:
        """Keep only the newest decoded frame; a camera silent for too long is removed."""
        if self._pc is not None:
            await self._connected.wait()  # bounded by expect_connection
        while True:
            try:
                frame = await asyncio.wait_for(track.recv(), self._stall_timeout_s)
            except asyncio.TimeoutError:
                self.request_close(f"no video for {self._stall_timeout_s:g} s")
                return
            except MediaStreamError:
                self.request_close("video track ended")
                return
            assert isinstance(frame, av.VideoFrame)
            self.publish_frame(frame, frame.pts if frame.pts is not None else 0)

    # ------------------------------------------------------------ analysis

    async def _analyse_loop(self) -> None:
        """Hand the newest frame to the worker whenever it is free. A result is queued for
        `_publish_loop`, which runs only once this loop waits again, i.e. after the next
        frame (this camera's, or that of a camera waiting for the same worker's turn) is
        with the worker: the worker does not idle while a result is analysed and sent."""
        seen = 0
        next_allowed = 0.0
        while True:
            try:
                seen, item = await self.newest.wait_newer(seen)
            except EOFError:
                return
            if self._min_interval_s:
                wait = next_allowed - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)  # --analysis-fps cap, then take the newest
                    seen, item = self.newest.version, self.newest.latest or item
                next_allowed = time.monotonic() + self._min_interval_s
            station = self.station
            if station is not None:  # a busy station analyses its cameras' instants in rounds
                await station.wait_for_round(self.camera_id)
            try:
                async with self._pose_channel.turn():
                    # the worker is ours now: take the newest frame, not the one we waited on
                    # (in a station: the frame of the instant its other cameras analyse)
                    seen, chosen = self.newest.version, self._frame_to_analyse(item)
                    if chosen is None:
                        continue  # the station's instant has not arrived here yet: wait
                    item = chosen
                    layout = self._write_frame(item)
                    result = await self._pose_channel.analyse(
                        layout, frame_time_ms(item), self._movement
                    )
            except WorkerFailed as exc:
                self.stats.analysis_failures += 1
                logger.warning("[%s] pose analysis failed: %s", self.camera_id, exc)
                continue
            self.stats.frames_analysed += 1
            log_transition(self.camera_id, self.rate, self.rate.frame_analysed(time.monotonic()))
            # never more than one waits: this loop always waits for the worker in between
            self._results.put_nowait((item, result))

    async def _publish_loop(self) -> None:
        """Analyse, encode and send each result (see `_analyse_loop` for the order)."""
        while True:
            item, result = await self._results.get()
            if self._result_delay_s:  # --inject-delay-ms: proves latency figures are right
                handle = asyncio.get_running_loop().call_later(
                    self._result_delay_s, self._fan_out, item, result
                )
                now = handle.when() - self._result_delay_s
                self._delayed = {h for h in self._delayed if h.when() > now}
                self._delayed.add(handle)
            else:
                self._fan_out(item, result)

    def _write_frame(self, item: ReceivedFrame) -> tuple[str, int, int]:
        if item.rgb is not None:
            return self._pose_channel.write_rgb(item.rgb)
        frame = item.frame
        if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
            return self._pose_channel.write_yuv420p(frame.planes, frame.width, frame.height)
        return self._pose_channel.write_rgb(frame.to_ndarray(format="rgb24"))

    def _fan_out(self, item: ReceivedFrame, result: PoseResult) -> None:
        now = time.time()
        width, height = item.frame.width, item.frame.height
        pose_json = [p.to_json() for p in result.poses]
        analysis, events = self._analysis.analyse(pose_json, width, height, item.received_wall)
        self._movement = movement_signal(analysis)
        if self._recorder is not None and not self._station_counts():
            self._recorder.frame(analysis, [e.rep for e in events], bool(pose_json), now)
        message = frame_processed(
            self.camera_id, self.kind, item, result, pose_json, analysis, self.rate, now
        )
        self._latest_pose_data = message.pose_data
        if analysis is not None and analysis.get("phase") == "working":
            self.between_reps.clear()
        else:
            self.between_reps.set()
        text = encode(message)
        station = self.station
        view_reps = [event.rep for event in events]
        if station is not None and station.counts_reps:
            events = []  # the station counts once: its rep_completed carries station_id
        extra = [encode(event) for event in events]
        for sink in tuple(self._sinks):
            sink.send_text(text)
            for event_text in extra:
                sink.send_text(event_text)
        self._on_result(self, message)
        for event_text in extra:
            self._on_event(self, event_text)
        if station is not None:
            # the camera's capture interval, for pairing: from the capture times of every
            # received frame, else its received frame rate
            interval = self.capture_clock.capture_interval_s
            if interval is None and self.rate.received_fps > 0:
                interval = 1.0 / self.rate.received_fps
            station.on_view(
                ViewItem(
                    self.camera_id,
                    self.capture_time(item),
                    item.pts,
                    pose_json,
                    width,
                    height,
                    analysis,
                    view_reps,
                    capture_interval_s=interval,
                    clock=self.clock_id,
                    camera_captured=self.capture_clock.camera_time_of(item.pts, item.camera_time),
                )
            )

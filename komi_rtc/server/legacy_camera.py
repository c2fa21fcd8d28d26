"""The original KOMI camera protocol: base64 JPEG frames over `/ws/camera`.

Such a camera becomes a CameraSession like a WebRTC one (listed, analysed, monitorable).
Only the newest undecoded JPEG is kept; decoding runs in a thread, never on the loop.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from typing import Any

import av
import cv2
import numpy as np
from aiohttp import WSMsgType, web

from ..media.rtp_timestamps import RTP_CLOCK_RATE
from ..protocol import KomiError, LegacyFrame, load_json, parse_legacy_frame, validate_camera_id
from ..protocol.image_headers import jpeg_dimensions
from ..protocol.messages import ConnectionSuccessful, ErrorMessage, encode
from .access import Forbidden, Grant
from .camera_registry import CameraRegistry
from .camera_session import CameraSession
from .config import ServerConfig
from .control import handle_control_message
from .limits import AddressSlots, MessageRate, check_frame_size

logger = logging.getLogger(__name__)

_SEND_QUEUE = 16
_TIME_BASE = fractions.Fraction(1, RTP_CLOCK_RATE)
# JPEGs decoded at once, server-wide: bounds the memory decoding can take whatever clients send
JPEG_DECODES_AT_ONCE = 2


class WebSocketSink:
    """Queues text for one WebSocket; a peer that falls behind misses messages."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws
        self._queue: asyncio.Queue[str] = asyncio.Queue(_SEND_QUEUE)

    def send_text(self, text: str) -> bool:
        if self._ws.closed or self._queue.full():
            return False
        self._queue.put_nowait(text)
        return True

    def send_urgent(self, text: str) -> None:
        """A message that must arrive (an error about this client's own input): the
        oldest queued one makes room."""
        if self._queue.full():
            self._queue.get_nowait()
        self.send_text(text)

    async def run(self) -> None:
        while True:
            text = await self._queue.get()
            try:
                await self._ws.send_str(text)
            except ConnectionResetError:  # the client went away; the receive loop ends it
                return


def _decode_jpeg(jpeg: bytes) -> np.ndarray | None:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return None
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class _JpegDecoder:
    """Decodes the newest JPEG a client sent; older undecoded ones are dropped."""

    def __init__(
        self,
        session: CameraSession,
        sink: WebSocketSink,
        config: ServerConfig,
        decodes: asyncio.Semaphore,
    ) -> None:
        self._session = session
        self._sink = sink
        self._config = config
        self._decodes = decodes
        self._pending: tuple[LegacyFrame, float] | None = None
        self._wake = asyncio.Event()
        self._origin = time.monotonic()

    def offer(self, frame: LegacyFrame) -> None:
        # counted on arrival, so frames replaced here before decoding show as skipped
        self._pending = (frame, self._session.frame_arrived())
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            pending, self._pending = self._pending, None
            if pending is None:
                continue
            frame, arrived = pending
            size = jpeg_dimensions(frame.jpeg)
            if size is None:
                rgb = None
            else:
                try:
                    config = self._config
                    check_frame_size(
                        *size, config.max_frame_side, config.max_frame_pixels, "image_data"
                    )
                except KomiError as exc:
                    logger.warning("[%s] %s", self._session.camera_id, exc)
                    self._sink.send_text(encode(ErrorMessage(str(exc))))
                    continue
                async with self._decodes:
                    rgb = await loop.run_in_executor(None, _decode_jpeg, frame.jpeg)
            if rgb is None:
                logger.warning("[%s] undecodable JPEG on /ws/camera", self._session.camera_id)
                self._sink.send_text(
                    encode(ErrorMessage("image_data is not a decodable JPEG image"))
                )
                continue
            video_frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            pts = int((time.monotonic() - self._origin) * RTP_CLOCK_RATE)
            video_frame.pts = pts
            video_frame.time_base = _TIME_BASE
            self._session.publish_frame(video_frame, pts, rgb, arrived, frame.timestamp)


async def handle_ws_camera(
    request: web.Request,
    grant: Grant,
    registry: CameraRegistry,
    new_session: Any,
    config: ServerConfig,
    slots: AddressSlots,
    decodes: asyncio.Semaphore,
) -> web.WebSocketResponse:
    # who may stream as which id is settled before the upgrade, so it answers 403 over HTTP
    requested = request.query.get("camera_id")
    wanted = validate_camera_id(requested) if requested else grant.camera_id
    if not grant.may_stream_as(wanted):
        raise Forbidden(f"a {grant.describe()} may not stream as {wanted}")
    release = slots.acquire(request.remote)
    try:
        return await _serve_ws_camera(
            request,
            wanted,
            registry,
            lambda camera_id: new_session(camera_id, grant),
            config,
            decodes,
            grant,
        )
    finally:
        release()


async def _serve_ws_camera(
    request: web.Request,
    wanted: str | None,
    registry: CameraRegistry,
    new_session: Any,
    config: ServerConfig,
    decodes: asyncio.Semaphore,
    grant: Grant,
) -> web.WebSocketResponse:
    stall_timeout_s = config.stall_timeout_s
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=config.max_ws_message_bytes)
    await ws.prepare(request)
    try:
        camera_id = registry.reserve(wanted)
        try:  # in a cluster, the id is this node's everywhere
            await registry.claim(camera_id)
        except BaseException:
            registry.release(camera_id)
            raise
    except KomiError as exc:
        logger.warning("/ws/camera refused: %s", exc)
        await ws.send_str(encode(ErrorMessage(str(exc))))
        await ws.close(code=4000 + exc.status, message=str(exc).encode()[:120])
        return ws
    session: CameraSession = new_session(camera_id)
    sink = WebSocketSink(ws)
    decoder = _JpegDecoder(session, sink, config, decodes)
    rate = MessageRate(config.max_messages_per_s, f"[{camera_id}] /ws/camera")
    session.attach_own_channel(sink)
    session.spawn(sink.run(), "ws-send")
    session.spawn(decoder.run(), "jpeg-decode")
    sink.send_text(encode(ConnectionSuccessful(camera_id)))
    logger.info("[%s] legacy camera connected on /ws/camera", camera_id)
    reason = "client closed"
    try:
        while not session.closed.is_set():
            try:
                message = await ws.receive(timeout=stall_timeout_s)
            except asyncio.TimeoutError:
                reason = f"no frame for {stall_timeout_s:g} s"
                break
            if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                break
            if message.type == WSMsgType.ERROR:
                reason = f"websocket error: {ws.exception()}"
                logger.warning("[%s] %s", camera_id, reason)
                break
            if not rate.allow():
                if rate.refused == 1:
                    sink.send_urgent(encode(ErrorMessage(rate.error)))
                continue
            if message.type != WSMsgType.TEXT:
                sink.send_text(encode(ErrorMessage("messages must be JSON text")))
                logger.warning("[%s] binary message on /ws/camera", camera_id)
                continue
            _handle_text(session, sink, decoder, message.data, grant)
    finally:
        await session.close(reason)
        await ws.close()
    return ws


def _handle_text(
    session: CameraSession,
    sink: WebSocketSink,
    decoder: _JpegDecoder,
    text: str,
    grant: Grant,
) -> None:
    try:
        kind = load_json(text).get("type")
    except (ValueError, AttributeError):
        kind = None
    if kind != "frame" and kind is not None:
        reply = handle_control_message(session, text, grant)
        if reply is not None:
            sink.send_text(encode(reply))
        return
    try:
        decoder.offer(parse_legacy_frame(text))
    except KomiError as exc:
        logger.warning("[%s] bad /ws/camera message: %s", session.camera_id, exc)
        sink.send_text(encode(ErrorMessage(str(exc))))

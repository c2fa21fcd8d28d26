"""`POST /offer`: validate, negotiate, and hand the peer connection to its owner."""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

from aiohttp import web
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

from ..analysis.catalog import Catalog
from ..media.aiortc_adapter import install_marker_release, negotiated_codecs
from ..media.video_forwarding import EncodedVideoTap
from ..pose.worker_pool import PoseWorkerPool
from ..protocol import DATA_CHANNEL_LABEL, InvalidRequest, parse_offer
from ..protocol.messages import OfferAnswer, encode
from .camera_registry import CameraRegistry
from .camera_session import CameraSession, DataChannelSink
from .config import ServerConfig
from .control import handle_control_message
from .monitor_peer import MonitorPeer

logger = logging.getLogger(__name__)

_monitor_ids = itertools.count(1)
_NEGOTIATION_TIMEOUT_S = 15.0


def rtc_configuration(config: ServerConfig) -> RTCConfiguration:
    return RTCConfiguration(iceServers=[RTCIceServer(urls=url) for url in config.ice_servers])


class Signaling:
    def __init__(
        self,
        config: ServerConfig,
        registry: CameraRegistry,
        pool: PoseWorkerPool,
        catalog: Catalog,
    ) -> None:
        self._config = config
        self._catalog = catalog
        self._registry = registry
        self._pool = pool
        self._negotiating: set[RTCPeerConnection] = set()

    async def handle_offer(self, request: web.Request) -> web.Response:
        offer = parse_offer(await request.read())
        if offer.role == "camera":
            answer, camera_id = await self._camera_offer(offer.sdp, offer.camera_id)
        else:
            assert offer.camera_id is not None
            answer, camera_id = await self._monitor_offer(offer.sdp, offer.camera_id)
        return web.json_response(OfferAnswer(answer.sdp, answer.type, camera_id).to_wire())

    async def _negotiate(self, pc: RTCPeerConnection, sdp: str) -> None:
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:  # aiortc raises ValueError, KeyError, ... on bad SDP
            raise InvalidRequest(f"invalid SDP offer: {type(exc).__name__}: {exc}") from None

    async def _answer(self, pc: RTCPeerConnection) -> RTCSessionDescription:
        answer = await pc.createAnswer()
        await asyncio.wait_for(pc.setLocalDescription(answer), _NEGOTIATION_TIMEOUT_S)
        return pc.localDescription

    async def _camera_offer(
        self, sdp: str, requested_id: str | None
    ) -> tuple[RTCSessionDescription, str]:
        camera_id = self._registry.reserve(requested_id)
        pc = RTCPeerConnection(rtc_configuration(self._config))
        self._negotiating.add(pc)
        session: CameraSession | None = None
        try:
            await self._negotiate(pc, sdp)
            videos = [t for t in pc.getTransceivers() if t.kind == "video"]
            if not videos or videos[0].direction not in ("sendrecv", "recvonly"):
                raise InvalidRequest("a camera offer must send one video track")
            session = self._new_session(camera_id, "webrtc")
            session.attach_peer(pc)
            self._install_jitter_buffer(session, videos[0])
            session.attach_track(videos[0].receiver.track)
            self._bind_camera_channel(pc, session)
            answer = await self._answer(pc)
        except BaseException:
            self._registry.release(camera_id)
            if session is not None:
                await session.close("negotiation failed")
            else:
                await pc.close()
            raise
        finally:
            self._negotiating.discard(pc)
        self._registry.add(session)
        logger.info("[%s] camera connected over WebRTC", camera_id)
        return answer, camera_id

    def _install_jitter_buffer(self, session: CameraSession, transceiver: Any) -> None:
        """Our jitter buffer releases frames at their marker and taps them for monitors."""
        config = self._config
        receiver = transceiver.receiver
        tap = None
        if config.forward_video:
            tap = EncodedVideoTap(
                session.camera_id, receiver, negotiated_codecs(transceiver), session.spawn
            )
        if not config.early_frame_release and tap is None:
            return
        installed = install_marker_release(
            receiver,
            release_on_marker=config.early_frame_release,
            on_frame=tap.on_frame if tap is not None else None,
        )
        if installed and tap is not None:
            session.attach_video_tap(tap)

    def _new_session(self, camera_id: str, kind: str) -> CameraSession:
        config = self._config
        return CameraSession(
            camera_id,
            kind,
            self._pool.open_camera(camera_id),
            on_result=self._registry.on_result,
            on_closed=self._registry.remove,
            stall_timeout_s=config.stall_timeout_s,
            analysis_fps=config.analysis_fps,
            result_delay_s=config.inject_delay_ms / 1000.0,
            catalog=self._catalog,
        )

    def new_legacy_session(self, camera_id: str) -> CameraSession:
        session = self._new_session(camera_id, "websocket")
        self._registry.add(session)
        return session

    def _bind_camera_channel(self, pc: RTCPeerConnection, session: CameraSession) -> None:
        @pc.on("datachannel")
        def on_datachannel(channel: Any) -> None:
            sink = DataChannelSink(channel)
            if channel.label != DATA_CHANNEL_LABEL:
                logger.info("[%s] ignoring data channel %r", session.camera_id, channel.label)
                return
            session.attach_own_channel(sink)

            @channel.on("message")
            def on_message(raw: str | bytes) -> None:
                reply = handle_control_message(session, raw)
                if reply is not None:
                    sink.send_text(encode(reply))

    async def _monitor_offer(self, sdp: str, camera_id: str) -> tuple[RTCSessionDescription, str]:
        session = self._registry.get(camera_id)
        pc = RTCPeerConnection(rtc_configuration(self._config))
        monitor = MonitorPeer(session, pc, f"monitor_{next(_monitor_ids)}")
        try:
            await self._negotiate(pc, sdp)
            videos = [t for t in pc.getTransceivers() if t.kind == "video"]
            if not videos:
                raise InvalidRequest("a monitor offer must receive one video track")
            video = monitor.add_video(videos[0], session.video_tap)
            answer = await self._answer(pc)
        except BaseException:
            await monitor.close()
            raise
        logger.info("[%s] %s connected (video %s)", camera_id, monitor.peer_id, video)
        return answer, camera_id

    async def close(self) -> None:
        for pc in list(self._negotiating):
            await pc.close()

"""A monitor's offer: its camera must be here, not closing, and have room for one more
monitor; the monitor's `MonitorPeer` owns the connection from then on, and revoking its
token closes it, also while it is negotiating."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable

from aiortc import RTCPeerConnection
from aiortc.exceptions import InvalidStateError

from ..media.aiortc_adapter import negotiated_codecs
from ..protocol import CameraLeft, InvalidRequest, NegotiationInterrupted
from .access import Grant, LiveConnections
from .camera_registry import CameraRegistry
from .config import ServerConfig
from .limits import MessageRate, ServerFull
from .monitor_peer import MonitorPeer
from .peer_negotiation import Negotiated, answer_offer, rtc_configuration, take_offer

logger = logging.getLogger(__name__)

_monitor_ids = itertools.count(1)


class MonitorOffers:
    """Answers monitors' offers for `Signaling`, once it has checked their rights and placed
    them on this node."""

    def __init__(
        self, config: ServerConfig, registry: CameraRegistry, live: LiveConnections
    ) -> None:
        self._config = config
        self._registry = registry
        self._live = live

    async def answer(
        self, sdp: str, camera_id: str, release: Callable[[], None], grant: Grant
    ) -> Negotiated:
        session = self._registry.get(camera_id)
        if session.closing:  # listed until its close ends, but no monitor of it can start
            raise CameraLeft(camera_id)
        limit = self._config.max_monitors_per_camera
        if limit and len(session.monitor_peers) >= limit:
            raise ServerFull(
                f"{camera_id} already has {limit} monitors (--max-monitors-per-camera)"
            )
        pc = RTCPeerConnection(rtc_configuration(self._config))

        def closed() -> None:
            release()
            self._live.remove(grant, monitor)

        monitor = MonitorPeer(
            session,
            pc,
            f"monitor_{next(_monitor_ids)}",
            grant,
            on_closed=closed,
            rate=MessageRate(self._config.max_messages_per_s, f"[{camera_id}] monitor"),
            connect_timeout_s=self._config.connect_timeout_s,
        )
        # from now on revoking its token closes it, also while it is still negotiating
        self._live.add(grant, monitor, monitor.close)
        try:
            transceiver = monitor.prepare_video(session.video_tap)
            await take_offer(pc, sdp, camera_id)
            if transceiver.mid is None:
                raise InvalidRequest("a monitor offer must receive one video track")
            video = monitor.add_video(transceiver, session.video_tap)
            answer = await answer_offer(pc)
            if session.closing:  # it closed this monitor, or will (its listeners may have run)
                raise InvalidStateError("the camera is closing")
        except Exception as exc:
            await monitor.close()
            if session.closing:
                # whatever aiortc raised on the closed peer connection (InvalidStateError,
                # or a transport already gone), or a timeout while gathering for it
                raise CameraLeft(camera_id) from None
            if isinstance(exc, InvalidStateError):  # closed by its own deadline or owner
                raise NegotiationInterrupted(
                    f"the monitor's connection to {camera_id} was closed while it was "
                    "negotiating: offer again"
                ) from None
            raise
        except BaseException:
            await monitor.close()
            raise
        sent = negotiated_codecs(transceiver)
        logger.info(
            "[%s] %s connected (video %s) in %s",
            camera_id,
            monitor.peer_id,
            video,
            sent[0].mimeType.partition("/")[2] if sent else "no codec",
        )
        return Negotiated(answer, camera_id, pc, monitor)

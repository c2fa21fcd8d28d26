"""An SDP offer taken and answered on our RTCPeerConnection: what aiortc refuses because of
the offer is the offer's fault, a 400 that says why; what fails on our side stays a 500.
`Signaling` (`POST /offer`, WHIP, WHEP) negotiates every camera and monitor through it."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.exceptions import InvalidStateError, OperationError

from ..media.aiortc_adapter import accept_offer
from ..media.video_codecs import ACCEPTED_CODECS
from ..protocol import InvalidRequest
from ..protocol.sdp_requests import offered_codecs
from .camera_session import CameraSession
from .config import ServerConfig
from .monitor_peer import MonitorPeer

logger = logging.getLogger(__name__)

_NEGOTIATION_TIMEOUT_S = 15.0


def rtc_configuration(config: ServerConfig) -> RTCConfiguration:
    return RTCConfiguration(iceServers=[RTCIceServer(urls=url) for url in config.ice_servers])


@dataclass(frozen=True)
class Negotiated:
    """An offer answered here: the camera's session or the monitor's peer owns `pc`."""

    answer: RTCSessionDescription
    camera_id: str
    pc: RTCPeerConnection
    peer: CameraSession | MonitorPeer
    nodes: list[str] | None = None  # in a cluster, a camera's: where to reconnect


async def take_offer(pc: RTCPeerConnection, sdp: str, camera_id: str) -> None:
    """Take the offer; InvalidStateError (the peer connection was closed meanwhile) is
    left to the caller, who knows why."""
    try:
        if await accept_offer(pc, sdp):
            logger.info(
                "[%s] the offer has no usable ICE candidate (hidden behind mDNS names, "
                "or none): its address is learnt from its connectivity checks",
                camera_id,
            )
    except InvalidStateError:
        raise
    except OperationError as exc:  # no codec in common in some section
        kinds = [k for k in ("audio", "video") if k in str(exc)]
        raise InvalidRequest(
            f"the offer has no {' or '.join(kinds) or 'media'} codec KOMI can take"
            + (f": {_describe_codecs(sdp, kinds[0])}" if kinds else "")
        ) from None
    except Exception as exc:  # aiortc raises ValueError, KeyError, ... on bad SDP
        raise InvalidRequest(f"invalid SDP offer: {type(exc).__name__}: {exc}") from None


async def answer_offer(pc: RTCPeerConnection) -> RTCSessionDescription:
    """An offer that parse_offer and setRemoteDescription let through can still fail
    here (aiortc checks the answer against the offer: ValueError "Media sections in
    answer do not match offer"): that is the offer's fault, a 400, not a 500. A timeout
    (gathering our own candidates) is not the offer's fault and stays a 500."""
    try:
        answer = await pc.createAnswer()
        await asyncio.wait_for(pc.setLocalDescription(answer), _NEGOTIATION_TIMEOUT_S)
    except (TimeoutError, InvalidStateError):
        raise
    except Exception as exc:  # ValueError, KeyError, AttributeError
        logger.warning("an offer could not be answered: %s: %s", type(exc).__name__, exc)
        raise InvalidRequest(
            f"invalid SDP offer: it cannot be answered: {type(exc).__name__}: {exc}"
        ) from None
    return pc.localDescription


def _describe_codecs(sdp: str, kind: str) -> str:
    offered = offered_codecs(sdp, kind)
    listed = ", ".join(c.describe() for c in offered) or "none"
    if kind == "video":
        return f"it offers {listed}; KOMI takes {ACCEPTED_CODECS}"
    return f"it offers {listed}"

"""WHIP ingest (RFC 9725) and WHEP egress: cameras and players that speak plain HTTP with an
SDP body (OBS, Larix Broadcaster, GStreamer, browser WHIP/WHEP libraries) instead of KOMI's
JSON `POST /offer`.

- `POST /whip/{camera_id}` (`application/sdp`): the camera's offer. `201 Created`, the
  answer as the body, `Location` of the session, `ETag`, `Accept-Patch`, and a `Link` per
  configured ICE server. `?person=` and `?station=` do what they do in an offer's body. The
  camera is a camera like any other (analysed, listed, monitored, in stations and history);
  results go to its monitors, `/ws/monitor`, and a data channel labelled `komi` if the
  client opened one.
- `POST /whep/{camera_id}`: a player's offer to receive the camera's video, the same way.
- `PATCH` on a session: trickle ICE (`application/trickle-ice-sdpfrag`, RFC 8840) answers
  204; an ICE restart (new credentials) 422: this server does not restart ICE.
- `DELETE` on a session ends it: the camera leaves (its monitors are told), or the player.
- `OPTIONS` on an endpoint: `Link` headers for the ICE servers, and the methods allowed.

Tokens are those of `POST /offer` (`Authorization: Bearer`), with the same checks, which
`Signaling.negotiate` makes for all three. Every error is a 4xx with a JSON body
(`{"error": ...}`), which RFC 9725 leaves to the server.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from aiortc import RTCPeerConnection

from ...media.aiortc_adapter import add_ice_candidate, end_of_candidates
from ...protocol import InvalidRequest, KomiError, validate_camera_id
from ...protocol.requests import MAX_CANDIDATES
from ...protocol.sdp_requests import (
    SDP_CONTENT_TYPE,
    TRICKLE_CONTENT_TYPE,
    ice_credentials,
    parse_sdp_offer,
    parse_trickle_fragment,
)
from ..access import Forbidden, Grant
from ..camera_session import CameraSession
from ..config import ServerConfig
from ..monitor_peer import MonitorPeer
from ..peer_negotiation import Negotiated
from ..signaling import Signaling
from ..turn_credentials import turn_server_for

logger = logging.getLogger(__name__)

WHIP = "whip"  # a camera sends
WHEP = "whep"  # a player receives
ALLOWED_METHODS = "OPTIONS, POST, PATCH, DELETE"


class UnknownSession(KomiError):
    status = 404


class PreconditionFailed(KomiError):
    status = 412


class IceRestartRefused(KomiError):
    """RFC 9725 4.3.1: a session that trickles but does not restart ICE answers 422."""

    status = 422


@dataclass
class _Session:
    """One WHIP or WHEP session: its resource URL names it, its peer owns the connection."""

    kind: str
    camera_id: str
    resource_id: str
    etag: str
    pc: RTCPeerConnection
    peer: CameraSession | MonitorPeer
    client_ice_ufrag: str | None  # the client's, from its offer: another one is a restart
    candidates: int = 0
    candidates_ended: bool = False

    @property
    def location(self) -> str:
        return f"/{self.kind}/{self.camera_id}/{self.resource_id}"

    @property
    def gone(self) -> bool:
        if isinstance(self.peer, CameraSession):
            return self.peer.closing
        return self.peer.closed

    async def end(self, reason: str) -> None:
        if isinstance(self.peer, CameraSession):
            await self.peer.close(reason)
        else:
            await self.peer.close()


class WhipEndpoints:
    """The WHIP and WHEP handlers and the sessions they opened (which close themselves
    with their camera or player; an entry of a closed one is dropped when next met)."""

    def __init__(
        self,
        config: ServerConfig,
        signaling: Callable[[], Signaling],
        read_body: Callable[[web.Request], Awaitable[bytes]],
    ) -> None:
        self._config = config
        self._signaling = signaling  # created with the app's workers, at startup
        self._read_body = read_body
        self._sessions: dict[str, _Session] = {}

    # ------------------------------------------------------------------ endpoints

    async def ingest(self, request: web.Request) -> web.Response:
        """`POST /whip/{camera_id}`: a camera's offer."""
        return await self._open(request, WHIP)

    async def egress(self, request: web.Request) -> web.Response:
        """`POST /whep/{camera_id}`: a player's offer for the camera's video."""
        return await self._open(request, WHEP)

    async def options(self, request: web.Request) -> web.Response:
        """`OPTIONS` on an endpoint: the ICE servers (`Link`, RFC 9725 4.6) and what the
        endpoint takes. A browser's CORS preflight never gets here (`app.cross_origin`)."""
        validate_camera_id(request.match_info["camera_id"])
        headers = {
            "Allow": "OPTIONS, POST",
            "Accept-Post": SDP_CONTENT_TYPE,
            # browser WHIP clients read this to learn that sessions take trickle ICE
            "Access-Control-Allow-Methods": ALLOWED_METHODS,
        }
        response = web.Response(status=204, headers=headers)
        for link in self._ice_server_links(request):
            response.headers.add("Link", link)
        return response

    async def update(self, request: web.Request) -> web.Response:
        """`PATCH` on a session: trickled ICE candidates (204)."""
        session = self._session_for(request)
        if_match = request.headers.get("If-Match")
        if if_match is not None and if_match.strip() not in ("*", session.etag):
            raise PreconditionFailed(
                f"If-Match {if_match[:80]!r} is not this session's ETag {session.etag}"
            )
        fragment = parse_trickle_fragment(
            await self._read_body(request), request.headers.get("Content-Type", "")
        )
        if fragment.ice_ufrag is not None and fragment.ice_ufrag != session.client_ice_ufrag:
            raise IceRestartRefused(
                "ICE restarts are not supported: DELETE this session and POST a new offer"
            )
        if fragment.candidates and session.candidates_ended:
            raise InvalidRequest("candidates after a=end-of-candidates")
        session.candidates += len(fragment.candidates)
        if session.candidates > MAX_CANDIDATES:
            raise InvalidRequest(
                f"more than {MAX_CANDIDATES} ICE candidates in one session (the offer's limit)"
            )
        for mid, candidate in fragment.candidates:
            try:
                await add_ice_candidate(session.pc, mid, candidate)
            except ValueError as exc:
                raise InvalidRequest(f"a=candidate refused: {exc}") from None
        if fragment.end_of_candidates and not session.candidates_ended:
            session.candidates_ended = True
            await end_of_candidates(session.pc)
        return web.Response(status=204, headers={"ETag": session.etag})

    async def end(self, request: web.Request) -> web.Response:
        """`DELETE` on a session: the camera (or the player) leaves."""
        session = self._session_for(request)
        self._sessions.pop(session.resource_id, None)
        await session.end(f"the {session.kind.upper()} client ended its session")
        logger.info("[%s] %s session ended by its client", session.camera_id, session.kind)
        return web.Response(status=200)

    # ------------------------------------------------------------------ internals

    async def _open(self, request: web.Request, kind: str) -> web.Response:
        signaling = self._signaling()
        grant = signaling.grant(request)  # 401 before the body is read
        body = await self._read_body(request)
        offer = parse_sdp_offer(
            body,
            request.headers.get("Content-Type", ""),
            "camera" if kind == WHIP else "monitor",
            request.match_info["camera_id"],
            request.query,
        )
        outcome = await signaling.negotiate(request, offer, grant, body)
        if isinstance(outcome, web.Response):
            return outcome  # answered by the node hosting it, headers and all
        session = self._add(kind, outcome, offer.sdp)
        logger.info("[%s] %s session %s opened", session.camera_id, kind, session.resource_id)
        response = web.Response(
            status=201,
            text=outcome.answer.sdp,
            content_type=SDP_CONTENT_TYPE,
            headers={
                "Location": session.location,
                "ETag": session.etag,
                "Accept-Patch": TRICKLE_CONTENT_TYPE,
            },
        )
        for link in self._ice_server_links(request):
            response.headers.add("Link", link)
        return response

    def _add(self, kind: str, outcome: Negotiated, offer_sdp: str) -> _Session:
        for resource_id in [r for r, s in self._sessions.items() if s.gone]:
            del self._sessions[resource_id]
        resource_id = secrets.token_urlsafe(18)  # the URL is a secret of the client's
        session = _Session(
            kind=kind,
            camera_id=outcome.camera_id,
            resource_id=resource_id,
            etag=f'"{secrets.token_hex(8)}"',
            pc=outcome.pc,
            peer=outcome.peer,
            client_ice_ufrag=ice_credentials(offer_sdp)[0],
        )
        self._sessions[resource_id] = session
        return session

    def _session_for(self, request: web.Request) -> _Session:
        """The session the URL names, if the token may act on it (stream as its camera for
        WHIP, watch it for WHEP); 404 for an unknown or ended one."""
        kind = request.path.split("/", 2)[1]
        camera_id = validate_camera_id(request.match_info["camera_id"])
        session = self._sessions.get(request.match_info["resource_id"])
        if session is None or session.kind != kind or session.camera_id != camera_id:
            raise UnknownSession(f"no {kind.upper()} session at {request.path[:200]}")
        if session.gone:
            del self._sessions[session.resource_id]
            raise UnknownSession(f"the {kind.upper()} session of {camera_id} has ended")
        grant: Grant = self._signaling().grant(request)
        allowed = grant.may_stream_as(camera_id) if kind == WHIP else grant.may_see(camera_id)
        if not allowed:
            raise Forbidden(f"a {grant.describe()} may not change {camera_id}'s session")
        return session

    def _ice_server_links(self, request: web.Request) -> list[str]:
        """`Link: <stun:...>; rel="ice-server"` per `--ice-server`, and per `--turn-url` with
        the credentials minted for this request's token (RFC 9725 4.6)."""
        links = [f'<{url}>; rel="ice-server"' for url in self._config.ice_servers]
        turn = turn_server_for(self._config, self._signaling().grant(request), time.time())
        if turn is not None:
            links += [
                f'<{url}>; rel="ice-server"; username="{turn.username}"; '
                f'credential="{turn.credential}"; credential-type="password"'
                for url in turn.urls
            ]
        return links

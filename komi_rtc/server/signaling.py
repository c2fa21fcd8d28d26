"""`POST /offer` (and WHIP and WHEP, `whip.py`): validate, negotiate, and hand the peer
connection to its owner. A camera's offer is answered here; a monitor's in
`monitor_offers.py`; both take and answer their SDP through `peer_negotiation.py`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.exceptions import InvalidStateError

from ..analysis.catalog import Catalog
from ..history.recorder import SetRecorder
from ..history.store import History
from ..media.aiortc_adapter import (
    accept_low_dynamic_payload_types,
    accept_rsa_dtls_peers,
    close_peer_connection,
    negotiated_codecs,
    register_h264_profiles,
    tap_sender_reports,
)
from ..media.video_codecs import (
    ACCEPTED_CODECS,
    camera_codec_preferences,
    camera_may_send,
)
from ..pose.worker_pool import PoseWorkerPool
from ..protocol import (
    InvalidRequest,
    NegotiationInterrupted,
    Offer,
    load_json,
    parse_offer,
)
from ..protocol.messages import ErrorMessage, OfferAnswer, PersonSet, encode
from ..protocol.sdp_requests import offered_codecs
from .access import (
    OPEN_GRANT,
    Forbidden,
    Grant,
    LiveConnections,
    TokenAuthority,
    Unauthorized,
    presented_token,
)
from .camera_registry import CameraRegistry
from .camera_session import CameraSession
from .camera_video_intake import install_jitter_buffer
from .cluster import Cluster, client_address, forward, forwarded, forwarded_grant
from .config import ServerConfig
from .control import accept_one_channel, handle_control_message
from .http_bodies import read_body
from .limits import AddressSlots, MessageRate, OfferGate
from .message_sinks import DataChannelSink
from .monitor_offers import MonitorOffers
from .peer_negotiation import Negotiated, answer_offer, rtc_configuration, take_offer
from .stations import StationRegistry

logger = logging.getLogger(__name__)


class UnsupportedCodec(InvalidRequest):
    """A camera offer with no video codec KOMI takes (400, naming those it takes)."""


def _body_token(body: bytes) -> str | None:
    try:
        value = load_json(body)
    except ValueError:
        return None
    token = value.get("token") if isinstance(value, dict) else None
    return token if isinstance(token, str) and token else None


class Signaling:
    def __init__(
        self,
        config: ServerConfig,
        registry: CameraRegistry,
        pool: PoseWorkerPool,
        catalog: Catalog,
        authority: TokenAuthority | None,
        slots: AddressSlots,
        live: LiveConnections,
    ) -> None:
        self._config = config
        self._catalog = catalog
        self._registry = registry
        self._pool = pool
        self._authority = authority  # None: --open
        self._slots = slots
        self._live = live
        self._gate = OfferGate(config.max_concurrent_offers)
        self.camera_slots = AddressSlots(
            config.max_cameras_per_address, "cameras", "--max-cameras-per-address"
        )
        self._negotiating: set[RTCPeerConnection] = set()
        self._monitors = MonitorOffers(config, registry, live)
        self.history: History | None = None  # set by the app once the database is ready
        self.cluster: Cluster | None = None  # set by the app with --redis
        self.stations = StationRegistry(catalog, lambda: self.history)
        register_h264_profiles()  # OBS, GStreamer and IP cameras send H.264 High
        accept_low_dynamic_payload_types()  # Chromium numbers High 4:4:4 (f4001f) 35-63
        accept_rsa_dtls_peers()  # GStreamer's webrtcbin has an RSA certificate

    def grant(self, request: web.Request, body: bytes = b"") -> Grant:
        """What the request's token allows: the header's (or `?token=`), else a JSON
        body's `token`; another node's signed grant for a forwarded request."""
        return self._grant(request, body)

    def _grant(self, request: web.Request, body: bytes) -> Grant:
        if self._authority is None:
            return OPEN_GRANT
        grant = forwarded_grant(request)  # another node checked the token: a body's is ignored
        if grant is None:
            return self._authority.check(presented_token(request) or _body_token(body))
        if grant.token_id is not None and self._authority.is_revoked(grant.token_id):
            raise Unauthorized("the access token was revoked")
        return grant

    async def handle_offer(self, request: web.Request) -> web.Response:
        if self._authority is not None and presented_token(request) is None:
            # the token can only be in the body: read it, but never wait long for it
            body = await read_body(request)
        else:
            self._grant(request, b"")  # a header token is checked before the body is read
            body = await read_body(request)
        grant = self._grant(request, body)  # 401 before anything else is said
        offer = parse_offer(body)
        outcome = await self.negotiate(request, offer, grant, body)
        if isinstance(outcome, web.Response):
            return outcome  # answered by the node hosting it
        answer = outcome.answer
        return web.json_response(
            OfferAnswer(answer.sdp, answer.type, outcome.camera_id, outcome.nodes).to_wire()
        )

    async def negotiate(
        self, request: web.Request, offer: Offer, grant: Grant, body: bytes
    ) -> web.Response | Negotiated:
        """Check what `grant` may do with `offer`, place it (in a cluster, another node's
        answer comes back as a response), then answer it here. `POST /offer`, WHIP and WHEP
        share it: the same rights, limits and placement whatever the signaling."""
        camera_id = offer.camera_id
        person = offer.person
        if offer.role == "camera":
            if camera_id is None and grant.role == "camera":
                camera_id = grant.camera_id  # a bound token streams as its camera
            if not grant.may_stream_as(camera_id):
                raise Forbidden(f"a {grant.describe()} may not stream as {camera_id}")
            if person is None and grant.role == "camera":
                person = grant.person  # a link minted for a person ties its camera to them
            if not grant.may_tie(person):
                raise Forbidden(
                    f"a {grant.describe()} may not tie its camera to {person}: ask for a "
                    "camera link made for that person"
                )
        else:
            assert camera_id is not None
            if not grant.may_see(camera_id):
                raise Forbidden(f"a {grant.describe()} may not watch {camera_id}")
        cluster = self.cluster
        if cluster is not None and not _forwarded(request):
            # the node that will host it: a new camera's least loaded one, a monitor's its
            # camera's; the answer (with that node's ICE candidates) comes back as it is
            if offer.role == "camera":
                node = await cluster.place_camera(camera_id, offer.station)
            else:
                assert camera_id is not None
                node = cluster.node_of_camera(camera_id)
            if node is not None:
                return await forward(request, node, body, grant)
        if offer.role == "camera" and offer.station is not None:
            self._check_station_join(grant, offer.station, camera_id)
        self._gate.enter()
        try:
            address = client_address(request)
            release = self._slots.acquire(address)
            if offer.role == "camera":
                try:
                    release = _both(release, self.camera_slots.acquire(address))
                except BaseException:
                    release()
                    raise
            try:
                negotiated: Negotiated
                if offer.role == "camera":
                    negotiated = await self._camera_offer(
                        offer.sdp, camera_id, release, grant, person, offer.station, offer.clock
                    )
                else:
                    assert camera_id is not None
                    negotiated = await self._monitors.answer(offer.sdp, camera_id, release, grant)
            except BaseException:
                release()
                self._refuse_if_revoked(grant, camera_id)  # closed under it: say why
                raise
        finally:
            self._gate.leave()
        self._refuse_if_revoked(grant, negotiated.camera_id)
        if cluster is not None and offer.role == "camera":
            # where to reconnect when this node and its entry die
            return Negotiated(
                negotiated.answer,
                negotiated.camera_id,
                negotiated.pc,
                negotiated.peer,
                cluster.node_urls(),
            )
        return negotiated

    def _check_station_join(self, grant: Grant, station_id: str, camera_id: str | None) -> None:
        """Naming a station in an offer needs a token made for it (a join link's), or a
        monitor having listed this camera's id there: a stranger's camera never reads or
        steers someone else's station."""
        if grant.may_join_station(station_id):
            return
        if camera_id is not None and self.stations.lists(station_id, camera_id):
            return
        raise Forbidden(
            f"a {grant.describe()} may not join station {station_id}: use the station's "
            "join link, or have a monitor add this camera to it"
        )

    def _refuse_if_revoked(self, grant: Grant, camera_id: str | None) -> None:
        """A token revoked while its offer was negotiating: its connection was closed (it
        was registered before the answer); the client gets 401, not an answer."""
        authority = self._authority
        if authority is None:
            return
        ids = [i for i in (grant.token_id, grant.parent) if i is not None]
        if any(authority.is_revoked(i) for i in ids):
            logger.info("[%s] offer refused: its token was revoked while negotiating", camera_id)
            raise Unauthorized("the access token was revoked")

    async def _camera_offer(
        self,
        sdp: str,
        requested_id: str | None,
        release: Callable[[], None],
        grant: Grant,
        person: str | None = None,
        station: str | None = None,
        clock: str | None = None,
    ) -> Negotiated:
        offered = offered_codecs(sdp)
        if offered and not any(camera_may_send(c) for c in offered):
            raise UnsupportedCodec(
                f"the camera offers no video codec KOMI takes (it offers "
                f"{', '.join(c.describe() for c in offered)}): a camera sends {ACCEPTED_CODECS}"
            )
        camera_id = self._registry.reserve(requested_id)
        try:
            if self.cluster is not None:
                await self.cluster.claim_camera(camera_id)
        except BaseException:
            self._registry.release(camera_id)
            raise
        pc = RTCPeerConnection(rtc_configuration(self._config))
        self._negotiating.add(pc)
        # revoking the token now closes this peer; once the session exists, the session
        self._live.add(grant, pc, lambda: close_peer_connection(pc))
        session: CameraSession | None = None
        try:
            video = pc.addTransceiver("video", direction="recvonly")
            capabilities = RTCRtpReceiver.getCapabilities("video")
            codecs = capabilities.codecs if capabilities is not None else []
            video.setCodecPreferences(camera_codec_preferences(codecs, offered))
            await take_offer(pc, sdp, camera_id)
            for other in pc.getTransceivers():
                if other is not video:
                    # audio (OBS, Larix and the aiortc example send it) and any further video
                    # are declined: nobody reads them, and aiortc would queue them unread
                    other.direction = "inactive"
            if video.mid is None or video.receiver.track is None:
                raise InvalidRequest(f"a camera offer must send one video track: {ACCEPTED_CODECS}")
            session = self._new_session(camera_id, "webrtc")
            self.track_connection(session, grant, release)
            if person is not None:
                session.set_person(person, "offer")
            tap_sender_reports(video.receiver, session.capture_clock.sender_report)
            session.clock_id = clock  # a station shares the offset of cameras naming it
            self._join_station(session, station)
            session.attach_peer(pc)
            install_jitter_buffer(session, video, self._config)
            session.attach_track(video.receiver.track)
            self._bind_camera_channel(pc, session, grant)
            answer = await answer_offer(pc)
        except BaseException as exc:
            self._registry.release(camera_id)
            if self.cluster is not None:
                self.cluster.release_camera(camera_id)
            if session is not None:
                await session.close("negotiation failed")
            else:
                await close_peer_connection(pc)
            if isinstance(exc, InvalidStateError):  # closed under it: not the offer's fault
                raise NegotiationInterrupted(
                    f"the server closed {camera_id}'s connection while answering: offer again"
                ) from None
            raise
        finally:
            self._negotiating.discard(pc)
            self._live.remove(grant, pc)
        self._registry.add(session)
        session.expect_connection(self._config.connect_timeout_s)
        sent = negotiated_codecs(video)
        logger.info(
            "[%s] camera connected over WebRTC, sending %s",
            camera_id,
            sent[0].mimeType.partition("/")[2] if sent else "no codec",
        )
        return Negotiated(answer, camera_id, pc, session)

    def _new_session(self, camera_id: str, kind: str) -> CameraSession:
        config = self._config
        recorder = None
        if self.history is not None:
            recorder = SetRecorder(camera_id, self.history, self._catalog)
        session = CameraSession(
            camera_id,
            kind,
            self._pool.open_camera(camera_id),
            on_result=self._registry.on_result,
            on_event=self._registry.on_event,
            on_closed=self._registry.remove,
            stall_timeout_s=config.stall_timeout_s,
            analysis_fps=config.analysis_fps,
            result_delay_s=config.inject_delay_ms / 1000.0,
            catalog=self._catalog,
            recorder=recorder,
        )
        if recorder is not None:
            recorder.announce = session.broadcast
        cluster = self.cluster
        if cluster is not None:
            owner = object()
            session.add_close_listener(owner, _async(lambda: cluster.release_camera(camera_id)))
        return session

    def track_connection(
        self, session: CameraSession, grant: Grant, release: Callable[[], None] | None
    ) -> None:
        """When the camera goes: its address slot is freed; when its token is revoked: it
        goes."""
        if release is not None:
            session.add_close_listener(release, _async(release))
        self._live.add(grant, session, lambda: session.close("its token was revoked"))
        owner = object()
        session.add_close_listener(owner, _async(lambda: self._live.remove(grant, session)))

    def _join_station(self, session: CameraSession, station: str | None) -> None:
        """The offer's station, or the one a REST call reserved this camera id for; the
        camera leaves it when it goes."""
        if station is not None:
            self.stations.join(station, session)
        else:
            self.stations.camera_arrived(session)
        owner = object()
        session.add_close_listener(owner, _async(lambda: self.stations.camera_left(session)))

    def new_legacy_session(self, camera_id: str, grant: Grant) -> CameraSession:
        """A /ws/camera camera (it names no person and no station: a monitor ties it)."""
        session = self._new_session(camera_id, "websocket")
        self._join_station(session, None)
        self.track_connection(session, grant, None)  # the WebSocket handler frees its slot
        self._registry.add(session)
        return session

    def _bind_camera_channel(
        self, pc: RTCPeerConnection, session: CameraSession, grant: Grant
    ) -> None:
        """The camera's one `komi` channel: any other channel, or a second `komi`, is
        closed at once (each would get its own copy of every result)."""
        rate = MessageRate(self._config.max_messages_per_s, f"[{session.camera_id}] camera")
        bound: list[DataChannelSink] = []

        @pc.on("datachannel")
        def on_datachannel(channel: Any) -> None:
            if not accept_one_channel(channel, bound, f"[{session.camera_id}] camera"):
                return
            sink = DataChannelSink(channel)
            bound.append(sink)
            session.attach_own_channel(sink)
            if session.person is not None:  # tied by the offer, before the channel was open
                sink.send_text(encode(PersonSet(session.camera_id, session.person)))

            @channel.on("message")
            def on_message(raw: str | bytes) -> None:
                if not rate.allow():
                    if rate.refused == 1:
                        sink.send_text(encode(ErrorMessage(rate.error)))
                    return
                reply = handle_control_message(session, raw, grant)
                if reply is not None:
                    sink.send_text(encode(reply))

    async def close(self) -> None:
        for pc in list(self._negotiating):
            await close_peer_connection(pc)
        self.stations.close()


def _forwarded(request: web.Request) -> bool:
    return forwarded(request)


def _both(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def release() -> None:
        first()
        second()

    return release


def _async(callback: Callable[[], None]) -> Callable[[], Any]:
    async def run() -> None:
        callback()

    return run

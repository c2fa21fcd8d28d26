"""The KOMI RTC server as an aiohttp app: `create_app(config)` and its HTTP/WebSocket endpoints."""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from .. import __version__
from ..analysis.catalog import PROFILES, Catalog
from ..history.store import History, HistoryStore, default_url
from ..pose.worker_pool import PoseWorkerPool
from ..protocol import InvalidRequest, KomiError, load_json, validate_camera_id
from ..protocol.messages import ErrorBody, ErrorMessage, encode
from ..protocol.tokens import TokenListing, WhoAmI, parse_mint_request
from .access import (
    DEFAULT_TTL_S,
    MAX_TTL_S,
    MINTED_FILE,
    OPEN_GRANT,
    REVOKED_FILE,
    Forbidden,
    Grant,
    LiveConnections,
    TokenAuthority,
    Unauthorized,
    foreign_origin,
    host_allowed,
    load_admin_token,
    presented_token,
)
from .camera_registry import CameraRegistry
from .camera_session import CameraSession
from .cluster import (
    Cluster,
    NodeInfo,
    check_admin_token,
    check_node_id,
    check_redis,
    drain,
)
from .cluster_routing import (
    CLUSTER,
    FORWARDER,
    ask_node,
    cluster_routing,
    forward,
    forwarded,
    forwarded_grant,
    open_forwarder,
)
from .config import ServerConfig
from .frame_images import FrameImages
from .legacy_camera import JPEG_DECODES_AT_ONCE, handle_ws_camera
from .limits import AddressSlots, MessageRate
from .people import (
    HISTORY,
    people,
    person_progress,
    person_recommendation,
    person_sets,
    person_sets_csv,
    validate_person,
)
from .signaling import Signaling
from .whip import EXPOSED_HEADERS, WhipEndpoints

logger = logging.getLogger(__name__)

REGISTRY = web.AppKey("registry", CameraRegistry)
SIGNALING = web.AppKey("signaling", Signaling)
CONFIG = web.AppKey("config", ServerConfig)
POOL = web.AppKey("pool", PoseWorkerPool)
CATALOG = web.AppKey("catalog", Catalog)
AUTHORITY = web.AppKey("authority", TokenAuthority)  # absent with --open
SLOTS = web.AppKey("slots", AddressSlots)
LIVE = web.AppKey("live", LiveConnections)
DECODES = web.AppKey("decodes", asyncio.Semaphore)
RULES = web.AppKey("rules", dict)
# open /ws/monitor connections
MONITOR_SOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("monitor_sockets")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# aiohttp's parser refuses longer request lines itself (400); shorter ones reach
# `bounded_urls`, which answers 414 with a JSON body
MAX_REQUEST_LINE = 65536
RELEASE_REP_WAIT_S = 5.0  # a camera moved to a station finishes the rep under way first


class CameraStaysHere(KomiError):
    status = 409


class Rule(enum.Enum):
    """Who may call an endpoint (design.md, "Access control")."""

    PUBLIC = "public"  # no token: landing page, static files, /healthz
    ANY = "any"  # any valid token
    WATCH = "watch"  # monitor or admin: list and watch every camera
    SEE = "see"  # one camera (the path's): watchers, or that camera's own bound token
    PERSON = "person"  # a person's history: watchers, or that person's own person token
    MINT = "mint"  # admin, or a monitor making camera and person links
    ADMIN = "admin"
    OFFER = "offer"  # the handler decides: the token may be in the body, the role too
    PAGE = "page"  # a page: served whatever the token, with 401/403 when it lacks one
    MONITOR_PAGE = "monitor_page"
    HISTORY_PAGE = "history_page"  # watchers, or a person token (its own person only)


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
GRANT = web.RequestKey("grant", Grant)
PAGE_STATUS = web.RequestKey("page_status", int)  # a page served to a client lacking a token


def request_grant(request: web.Request) -> Grant:
    """The grant the access middleware found for this request."""
    return request.get(GRANT, OPEN_GRANT)


@web.middleware
async def bounded_urls(request: web.Request, handler: Handler) -> web.StreamResponse:
    limit = request.app[CONFIG].max_url_chars
    if limit and len(request.raw_path) > limit:
        logger.warning(
            "%s refused: its URL has %d characters", request.method, len(request.raw_path)
        )
        return web.json_response(
            ErrorBody(f"the URL is longer than {limit} characters").to_wire(), status=414
        )
    return await handler(request)


def _rule(request: web.Request) -> Rule | None:
    """None: no route matched (404/405 follow, with no data)."""
    match = request.match_info
    if match.http_exception is not None:
        return None
    resource = match.route.resource
    if resource is None:
        return None
    method = "GET" if request.method == "HEAD" else request.method
    rule: Rule | None = request.app[RULES].get((method, resource.canonical))
    return rule if rule is not None else Rule.ADMIN  # an endpoint without a rule: admin only


def _authorise(request: web.Request, rule: Rule) -> Grant:
    authority = request.app.get(AUTHORITY)
    if authority is None:
        return OPEN_GRANT
    grant = forwarded_grant(request)  # another node checked the token: its signed grant
    if grant is None:
        grant = authority.check(presented_token(request))
    elif grant.token_id is not None and authority.is_revoked(grant.token_id):
        raise Unauthorized("the access token was revoked")
    if rule in (Rule.WATCH, Rule.MONITOR_PAGE) and not grant.may_watch_all():
        raise Forbidden(f"a {grant.describe()} may not list or watch cameras")
    if rule is Rule.SEE:
        camera_id = validate_camera_id(request.match_info["camera_id"])
        if not grant.may_see(camera_id):
            raise Forbidden(f"a {grant.describe()} may not see {camera_id}")
    if rule is Rule.PERSON:
        person = validate_person(request.match_info["person"])
        if not grant.may_read_history(person):
            raise Forbidden(f"a {grant.describe()} may not read {person}'s history")
    if rule is Rule.HISTORY_PAGE and not (grant.may_watch_all() or grant.role == "person"):
        raise Forbidden(f"a {grant.describe()} may not read history: it needs a history link")
    if rule is Rule.MINT and not (grant.is_admin or grant.role == "monitor"):
        raise Forbidden(f"a {grant.describe()} may not make tokens")
    if rule is Rule.ADMIN and not grant.is_admin:
        raise Forbidden("only the admin token may do this")
    return grant


def allowed_origins(request: web.Request) -> tuple[str, ...]:
    """Other origins whose pages may call this server: `--allow-origin`, and in a cluster
    every node's (a page served by one node reconnects through another)."""
    config: ServerConfig = request.app[CONFIG]
    cluster = request.app.get(CLUSTER)
    if cluster is None:
        return config.allow_origins
    return config.allow_origins + tuple(sorted(cluster.origins()))


CORS_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"  # PATCH, OPTIONS: WHIP (whip.py)
CORS_HEADERS = "Authorization, Content-Type, If-Match, ETag"  # ETag: a WHIP client's PATCH
CORS_MAX_AGE_S = 600


@web.middleware
async def cross_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
    """CORS for the allowed other origins only. A camera page served by a cluster node that
    died offers through a live node: a cross-origin POST with a JSON body and a token, so the
    browser asks first (preflight) and reads the answer only with these headers."""
    origin = request.headers.get("Origin")
    allowed = (
        origin is not None
        and foreign_origin(request, ()) is not None  # not our own origin
        and foreign_origin(request, allowed_origins(request)) is None
    )
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        if not allowed:
            logger.info("preflight from the page origin %r refused", (origin or "")[:100])
            return web.json_response(
                ErrorBody(f"requests from the page origin {origin!r} are refused").to_wire(),
                status=403,
            )
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Origin": origin or "",
                "Access-Control-Allow-Methods": CORS_METHODS,
                "Access-Control-Allow-Headers": CORS_HEADERS,
                "Access-Control-Max-Age": str(CORS_MAX_AGE_S),
                "Vary": "Origin",
            },
        )
    response = await handler(request)
    if not response.prepared and allowed_origins(request):
        vary = response.headers.get("Vary")
        if not vary:
            response.headers["Vary"] = "Origin"  # the answer depends on who asks
        elif "origin" not in vary.lower():
            response.headers["Vary"] = f"{vary}, Origin"
        if allowed:
            response.headers["Access-Control-Allow-Origin"] = origin or ""
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    return response


@web.middleware
async def access_control(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Origin first (a foreign page never gets in, token or not), then the token's rights."""
    rule = _rule(request)
    if rule is None or rule is Rule.PUBLIC:
        return await handler(request)
    config = request.app[CONFIG]
    origin = foreign_origin(request, allowed_origins(request))
    if origin is not None:
        raise Forbidden(
            f"requests from the page origin {origin!r} are refused (--allow-origin adds one)"
        )
    if not host_allowed(request.host, config.allow_origins):
        raise Forbidden(
            f"{request.host[:100]!r} is not a name of this server: use its address, "
            "localhost or its host name (--allow-origin https://NAME adds a name)"
        )
    if rule is Rule.OFFER:
        return await handler(request)
    if rule in (Rule.PAGE, Rule.MONITOR_PAGE, Rule.HISTORY_PAGE):
        try:
            request[GRANT] = _authorise(request, rule)
        except (Unauthorized, Forbidden) as exc:
            request[PAGE_STATUS] = exc.status  # the page itself says what is missing
        return await handler(request)
    request[GRANT] = _authorise(request, rule)
    return await handler(request)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error a client can cause answers JSON `{"error": ...}` with its 4xx status."""
    try:
        return await handler(request)
    except KomiError as exc:
        logger.warning("%s %s -> %d: %s", request.method, request.path, exc.status, exc)
        return web.json_response(ErrorBody(str(exc)).to_wire(), status=exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        logger.info("%s %s -> %d", request.method, request.path, exc.status)
        return web.json_response(ErrorBody(exc.reason).to_wire(), status=exc.status)
    except asyncio.CancelledError:
        raise
    except ConnectionResetError:
        # the client went away (e.g. mid-body): its doing, one line, nothing to answer
        logger.info("%s %s: the client closed the connection", request.method, request.path)
        raise
    except OSError as exc:
        if request.match_info.route.resource is not None and isinstance(
            request.match_info.route.resource, web.StaticResource
        ):
            return web.json_response(ErrorBody("no such file").to_wire(), status=404)
        logger.exception("%s %s failed: %s", request.method, request.path, exc)
        return web.json_response(ErrorBody("internal server error").to_wire(), status=500)
    except Exception:
        logger.exception("%s %s failed", request.method, request.path)
        return web.json_response(ErrorBody("internal server error").to_wire(), status=500)


def _wants_json(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


async def index(request: web.Request) -> web.StreamResponse:
    """No data here: the landing page is public."""
    if _wants_json(request):
        return web.json_response(
            {
                "status": "ok",
                "service": "komi-rtc",
                "version": __version__,
                "access": "open" if request.app[CONFIG].open_access else "token",
            }
        )
    return web.FileResponse(request.app[CONFIG].web_root / "index.html")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _page(name: str) -> Handler:
    async def page(request: web.Request) -> web.StreamResponse:
        status = request.get(PAGE_STATUS, 200)
        response = web.FileResponse(request.app[CONFIG].web_root / name, status=status)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"  # the token may be in the URL
        return response

    return page


async def mint_token(request: web.Request) -> web.Response:
    """`POST /tokens` {"role", "camera_id"?, "person"?, "station"?, "ttl_s"?} ->
    {"token", "expires_at", "token_id"}. The admin mints any role; a monitor mints camera
    and person links, which expire with it and are revoked with it."""
    wanted = parse_mint_request(await read_body(request))
    grant = request_grant(request)
    if not grant.may_mint(wanted.role):
        raise Forbidden(f"a {grant.describe()} may not make {wanted.role} tokens")
    authority = request.app[AUTHORITY]
    minted = authority.mint(
        wanted.role,
        wanted.camera_id,
        DEFAULT_TTL_S if wanted.ttl_s is None else wanted.ttl_s,
        person=wanted.person,
        station=wanted.station,
        parent=None if grant.is_admin else grant,
    )
    _log_minted(minted["token_id"], wanted.role, grant, wanted.camera_id, wanted.person)
    return web.json_response(minted)


def _log_minted(
    token_id: str,
    role: str,
    by: Grant,
    camera_id: str | None = None,
    person: str | None = None,
    station: str | None = None,
) -> None:
    """One line per token made: its id (never the token), what it names, and who made it."""
    named = [f"{k} {v}" for k, v in (("camera", camera_id), ("person", person)) if v]
    if station:
        named.append(f"station {station}")
    maker = "the admin token" if by.token_id is None else f"{by.role} token {by.token_id}"
    logger.info(
        "minted a %s token %s%s (by %s)",
        role,
        token_id,
        f" for {', '.join(named)}" if named else "",
        maker,
    )


async def list_tokens(request: web.Request) -> web.Response:
    """`GET /tokens` (admin): every token minted here that has not expired, never the token
    itself; `parent` names the token that made it (a monitor's pairing links)."""
    return web.json_response(TokenListing(request.app[AUTHORITY].tokens()).to_wire())


async def whoami(request: web.Request) -> web.Response:
    """`GET /whoami`: what the presented token may do (the pages say it)."""
    grant = request_grant(request)
    return web.json_response(
        WhoAmI(grant.role, grant.camera_id, grant.person, grant.station, grant.expires_at).to_wire()
    )


async def revoke_token(request: web.Request) -> web.Response:
    """`DELETE /tokens/{token_id}`: refused from now on, on every new request and connection,
    and so are the tokens it minted; what they opened is closed."""
    token_id = request.match_info["token_id"]
    if not (0 < len(token_id) <= 64 and token_id.isalnum()):
        raise InvalidRequest("token_id is the token_id POST /tokens answered")
    revoked = request.app[AUTHORITY].revoke(token_id)
    closed = await request.app[LIVE].close(token_id)
    cluster = request.app.get(CLUSTER)
    if cluster is not None:  # every node refuses it (and its children) and closes theirs
        try:
            await cluster.revoke(token_id, time.time() + MAX_TTL_S)
        except Exception as exc:  # Redis down: refused here; other nodes only once it is back
            logger.error("token %s revoked here, not yet cluster-wide (Redis: %s)", token_id, exc)
            raise ClusterBusy(
                "revoked on this node; the other nodes could not be told (Redis unreachable): "
                "try again"
            ) from None
    children = revoked[1:]
    logger.info(
        "revoked token %s%s; closed %d connection(s)",
        token_id,
        f" and the {len(children)} it minted" if children else "",
        closed,
    )
    return web.json_response(
        {"revoked": token_id, "closed_connections": closed, "revoked_children": children}
    )


BODY_TIMEOUT_S = 10.0  # a body that trickles in slower than this is refused (408)


async def read_body(request: web.Request) -> bytes:
    """The request body, or 408 when it does not arrive in time (a slow client never holds
    a handler)."""
    try:
        return await asyncio.wait_for(request.read(), BODY_TIMEOUT_S)
    except asyncio.TimeoutError:
        raise BodyTimeout(f"the request body did not arrive within {BODY_TIMEOUT_S:g} s") from None


class BodyTimeout(KomiError):
    status = 408


class ClusterBusy(KomiError):
    status = 503


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = load_json(await read_body(request))
    except ValueError as exc:
        raise InvalidRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    return body


async def cameras(request: web.Request) -> web.Response:
    """Every camera of the cluster (of this server without --redis)."""
    return web.json_response({"cameras": request.app[REGISTRY].listing()})


async def cluster_nodes(request: web.Request) -> web.Response:
    """`GET /cluster` (**extension**): the nodes, their capacity left and their cameras."""
    cluster = request.app.get(CLUSTER)
    if cluster is None:
        return web.json_response({"node": None, "nodes": []})
    return web.json_response({"node": cluster.node_id, "nodes": cluster.nodes()})


async def client_config(request: web.Request) -> web.Response:
    """What the pages need: ICE servers (STUN/TURN) and the data channel label."""
    config = request.app[CONFIG]
    return web.json_response(
        {"ice_servers": [{"urls": url} for url in config.ice_servers], "data_channel": "komi"}
    )


def _session(request: web.Request) -> CameraSession:
    """The camera named in the path; 400 for a malformed id, 404 for an unknown one."""
    camera_id = validate_camera_id(request.match_info["camera_id"])
    return request.app[REGISTRY].get(camera_id)


async def stats(request: web.Request) -> web.Response:
    """Per-camera counters: frames received, analysed and skipped by design (newest wins)."""
    cameras = {}
    for session in request.app[REGISTRY].sessions():
        s = session.stats
        session.rate.refresh(time.monotonic())
        cameras[session.camera_id] = {
            "kind": session.kind,
            "exercise": session.exercise,
            "frames_received": s.frames_received,
            "frames_analysed": s.frames_analysed,
            "frames_skipped": s.frames_skipped,
            "analysis_failures": s.analysis_failures,
            "received_fps": round(session.rate.received_fps, 1),
            "analysed_fps": round(session.rate.analysed_fps, 1),
            "overloaded": session.rate.overloaded,
            "monitors": session.monitor_count,
        }
    return web.json_response({"cameras": cameras, "workers": request.app[POOL].size})


async def exercises(request: web.Request) -> web.Response:
    catalog = request.app[CATALOG]
    return web.json_response({"exercises": catalog.listing(), "profiles": list(PROFILES)})


async def set_camera_exercise(request: web.Request) -> web.Response:
    """`POST /cameras/{camera_id}/exercise` {"exercise": "squat", "profile": "standard"}."""
    session = _session(request)
    body = await _json_object(request)
    return web.json_response(session.set_exercise(body, "REST").to_wire())


async def set_camera_person(request: web.Request) -> web.Response:
    """`POST /cameras/{camera_id}/person` {"person": "anna"} (null unties)."""
    session = _session(request)
    body = await _json_object(request)
    if "person" not in body:
        raise InvalidRequest("'person' is required (an id, or null to untie)")
    person = None if body["person"] is None else validate_person(body["person"])
    grant = request_grant(request)
    if not grant.may_tie(person):
        raise Forbidden(
            f"a {grant.describe()} may not tie its camera to {person}: ask for a camera "
            "link made for that person"
        )
    return web.json_response(session.set_person(person, "REST").to_wire())


async def stations(request: web.Request) -> web.Response:
    local = [s.summary() for s in request.app[SIGNALING].stations.all()]
    cluster = request.app.get(CLUSTER)
    return web.json_response({"stations": cluster.all_stations(local) if cluster else local})


def _station_id(request: web.Request) -> str:
    from .stations import validate_station_id

    return validate_station_id(request.match_info["station_id"])


async def set_station(request: web.Request) -> web.Response:
    """`POST /stations/{station_id}` {"cameras": [...]}: who belongs to the station; cameras
    not streaming yet join when they come. In a cluster, a new station starts on the node
    streaming most of its cameras, and the others are moved there (`moving`)."""
    body = await _json_object(request)
    cameras = body.get("cameras")
    if not isinstance(cameras, list):
        raise InvalidRequest("'cameras' must be a list of camera ids")
    station_id = _station_id(request)
    signaling = request.app[SIGNALING]
    cluster = request.app.get(CLUSTER)
    if cluster is not None and not forwarded(request):
        known = {s.id for s in signaling.stations.all()}
        if station_id not in known:  # (a station on another node was passed on there)
            here = set(request.app[REGISTRY].ids())
            counts: dict[str, int] = {}  # node -> how many of the cameras it streams
            for camera_id in (c for c in cameras if isinstance(c, str)):
                host = cluster.node_of_camera(camera_id)
                node = host.id if host else cluster.node_id if camera_id in here else None
                if node is not None:
                    counts[node] = counts.get(node, 0) + 1
            # the most cameras, this node on a tie, else the first listed camera's node
            best = max(counts, key=lambda n: (counts[n], n == cluster.node_id), default=None)
            if best is not None and best != cluster.node_id and best in cluster.view:
                return await forward(request, cluster.view[best], await read_body(request))
    live = {s.camera_id: s for s in request.app[REGISTRY].sessions()}
    station = signaling.stations.set_cameras(station_id, cameras, live)
    summary = station.summary()
    if cluster is not None:
        summary["moving"] = await _pull_cameras(request.app, cluster, station_id, station.wanted)
    return web.json_response(summary)


async def _pull_cameras(
    app: web.Application, cluster: Cluster, station_id: str, camera_ids: list[str]
) -> list[str]:
    """A station's cameras streaming on other nodes: each is ended there (between two
    reps) and, reconnecting, placed here. Returns the ids on their way."""
    elsewhere = {c: n for c in camera_ids if (n := cluster.node_of_camera(c)) is not None}
    if not elsewhere:
        return []
    await cluster.want_cameras(list(elsewhere))

    async def release(camera_id: str, node: NodeInfo) -> bool:
        path = f"/cluster/cameras/{camera_id}/release"
        status, answer = await ask_node(app, node, "POST", path, {"station": station_id})
        if status != 200:
            logger.warning(
                "[%s] station %s: node %s did not release it: %s %s",
                camera_id,
                station_id,
                node.id,
                status,
                answer,
            )
        return status == 200

    asked = await asyncio.gather(*(release(c, n) for c, n in elsewhere.items()))
    return [c for c, moving in zip(elsewhere, asked, strict=True) if moving]


async def release_camera(request: web.Request) -> web.Response:
    """`POST /cluster/cameras/{camera}/release` {"station"}: between nodes only. A station on
    the asking node lists this camera: end it here between two reps, so it reconnects and
    is placed there (its entry node sees the station's list)."""
    if request.app.get(CLUSTER) is None or not forwarded(request):
        raise Forbidden("this endpoint is for the nodes of a cluster")
    camera_id = validate_camera_id(request.match_info["camera"])
    body = await _json_object(request)
    from .stations import validate_station_id

    station_id = validate_station_id(body.get("station"))
    session = request.app[REGISTRY].get(camera_id)
    if session.kind == "websocket":
        raise CameraStaysHere(f"{camera_id} streams over /ws/camera, which stays on its node")
    try:
        await asyncio.wait_for(session.between_reps.wait(), RELEASE_REP_WAIT_S)
    except asyncio.TimeoutError:
        logger.warning("[%s] still mid-rep: moved to station %s anyway", camera_id, station_id)
    logger.info("[%s] moving to station %s on another node", camera_id, station_id)
    await session.close(f"moving to station {station_id}: reconnect")
    return web.json_response({"camera_id": camera_id, "released": True})


async def station_join(request: web.Request) -> web.Response:
    """`GET /stations/{id}/join` (**extension**): a camera link that joins this station,
    with a fresh camera pairing token, and its QR code (SVG) for phones to scan."""
    from urllib.parse import urlencode

    from .tls import svg_qr

    station_id = _station_id(request)
    config = request.app[CONFIG]
    query = {"station": station_id}
    expires_at = None
    authority = request.app.get(AUTHORITY)
    token_id = None
    if authority is not None:  # a token for this station only, revoked with its maker's
        grant = request_grant(request)
        minted = authority.mint(
            "camera",
            None,
            config.link_ttl_s,
            station=station_id,
            parent=None if grant.is_admin else grant,
        )
        query["token"], expires_at = minted["token"], minted["expires_at"]
        token_id = minted["token_id"]
        _log_minted(token_id, "camera", grant, station=station_id)
    url = f"{request.scheme}://{request.host}/camera?{urlencode(query)}"
    qr = await asyncio.get_running_loop().run_in_executor(None, svg_qr, url)
    return web.json_response(
        {
            "station_id": station_id,
            "url": url,
            "qr_svg": qr,
            "expires_at": expires_at,
            "token_id": token_id,
        }
    )


async def set_station_exercise(request: web.Request) -> web.Response:
    station = request.app[SIGNALING].stations.get(_station_id(request))
    body = await _json_object(request)
    if "exercise" not in body:
        raise InvalidRequest("'exercise' is required (an id, or null to stop)")
    return web.json_response(station.set_exercise(body, "REST"))


async def calibrate_station(request: web.Request) -> web.Response:
    """`POST /stations/{id}/calibrate` {"method": "self"|"board", ...}: waits until done."""
    from .station_calibration import calibrate

    station = request.app[SIGNALING].stations.get(_station_id(request))
    return web.json_response(await calibrate(station, await _json_object(request)))


async def set_station_calibration(request: web.Request) -> web.Response:
    from .station_calibration import install

    station = request.app[SIGNALING].stations.get(_station_id(request))
    return web.json_response(install(station, await _json_object(request)))


async def board_image(request: web.Request) -> web.Response:
    from .station_calibration import board_image as serve

    return await serve(request)


async def offer(request: web.Request) -> web.Response:
    return await request.app[SIGNALING].handle_offer(request)


_MONITOR_WS_MESSAGE_BYTES = 64 * 1024  # /ws/monitor only sends; anything bigger is hostile


async def ws_monitor(request: web.Request) -> web.WebSocketResponse:
    release = request.app[SLOTS].acquire(request.remote)
    try:
        return await _serve_ws_monitor(request)
    finally:
        release()


async def _serve_ws_monitor(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=_MONITOR_WS_MESSAGE_BYTES)
    await ws.prepare(request)
    sockets = request.app[MONITOR_SOCKETS]
    sockets.add(ws)
    try:
        return await _pump_ws_monitor(request, ws)
    finally:
        sockets.discard(ws)


async def _pump_ws_monitor(
    request: web.Request, ws: web.WebSocketResponse
) -> web.WebSocketResponse:
    registry = request.app[REGISTRY]
    # ?scope=node: another node's status relay (cluster.py), this node's cameras only
    queue = registry.watch(whole_cluster=request.query.get("scope") != "node")
    grant = request_grant(request)
    owner = object()
    request.app[LIVE].add(grant, owner, ws.close)
    rate = MessageRate(request.app[CONFIG].max_messages_per_s, f"/ws/monitor {request.remote}")

    async def pump() -> None:
        while True:
            await ws.send_str(await queue.get())

    sender = asyncio.ensure_future(pump())
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT and (rate.allow() or rate.refused == 1):
                error = "/ws/monitor only sends" if rate.refused == 0 else rate.error
                await ws.send_str(encode(ErrorMessage(error)))
    finally:
        request.app[LIVE].remove(grant, owner)
        registry.unwatch(queue)
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
    return ws


async def ws_camera(request: web.Request) -> web.WebSocketResponse:
    app = request.app
    release = app[SIGNALING].camera_slots.acquire(request.remote)
    try:
        return await _serve_ws_camera(request)
    finally:
        release()


async def _serve_ws_camera(request: web.Request) -> web.WebSocketResponse:
    app = request.app
    return await handle_ws_camera(
        request,
        request_grant(request),
        app[REGISTRY],
        app[SIGNALING].new_legacy_session,
        app[CONFIG],
        app[SLOTS],
        app[DECODES],
    )


async def _cluster_state(redis_url: str, node_id: str) -> tuple[list[str], list[str]]:
    """The cameras other nodes host now (their claims in Redis), and the nodes beating."""
    from .cluster import NODES_KEY, PREFIX, node_key
    from .redis_connect import async_client

    client = async_client(redis_url, decode_responses=True, socket_connect_timeout=5)
    try:
        keys = [k async for k in client.scan_iter(match=f"{PREFIX}camera:*", count=500)]
        owners = await client.mget(keys) if keys else []
        nodes = sorted(await client.smembers(NODES_KEY))
        records = await client.mget([node_key(n) for n in nodes]) if nodes else []
    finally:
        await client.aclose()
    cameras = [
        k.removeprefix(f"{PREFIX}camera:")
        for k, owner in zip(keys, owners, strict=True)
        if owner not in (None, node_id)
    ]
    return cameras, [n for n, record in zip(nodes, records, strict=True) if record is not None]


async def _join_cluster(
    app: web.Application, config: ServerConfig, admin: str | None, node_id: str
) -> Cluster:
    """Join, take the cluster's revocations, and drain on SIGTERM."""
    signaling = app[SIGNALING]
    registry = app[REGISTRY]
    public_url = config.public_url or _default_public_url(config)
    cluster = Cluster(
        config.redis_url or "",
        public_url,
        registry,
        workers=app[POOL].size,
        admin_token=admin,
        stations=lambda: [s.summary() for s in signaling.stations.all()],
        node_id=node_id,
    )
    app[FORWARDER] = await open_forwarder()
    await cluster.start()
    app[CLUSTER] = cluster
    signaling.cluster = cluster
    authority = app.get(AUTHORITY)
    live = app[LIVE]
    if authority is not None:
        for token_id, expires_at in (await cluster.revoked_tokens()).items():
            if expires_at > time.time() and not authority.is_revoked(token_id):
                authority.revoke(token_id, expires_at)

    async def revoked(token_id: str, expires_at: float) -> None:
        if authority is not None:
            authority.revoke(token_id, expires_at)
        closed = await live.close(token_id)
        logger.info("revoked token %s (on another node); closed %d here", token_id, closed)

    async def node_died(node: str, cameras: list[str], at: float) -> None:
        from sqlalchemy.exc import SQLAlchemyError

        history = app[HISTORY]
        try:
            ended = await history.read(history.store.end_sets_of_node, node, cameras, at)
        except SQLAlchemyError as exc:  # e.g. a starting node removed an empty set meanwhile
            logger.warning(
                "history: node %s's sets not ended (%s); the next start ends them", node, exc
            )
            return
        if ended:
            logger.info("history: ended %d set(s) of node %s, which died", ended, node)

    cluster.on_revoked = revoked
    cluster.on_node_died = node_died
    app[UNDO_SIGTERM] = _drain_on_sigterm(cluster, config.drain_timeout_s)
    return cluster


def _default_public_url(config: ServerConfig) -> str:
    from .tls import lan_addresses

    scheme = "https" if config.https else "http"
    host = config.host
    if host in ("0.0.0.0", "::", ""):
        lan = lan_addresses()
        host = lan[0] if lan else "127.0.0.1"
    return f"{scheme}://{host}:{config.port}"


UNDO_SIGTERM: web.AppKey[Callable[[], Awaitable[None]]] = web.AppKey("undo_sigterm")


def _drain_on_sigterm(cluster: Cluster, timeout_s: float) -> Callable[[], Awaitable[None]]:
    """SIGTERM moves this node's cameras off before the server stops (Ctrl-C stops at
    once, as without a cluster)."""
    import signal

    from aiohttp.web_runner import GracefulExit

    loop = asyncio.get_running_loop()
    started: list[asyncio.Task[None]] = []

    def stop_now() -> None:
        raise GracefulExit()

    async def drain_then_stop() -> None:
        try:
            moved = await asyncio.wait_for(drain(cluster, timeout_s), timeout_s + 5)
            logger.info("cluster: %d camera(s) moved off; stopping", moved)
        except Exception as exc:
            logger.warning("cluster: draining ended early (%s); stopping", exc)
        loop.call_soon(stop_now)

    def on_sigterm() -> None:
        if started:
            return
        started.append(asyncio.ensure_future(drain_then_stop()))

    installed = False
    try:
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
        installed = True
    except (NotImplementedError, RuntimeError, ValueError):
        logger.info("cluster: SIGTERM cannot be handled here; it stops without draining")

    async def undo() -> None:
        """At cleanup: the handler goes, and a drain still running is ended."""
        if installed:
            loop.remove_signal_handler(signal.SIGTERM)
        for task in started:
            task.cancel()
        await asyncio.gather(*started, return_exceptions=True)

    return undo


DEMO_CAMERA = "demo_camera"


def demo_camera_id(node_id: str | None) -> str:
    """`demo_camera`, or in a cluster `demo_<node id>`: every node's demo is its own camera
    (one shared id would be live on one node and refused on the others)."""
    if node_id is None:
        return DEMO_CAMERA
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", f"demo_{node_id}")[:64]


def _start_demo_camera(
    config: ServerConfig, token: str | None, camera_id: str = DEMO_CAMERA
) -> tuple[asyncio.Task[None], Any]:
    """A camera peer inside the server streaming a rendered person doing squats, with the
    exercise set, so a first look shows reps counted."""
    from ..camera.peer import CameraPeer
    from ..media.video_sources import demo_source

    scheme = "https" if config.https else "http"
    source = demo_source("demo", 640, 480, config.demo_fps)
    peer = CameraPeer(
        f"{scheme}://127.0.0.1:{config.port}",
        camera_id,
        source,
        fps=config.demo_fps,
        verify_tls=False,  # our own certificate, on loopback
        exercise=source.exercise,
        token=token,
    )
    task = asyncio.ensure_future(peer.run())
    task.set_name(camera_id)
    logger.info(
        "[%s] streaming %s at %g fps, %s analysed",
        camera_id,
        source.description,
        config.demo_fps,
        source.exercise,
    )
    return task, peer


def _quiet_peer_races(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """aiortc's own tasks may fail when a peer is closed while still connecting (its ICE
    transport is closed under them): the client's doing, one line, not a traceback."""
    from aiortc.exceptions import InvalidStateError

    exc = context.get("exception")
    if isinstance(exc, InvalidStateError):
        logger.warning("a peer connection closed while connecting: %s", exc)
        return
    if isinstance(exc, asyncio.InvalidStateError) and "RTCPeerConnection.close" in str(
        context.get("future")
    ):
        logger.warning("a peer connection was closed twice at once")  # aiortc's own race
        return
    loop.default_exception_handler(context)


def create_app(config: ServerConfig, pool: PoseWorkerPool | None = None) -> web.Application:
    """Build the server. A given `pool` is used, not owned (tests share one)."""
    app = web.Application(
        middlewares=[cross_origin, json_errors, bounded_urls, access_control, cluster_routing],
        client_max_size=config.max_body_bytes or 1024**3,
        handler_args={"max_line_size": MAX_REQUEST_LINE, "max_field_size": MAX_REQUEST_LINE},
    )
    app[CONFIG] = config
    app[CATALOG] = catalog = Catalog(config.exercise_dir)  # CatalogError for a bad file
    registry = CameraRegistry(config.max_cameras)
    app[REGISTRY] = registry
    if config.redis_url:
        check_redis(config.redis_url)
        if config.node_id:
            public_url = config.public_url or _default_public_url(config)
            check_node_id(config.redis_url, config.node_id, public_url)
    authority: TokenAuthority | None = None
    admin: str | None = None
    if config.redis_url:  # every node is given the cluster's token: its keys derive from it
        if config.admin_token or config.admin_token_file:
            admin = load_admin_token(config.admin_token, config.admin_token_file, config.state_dir)
        check_admin_token(config.redis_url, admin)  # none, or not the cluster's: refused
    if not config.open_access:
        admin = admin or load_admin_token(
            config.admin_token, config.admin_token_file, config.state_dir
        )
        authority = TokenAuthority(
            admin, config.state_dir / REVOKED_FILE, config.state_dir / MINTED_FILE
        )
        app[AUTHORITY] = authority
    app[SLOTS] = slots = AddressSlots(config.max_connections_per_address)
    app[MONITOR_SOCKETS] = set()
    app[LIVE] = live = LiveConnections()

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        previous_handler = loop.get_exception_handler()
        loop.set_exception_handler(_quiet_peer_races)
        owned = pool is None
        workers = pool or PoseWorkerPool(config.workers, config.model_path)
        if owned:
            await asyncio.get_running_loop().run_in_executor(None, workers.start)
        app[POOL] = workers
        app[SIGNALING] = Signaling(config, registry, workers, catalog, authority, slots, live)
        app[DECODES] = asyncio.Semaphore(JPEG_DECODES_AT_ONCE)
        node_id = config.node_id or f"node_{secrets.token_hex(3)}"
        store = HistoryStore(
            config.db_url or default_url(config.state_dir),
            node_id if config.redis_url else None,
        )
        # in a cluster, the sets of cameras live on other nodes are still running
        spare, live_nodes = frozenset[str](), None
        if config.redis_url:  # (claims this node left before a restart are not live)
            cameras, nodes = await _cluster_state(config.redis_url, node_id)
            spare, live_nodes = frozenset(cameras), frozenset(nodes) - {node_id}
        closed = await loop.run_in_executor(None, store.prepare, time.time(), spare, live_nodes)
        if closed:
            logger.info("history: ended %d set(s) left open by the last run", closed)
        app[HISTORY] = history = History(store)
        app[SIGNALING].history = history
        cluster = None
        if config.redis_url:
            cluster = await _join_cluster(app, config, admin, node_id)
        demo = None
        if config.demo_camera:
            camera_id = demo_camera_id(node_id if cluster is not None else None)
            token = None
            if authority is not None:
                token = authority.mint("camera", camera_id, 365 * 24 * 3600)["token"]
            demo = _start_demo_camera(config, token, camera_id)
        yield
        if demo is not None:
            demo_task, demo_peer = demo
            demo_task.cancel()
            await asyncio.gather(demo_task, return_exceptions=True)
            await demo_peer.close()
        await app[SIGNALING].close()
        await asyncio.gather(*(s.close("server shutting down") for s in registry.sessions()))
        if cluster is not None:
            await app[UNDO_SIGTERM]()
            await cluster.stop()
            await app[FORWARDER].close()
        await history.close()
        loop.set_exception_handler(previous_handler)
        if owned:
            await asyncio.get_running_loop().run_in_executor(None, workers.stop)

    app.cleanup_ctx.append(lifecycle)

    async def close_websockets(app: web.Application) -> None:
        """First thing at shutdown: leave the cluster (no node routes here any more), end
        the cameras, and close /ws/monitor (aiohttp would otherwise wait for them)."""
        cluster = app.get(CLUSTER)
        if cluster is not None:
            await cluster.stop()
        await asyncio.gather(*(s.close("server shutting down") for s in registry.sessions()))
        sockets: set[web.WebSocketResponse] = app[MONITOR_SOCKETS]
        await asyncio.gather(
            *(ws.close(code=WSCloseCode.GOING_AWAY) for ws in tuple(sockets)),
            return_exceptions=True,
        )

    app.on_shutdown.append(close_websockets)
    rules: dict[tuple[str, str], Rule] = {}
    app[RULES] = rules

    def route(method: str, path: str, handler: Handler, rule: Rule) -> None:
        if method == "GET":
            app.router.add_get(path, handler)  # and HEAD
        else:
            app.router.add_route(method, path, handler)
        rules[(method, path)] = rule

    images = FrameImages(app[REGISTRY])
    route("GET", "/", index, Rule.PUBLIC)
    route("GET", "/healthz", healthz, Rule.PUBLIC)
    route("GET", "/favicon.ico", _page("favicon.svg"), Rule.PUBLIC)
    route("GET", "/camera", _page("camera.html"), Rule.PAGE)
    route("GET", "/monitor", _page("monitor.html"), Rule.MONITOR_PAGE)
    route("GET", "/config.json", client_config, Rule.ANY)
    route("GET", "/exercises", exercises, Rule.ANY)
    route("GET", "/cameras", cameras, Rule.WATCH)
    route("GET", "/stats", stats, Rule.WATCH)
    route("GET", "/cluster", cluster_nodes, Rule.WATCH)
    route("POST", "/cameras/{camera_id}/exercise", set_camera_exercise, Rule.SEE)
    route("POST", "/cameras/{camera_id}/person", set_camera_person, Rule.SEE)
    route("GET", "/people", people, Rule.WATCH)
    route("GET", "/people/{person}/sets", person_sets, Rule.PERSON)
    route("GET", "/people/{person}/sets.csv", person_sets_csv, Rule.PERSON)
    route("GET", "/people/{person}/progress", person_progress, Rule.PERSON)

    async def recommendation(request: web.Request) -> web.Response:
        return await person_recommendation(request, catalog)

    route("GET", "/people/{person}/recommendation", recommendation, Rule.PERSON)
    route("GET", "/history", _page("history.html"), Rule.HISTORY_PAGE)
    route("GET", "/stations", stations, Rule.WATCH)
    route("POST", "/stations/{station_id}", set_station, Rule.WATCH)
    route("POST", "/stations/{station_id}/exercise", set_station_exercise, Rule.WATCH)
    route("GET", "/stations/{station_id}/join", station_join, Rule.WATCH)
    route("POST", "/stations/{station_id}/calibrate", calibrate_station, Rule.WATCH)
    route("POST", "/stations/{station_id}/calibration", set_station_calibration, Rule.WATCH)
    route("GET", "/calibration/board.png", board_image, Rule.ANY)
    route("GET", "/latest_image/{camera_id}", images.latest_image, Rule.SEE)
    route("GET", "/get-image/{camera_id}", images.get_image, Rule.SEE)
    route("POST", "/offer", offer, Rule.OFFER)
    whip = WhipEndpoints(config, lambda: app[SIGNALING], read_body)  # WHIP in, WHEP out
    route("POST", "/whip/{camera_id}", whip.ingest, Rule.ANY)  # the handler: stream as it?
    route("POST", "/whep/{camera_id}", whip.egress, Rule.SEE)
    for kind in ("whip", "whep"):  # a session: its client's token (the handler checks)
        route("OPTIONS", f"/{kind}/{{camera_id}}", whip.options, Rule.ANY)
        route("PATCH", f"/{kind}/{{camera_id}}/{{resource_id}}", whip.update, Rule.ANY)
        route("DELETE", f"/{kind}/{{camera_id}}/{{resource_id}}", whip.end, Rule.ANY)
    route("POST", "/cluster/cameras/{camera}/release", release_camera, Rule.ADMIN)
    route("GET", "/ws/monitor", ws_monitor, Rule.WATCH)
    route("GET", "/ws/camera", ws_camera, Rule.ANY)  # which id: settled in the handler
    route("POST", "/tokens", mint_token, Rule.MINT)
    route("GET", "/tokens", list_tokens, Rule.ADMIN)
    route("GET", "/whoami", whoami, Rule.ANY)
    route("DELETE", "/tokens/{token_id}", revoke_token, Rule.ADMIN)
    app.router.add_static("/static/", config.web_root, show_index=False)
    rules[("GET", "/static")] = Rule.PUBLIC
    return app

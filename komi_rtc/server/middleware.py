"""What every request passes through, in order: CORS for allowed origins, JSON errors, URL
length, access control (origin, host name, token and the route's `Rule`), and the cluster's
routing (cluster/routing.py)."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..protocol import KomiError, validate_camera_id, validate_person_id
from ..protocol.messages import ErrorBody
from .access import (
    OPEN_GRANT,
    Forbidden,
    Grant,
    Unauthorized,
    foreign_origin,
    host_allowed,
    presented_token,
)
from .app_keys import (
    AUTHORITY,
    CLUSTER,
    CONFIG,
    GRANT,
    PAGE_STATUS,
    RULES,
)
from .cluster import forwarded_grant
from .config import ServerConfig

logger = logging.getLogger(__name__)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Rule(enum.Enum):
    """Who may call an endpoint (docs/protocol.md, "Access control")."""

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
        person = validate_person_id(request.match_info["person"])
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


CORS_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"  # PATCH, OPTIONS: endpoints/whip.py
CORS_HEADERS = "Authorization, Content-Type, If-Match, ETag"  # ETag: a WHIP client's PATCH
CORS_MAX_AGE_S = 600
# what a page on another origin may read of our answers (WHIP/WHEP's headers)
EXPOSED_HEADERS = "Location, ETag, Link, Accept-Patch, Accept-Post, Access-Control-Allow-Methods"


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
        # a page asking whether its link may do something gets 401/403 on purpose: not a
        # warning; everything else a client got wrong is
        level = logging.INFO if exc.status in (401, 403) else logging.WARNING
        logger.log(level, "%s %s -> %d: %s", request.method, request.path, exc.status, exc)
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

"""`/tokens` and `/whoami`: minting, listing and revoking tokens (docs/protocol.md, "Access
control")."""

from __future__ import annotations

import logging
import time

from aiohttp import web

from ...protocol import InvalidRequest, KomiError
from ...protocol.tokens import TokenListing, TokenRevoked, WhoAmI, parse_mint_request
from ..access import (
    DEFAULT_TTL_S,
    MAX_TTL_S,
    Forbidden,
    Grant,
)
from ..app_keys import (
    AUTHORITY,
    CLUSTER,
    LIVE,
    request_grant,
)
from ..http_bodies import read_body

logger = logging.getLogger(__name__)


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
    log_minted(minted["token_id"], wanted.role, grant, wanted.camera_id, wanted.person)
    return web.json_response(minted)


def log_minted(
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
    return web.json_response(TokenRevoked(token_id, closed, children).to_wire())


class ClusterBusy(KomiError):
    status = 503

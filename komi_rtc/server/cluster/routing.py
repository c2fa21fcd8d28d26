"""Any node answers for the whole cluster: a request about a camera or a station hosted by
another node is passed to that node, and its answer returned. The node asked checks the
client's token; what it found (the `Grant`) goes on signed, never the token itself."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from ...protocol import InvalidRequest, KomiError, load_json, validate_camera_id
from ...protocol.cluster_events import NodeInfo
from ..access import OPEN_GRANT, Forbidden, Grant, Unauthorized
from ..app_keys import AUTHORITY, CLUSTER, FORWARDER, GRANT
from ..http_bodies import read_body
from ..stations import validate_station_id
from .signing import BODY_HASH, CLIENT, FORWARDED, GRANT_HEADER

logger = logging.getLogger(__name__)

# set by access control: the node that can judge this request (a camera token's camera there)
FORWARD_TO = "komi_forward_to"
FORWARD_TIMEOUT_S = 30.0  # an offer's answer waits for the far node's ICE gathering
_PASSED_BACK = ("Location", "ETag", "Link", "Accept-Patch")  # WHIP/WHEP answers' headers
_VERIFIED = web.RequestKey("komi_forwarded_verified", bool)  # its signature checked out
NODE_GRANT = Grant("admin")  # another request of a node's own (asking a camera to move)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class NodeUnreachable(KomiError):
    status = 503


def forwarded(request: web.Request) -> bool:
    """Another node passed this request on: answer it here, never pass it again. Its
    signature must check out: a client posing as a node is refused (403), and two nodes
    that disagree on the key never pass a request back and forth. (The body's hash it
    covers is compared with the body by the `cluster_routing` middleware, before any
    handler runs.)"""
    cluster = request.app.get(CLUSTER)
    value = request.headers.get(FORWARDED)
    if cluster is None or value is None:
        return False
    if request.get(_VERIFIED):  # a signature serves once: checked once per request
        return True
    client = request.headers.get(CLIENT, "")
    grant = request.headers.get(GRANT_HEADER, "")
    body_hash = request.headers.get(BODY_HASH, "")
    if cluster.verify(value, request.method, request.rel_url.raw_path_qs, client, grant, body_hash):
        request[_VERIFIED] = True
        return True
    raise Forbidden(f"{FORWARDED} is for the nodes of this cluster: its signature is not good")


def forwarded_grant(request: web.Request) -> Grant | None:
    """What the client's token allows, as the node that passed this request on found it
    (signed with the request); None for a request no node passed on. The caller still
    refuses a grant whose token was revoked since."""
    if not forwarded(request) or GRANT_HEADER not in request.headers:
        return None
    try:
        fields = json.loads(request.headers[GRANT_HEADER])
        grant = Grant(**fields)
    except (ValueError, TypeError):
        raise Forbidden(f"{GRANT_HEADER} is not a grant this node understands") from None
    if grant.expires_at is not None and grant.expires_at <= time.time():
        raise Unauthorized("the access token has expired")
    return grant


def client_address(request: web.Request) -> str | None:
    """Whom per-address limits count: the client, also for an offer another node passed
    on (that node says who it came from, signed)."""
    claimed = request.headers.get(CLIENT)
    if claimed and forwarded(request):
        return claimed[:64]
    return request.remote


async def forward(
    request: web.Request, node: NodeInfo, body: bytes | None = None, grant: Grant | None = None
) -> web.Response:
    """Ask `node` the same question; its status and body are the answer. `grant`: what the
    client's token allows (by default what the access middleware found); it goes signed
    in place of the token, which is left out of the query and of a JSON body."""

    cluster = request.app[CLUSTER]
    if body is None and request.can_read_body:
        body = await read_body(request)
    body = _without_token(body or b"")
    url = request.rel_url
    if "token" in url.query:
        url = url.with_query([(k, v) for k, v in url.query.items() if k != "token"])
    path = url.raw_path_qs
    client = client_address(request) or ""
    grant = grant or request.get(GRANT)
    if grant is None:  # no token was checked for it here: none is vouched for
        if AUTHORITY in request.app:
            raise Unauthorized("an access token is required (Authorization: Bearer <token>)")
        grant = OPEN_GRANT
    headers = cluster.signed_headers(request.method, path, client, grant, body)
    for name in ("Content-Type", "Accept"):
        if name in request.headers:
            headers[name] = request.headers[name]
    url = URL(node.url + path, encoded=True)
    try:
        async with request.app[FORWARDER].request(
            request.method, url, data=body or None, headers=headers, allow_redirects=False
        ) as answer:
            data = await answer.read()
            kind = answer.headers.get("Content-Type", "application/octet-stream")
            status = answer.status
            # a WHIP/WHEP session's (whip.py): where it lives and how to change it
            kept = [(n, v) for n in _PASSED_BACK for v in answer.headers.getall(n, [])]
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        logger.warning(
            "%s %s: node %s did not answer: %s", request.method, request.path, node.id, exc
        )
        raise NodeUnreachable(f"node {node.id} ({node.url}) did not answer: {exc}") from None
    response = web.Response(
        body=data, status=status, headers={"Content-Type": kind, "X-Komi-Node": node.id}
    )
    for name, value in kept:
        response.headers.add(name, value)
    return response


def _without_token(body: bytes) -> bytes:
    """A JSON object body without its `token` (an offer's): the grant stands for it."""
    if not body:
        return body
    try:
        value = load_json(body)
    except ValueError:
        return body
    if not isinstance(value, dict) or "token" not in value:
        return body
    del value["token"]
    return json.dumps(value).encode()


async def ask_node(
    app: web.Application, node: NodeInfo, method: str, path: str, body: dict[str, Any]
) -> tuple[int, Any]:
    """A request of this node's own to another node (signed with the cluster's admin
    rights; no token crosses): its status and JSON answer; 503 when the node does not
    answer."""
    cluster = app[CLUSTER]
    data = json.dumps(body).encode()
    headers = cluster.signed_headers(method, path, "", NODE_GRANT, data)
    headers["Content-Type"] = "application/json"
    try:
        async with app[FORWARDER].request(
            method, URL(node.url + path, encoded=True), data=data, headers=headers
        ) as answer:
            return answer.status, await answer.json(content_type=None)
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
        logger.warning("%s %s: node %s did not answer: %s", method, path, node.id, exc)
        return 503, {"error": f"node {node.id} did not answer: {exc}"}


@web.middleware
async def cluster_routing(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Camera and station paths go to the node hosting them (after this node checked the
    token); everything else, and whatever is here or nowhere, is answered here."""
    cluster = request.app.get(CLUSTER)
    if cluster is None:
        return await handler(request)
    if forwarded(request):
        await _check_body(request)
        return await handler(request)
    match = request.match_info
    node: NodeInfo | None = request.get(FORWARD_TO)
    try:
        if node is not None:
            pass
        elif "camera_id" in match:
            node = cluster.node_of_camera(validate_camera_id(match["camera_id"]))
        elif "station_id" in match and not request.path.endswith("/join"):
            node = cluster.node_of_station(validate_station_id(match["station_id"]))
    except InvalidRequest:
        node = None  # the handler answers 400
    if node is None:
        return await handler(request)
    return await forward(request, node)


async def _check_body(request: web.Request) -> None:
    """A forwarded request's body is the one its signature covers (a captured signature
    serves no other body)."""

    body = await read_body(request) if request.can_read_body else b""
    if hashlib.sha256(body).hexdigest() != request.headers.get(BODY_HASH):
        raise Forbidden(
            f"{FORWARDED} is for the nodes of this cluster: the body is not the signed one"
        )


async def open_forwarder() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S, sock_connect=5)
    )

"""Any node answers for the whole cluster: a request about a camera or a station hosted by
another node is passed to that node, with the client's own token, and its answer returned."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from ..protocol import InvalidRequest, KomiError, validate_camera_id
from .access import Forbidden, presented_token
from .cluster import CLIENT, FORWARDED, Cluster, NodeInfo

logger = logging.getLogger(__name__)

CLUSTER = web.AppKey("cluster", Cluster)  # absent without --redis
FORWARDER = web.AppKey("forwarder", aiohttp.ClientSession)
# set by access control: the node that can judge this request (a camera token's camera there)
FORWARD_TO = "komi_forward_to"
FORWARD_TIMEOUT_S = 30.0  # an offer's answer waits for the far node's ICE gathering

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class NodeUnreachable(KomiError):
    status = 503


def forwarded(request: web.Request) -> bool:
    """Another node passed this request on: answer it here, never pass it again. Its
    signature must check out: a client posing as a node is refused (403), and two nodes
    that disagree on the key never pass a request back and forth."""
    cluster = request.app.get(CLUSTER)
    value = request.headers.get(FORWARDED)
    if cluster is None or value is None:
        return False
    client = request.headers.get(CLIENT, "")
    if cluster.verify(value, request.method, request.rel_url.raw_path_qs, client):
        return True
    raise Forbidden(f"{FORWARDED} is for the nodes of this cluster: its signature is not good")


def client_address(request: web.Request) -> str | None:
    """Whom per-address limits count: the client, also for an offer another node passed
    on (that node says who it came from, signed)."""
    claimed = request.headers.get(CLIENT)
    if claimed and forwarded(request):
        return claimed[:64]
    return request.remote


async def forward(request: web.Request, node: NodeInfo, body: bytes | None = None) -> web.Response:
    """Ask `node` the same question; its status and body are the answer."""
    from .app import read_body

    cluster = request.app[CLUSTER]
    if body is None and request.can_read_body:
        body = await read_body(request)
    path = request.rel_url.raw_path_qs
    client = client_address(request) or ""
    headers = {FORWARDED: cluster.sign(request.method, path, client), CLIENT: client}
    token = presented_token(request)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    for name in ("Content-Type", "Accept"):
        if name in request.headers:
            headers[name] = request.headers[name]
    url = URL(node.url + path, encoded=True)
    try:
        async with request.app[FORWARDER].request(
            request.method, url, data=body, headers=headers, allow_redirects=False
        ) as answer:
            data = await answer.read()
            kind = answer.headers.get("Content-Type", "application/octet-stream")
            status = answer.status
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        logger.warning(
            "%s %s: node %s did not answer: %s", request.method, request.path, node.id, exc
        )
        raise NodeUnreachable(f"node {node.id} ({node.url}) did not answer: {exc}") from None
    return web.Response(
        body=data, status=status, headers={"Content-Type": kind, "X-Komi-Node": node.id}
    )


async def ask_node(
    app: web.Application, node: NodeInfo, method: str, path: str, body: dict[str, Any]
) -> tuple[int, Any]:
    """A request of this node's own to another node (signed, with the cluster's admin
    token): its status and JSON answer; 503 when the node does not answer."""
    cluster = app[CLUSTER]
    headers = {FORWARDED: cluster.sign(method, path, ""), CLIENT: ""}
    if cluster.admin_token:
        headers["Authorization"] = f"Bearer {cluster.admin_token}"
    try:
        async with app[FORWARDER].request(
            method, URL(node.url + path, encoded=True), json=body, headers=headers
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
    if cluster is None or forwarded(request):
        return await handler(request)
    match = request.match_info
    node: NodeInfo | None = request.get(FORWARD_TO)
    try:
        if node is not None:
            pass
        elif "camera_id" in match:
            node = cluster.node_of_camera(validate_camera_id(match["camera_id"]))
        elif "station_id" in match and not request.path.endswith("/join"):
            from .stations import validate_station_id

            node = cluster.node_of_station(validate_station_id(match["station_id"]))
    except InvalidRequest:
        node = None  # the handler answers 400
    if node is None:
        return await handler(request)
    return await forward(request, node)


async def open_forwarder() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S, sock_connect=5)
    )

"""Joining a cluster at start: what other nodes host, the signed revocations, and draining
on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.web_runner import GracefulExit
from sqlalchemy.exc import SQLAlchemyError

from ..app_keys import (
    AUTHORITY,
    CLUSTER,
    FORWARDER,
    HISTORY,
    LIVE,
    POOL,
    REGISTRY,
    SIGNALING,
    UNDO_SIGTERM,
)
from ..config import ServerConfig
from ..tls import lan_addresses
from .drain import drain
from .keys import CAMERA_KEYS, NODES_KEY, camera_of_key, node_key
from .node import Cluster
from .redis_clients import async_client
from .routing import open_forwarder

logger = logging.getLogger(__name__)


async def cluster_state(redis_url: str, node_id: str) -> tuple[list[str], list[str]]:
    """The cameras other nodes host now (their claims in Redis), and the nodes beating."""
    client = async_client(redis_url, decode_responses=True, socket_connect_timeout=5)
    try:
        keys = [k async for k in client.scan_iter(match=CAMERA_KEYS, count=500)]
        owners = await client.mget(keys) if keys else []
        nodes = sorted(await client.smembers(NODES_KEY))
        records = await client.mget([node_key(n) for n in nodes]) if nodes else []
    finally:
        await client.aclose()
    cameras = [
        camera_of_key(k)
        for k, owner in zip(keys, owners, strict=True)
        if owner not in (None, node_id)
    ]
    return cameras, [n for n, record in zip(nodes, records, strict=True) if record is not None]


async def join_cluster(
    app: web.Application, config: ServerConfig, admin: str | None, node_id: str
) -> Cluster:
    """Join, take the cluster's revocations, and drain on SIGTERM."""
    signaling = app[SIGNALING]
    authority = app.get(AUTHORITY)
    live = app[LIVE]

    async def revoked(token_id: str, expires_at: float) -> None:
        if authority is not None:
            authority.revoke(token_id, expires_at)
        closed = await live.close(token_id)
        logger.info("revoked token %s (on another node); closed %d here", token_id, closed)

    async def node_died(node: str, cameras: list[str], at: float) -> None:
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

    cluster = Cluster(
        config.redis_url or "",
        config.public_url or default_public_url(config),
        app[REGISTRY],
        workers=app[POOL].size,
        admin_token=admin,
        stations=lambda: [s.summary() for s in signaling.stations.all()],
        node_id=node_id,
        on_revoked=revoked,
        on_node_died=node_died,
    )
    app[FORWARDER] = await open_forwarder()
    await cluster.start()
    app[CLUSTER] = cluster
    signaling.cluster = cluster
    if authority is not None:
        for token_id, expires_at in (await cluster.revoked_tokens()).items():
            if expires_at > time.time() and not authority.is_revoked(token_id):
                authority.revoke(token_id, expires_at)
    app[UNDO_SIGTERM] = drain_on_sigterm(cluster, config.drain_timeout_s)
    return cluster


def default_public_url(config: ServerConfig) -> str:
    scheme = "https" if config.https else "http"
    host = config.host
    if host in ("0.0.0.0", "::", ""):
        lan = lan_addresses()
        host = lan[0] if lan else "127.0.0.1"
    return f"{scheme}://{host}:{config.port}"


def drain_on_sigterm(cluster: Cluster, timeout_s: float) -> Callable[[], Awaitable[None]]:
    """SIGTERM moves this node's cameras off before the server stops (Ctrl-C stops at
    once, as without a cluster)."""
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

"""What a server owns from start to stop, in order: the pose workers, the signaling, the
history database, the cluster and the demo camera; stopped in reverse at cleanup."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import WSCloseCode, web

from ..analysis.catalog import Catalog
from ..history.store import History, HistoryStore, default_url
from ..pose.worker_pool import PoseWorkerPool
from .access import LiveConnections, TokenAuthority
from .app_keys import (
    CLUSTER,
    DECODES,
    FORWARDER,
    HISTORY,
    MONITOR_SOCKETS,
    POOL,
    REGISTRY,
    SIGNALING,
    UNDO_SIGTERM,
)
from .camera_registry import CameraRegistry
from .cluster import cluster_state, join_cluster
from .config import ServerConfig
from .demo_camera import DEMO_PERSON, demo_camera_id, start_demo_camera
from .legacy_camera import JPEG_DECODES_AT_ONCE
from .limits import AddressSlots
from .signaling import Signaling

logger = logging.getLogger(__name__)

Lifecycle = Callable[[web.Application], AsyncIterator[None]]


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


def server_lifecycle(
    config: ServerConfig,
    registry: CameraRegistry,
    catalog: Catalog,
    authority: TokenAuthority | None,
    admin: str | None,
    slots: AddressSlots,
    live: LiveConnections,
    pool: PoseWorkerPool | None,
) -> Lifecycle:
    """The app's cleanup context. A given `pool` is used, not owned (tests share one)."""

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        previous_handler = loop.get_exception_handler()
        loop.set_exception_handler(_quiet_peer_races)
        owned = pool is None
        workers = pool or PoseWorkerPool(config.workers, config.pose_settings)
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
            cameras, nodes = await cluster_state(config.redis_url, node_id)
            spare, live_nodes = frozenset(cameras), frozenset(nodes) - {node_id}
        closed = await loop.run_in_executor(None, store.prepare, time.time(), spare, live_nodes)
        if closed:
            logger.info("history: ended %d set(s) left open by the last run", closed)
        app[HISTORY] = history = History(store)
        app[SIGNALING].history = history
        cluster = None
        if config.redis_url:
            cluster = await join_cluster(app, config, admin, node_id)
        demo = None
        if config.demo_camera:
            camera_id = demo_camera_id(node_id if cluster is not None else None)
            token = None
            if authority is not None:
                # tied to the demo person, so /history fills as the demo runs
                token = authority.mint("camera", camera_id, 365 * 24 * 3600, person=DEMO_PERSON)[
                    "token"
                ]
            demo = start_demo_camera(config, token, camera_id)
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

    return lifecycle


async def close_connections(app: web.Application) -> None:
    """First thing at shutdown: leave the cluster (no node routes here any more), end
    the cameras, and close /ws/monitor (aiohttp would otherwise wait for them)."""
    cluster = app.get(CLUSTER)
    if cluster is not None:
        await cluster.stop()
    sessions = app[REGISTRY].sessions()
    await asyncio.gather(*(s.close("server shutting down") for s in sessions))
    sockets: set[web.WebSocketResponse] = app[MONITOR_SOCKETS]
    await asyncio.gather(
        *(ws.close(code=WSCloseCode.GOING_AWAY) for ws in tuple(sockets)),
        return_exceptions=True,
    )

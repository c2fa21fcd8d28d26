"""What the app holds, by key: one place that names every resource `create_app` makes, so a
handler reads `request.app[REGISTRY]` without importing the module that builds the app.

The types are imported for the type checker only: this module sits below every module
that builds or uses these resources, so none of them imports it back in a circle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from .access import OPEN_GRANT, Grant

if TYPE_CHECKING:
    import aiohttp

    from ..analysis.catalog import Catalog
    from ..history.store import History
    from ..pose.worker_pool import PoseWorkerPool
    from .access import LiveConnections, TokenAuthority
    from .camera_registry import CameraRegistry
    from .cluster import Cluster
    from .config import ServerConfig
    from .limits import AddressSlots
    from .signaling import Signaling

CONFIG: web.AppKey[ServerConfig] = web.AppKey("config")
REGISTRY: web.AppKey[CameraRegistry] = web.AppKey("registry")
SIGNALING: web.AppKey[Signaling] = web.AppKey("signaling")
POOL: web.AppKey[PoseWorkerPool] = web.AppKey("pool")
CATALOG: web.AppKey[Catalog] = web.AppKey("catalog")
AUTHORITY: web.AppKey[TokenAuthority] = web.AppKey("authority")  # absent with --open
SLOTS: web.AppKey[AddressSlots] = web.AppKey("slots")
LIVE: web.AppKey[LiveConnections] = web.AppKey("live")
DECODES: web.AppKey[asyncio.Semaphore] = web.AppKey("decodes")  # JPEGs decoded at once
RULES: web.AppKey[dict] = web.AppKey("rules")  # (method, path) -> middleware.Rule
HISTORY: web.AppKey[History] = web.AppKey("history")
MONITOR_SOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("monitor_sockets")
CLUSTER: web.AppKey[Cluster] = web.AppKey("cluster")  # absent without --redis
FORWARDER: web.AppKey[aiohttp.ClientSession] = web.AppKey("forwarder")  # to other nodes
UNDO_SIGTERM: web.AppKey[Callable[[], Awaitable[None]]] = web.AppKey("undo_sigterm")

GRANT = web.RequestKey("grant", Grant)  # what the request's token allows (access control)
PAGE_STATUS = web.RequestKey("page_status", int)  # a page served to a client lacking a token


def request_grant(request: web.Request) -> Grant:
    """The grant the access middleware found for this request."""
    return request.get(GRANT, OPEN_GRANT)

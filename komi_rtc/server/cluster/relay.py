"""Other nodes' status updates for this node's `/ws/monitor` clients. Status updates come
once per frame, so they never go through Redis: while this node has clients, one WebSocket
to each other node's `/ws/monitor?scope=node` brings them (signed for each connection; no
token crosses)."""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from ...protocol.cluster_events import relayed_status_update
from ...protocol.messages import encode
from ..access import Grant
from ..camera_registry import CameraRegistry
from .membership import Membership
from .signing import RequestSigner

logger = logging.getLogger(__name__)

MONITOR_GRANT = Grant("monitor")  # a node's status relay watches with these rights


class StatusRelay:
    """While this node has `/ws/monitor` clients, one WebSocket to each other node's
    `/ws/monitor?scope=node` brings their cameras' status updates (per frame, so never
    through Redis)."""

    def __init__(
        self, membership: Membership, signer: RequestSigner, registry: CameraRegistry
    ) -> None:
        self._membership = membership
        self._signer = signer
        self._registry = registry
        self._links: dict[str, tuple[str, asyncio.Task[None]]] = {}
        self._http: aiohttp.ClientSession | None = None

    def reconcile(self) -> None:
        """Follow each other node while this node has clients, and no node else."""
        wanted = {}
        if self._registry.has_clients:
            wanted = {n: i.url for n, i in self._membership.view.items()}
        for node, (url, task) in list(self._links.items()):
            if wanted.get(node) != url:
                task.cancel()
                del self._links[node]
        for node, url in wanted.items():
            if node not in self._links:
                task = asyncio.ensure_future(self._follow(node, url))
                task.set_name(f"cluster:relay:{node}")
                self._links[node] = (url, task)

    async def _follow(self, node: str, url: str) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(sock_connect=5))
        path = "/ws/monitor?scope=node"
        backoff = 0.5
        while True:
            # signed for each connection (a signature serves once); no token crosses
            headers = self._signer.signed_headers("GET", path, "", MONITOR_GRANT, b"")
            try:
                async with self._http.ws_connect(
                    f"{url}{path}", headers=headers, heartbeat=20.0
                ) as ws:
                    backoff = 0.5
                    async for message in ws:
                        if message.type != aiohttp.WSMsgType.TEXT:
                            continue
                        status = relayed_status_update(message.data)
                        if status is not None:
                            self._registry.push_remote(encode(status), droppable=True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.info("cluster: status relay from %s lost (%s)", node, exc)
            await asyncio.sleep(backoff)  # reconnect delay, not synchronisation
            backoff = min(backoff * 2, 5.0)

    async def close(self) -> None:
        tasks = [task for _, task in self._links.values()]
        self._links.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

"""A node of a KOMI cluster (`--redis URL`): what it shares through Redis and what it learns.

A camera, and the station it belongs to, stays on one node, so video and inference never
cross the network (LiveKit keeps a room on one node the same way). Redis holds only routing
state: each node's record (its address, capacity left, cameras and stations, refreshed by a
heartbeat and expiring 3 s after the node stops beating), which node hosts which camera and
station (claims that expire with it), a fingerprint of the admin token and the revoked
tokens (`keys.py`). Camera list changes, reps, exercise changes and revocations travel over
pub/sub (`events.py`). Nothing on the per-frame path touches Redis: status updates of other
nodes' cameras reach `/ws/monitor` clients over one WebSocket per node (`relay.py`).

Every node is given the cluster's admin token; the records, events and revocations it
writes are sealed and the requests it passes on are signed with keys derived from it
(`signing.py`), so write access to Redis does not make anyone a node.

`Cluster` puts the parts together: the connection (`connection.py`), the membership
(`membership.py`: record, view, deaths), the claims (`claims.py`), placement
(`placement.py`, pure), the events and the status relay; it runs the heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from ...protocol.cluster_events import (
    CameraEvent,
    CamerasChanged,
    NodeDraining,
    NodeInfo,
    NodeLeft,
)
from ..access import Grant
from ..camera_registry import CameraRegistry
from ..camera_session import CameraSession
from .claims import Claims
from .connection import ClusterConnection
from .events import ClusterEvents, Revoked
from .keys import HEARTBEAT_S
from .membership import Membership, NodeDied
from .placement import PlacementMemory, place
from .redis_clients import redacted
from .relay import StatusRelay
from .signing import ClusterKeys, RequestSigner
from .startup import NO_ADMIN_TOKEN, ClusterUnavailable

logger = logging.getLogger(__name__)
LEAVE_TIMEOUT_S = 3.0  # leaving Redis at stop: the others see the death later anyway

REVOCATION_SYNC_BEATS = 10  # revocations and the fingerprint re-read this often


class Cluster:
    """This node's membership: owns the Redis connection, the heartbeat, the pub/sub listener
    and the status relay, and `stop()` ends them all. Once started it listens to the camera
    registry (a `RegistryListener`): local camera changes and events go to the other nodes,
    and the cluster-wide camera list and id claims come from here. `on_revoked`: what a
    revocation by another node does here; `on_node_died`: what a dead node's cameras do
    here (called on one live node)."""

    def __init__(
        self,
        redis_url: str,
        public_url: str,
        registry: CameraRegistry,
        *,
        workers: int,
        admin_token: str | None,
        stations: Callable[[], list[dict[str, Any]]],
        node_id: str | None = None,
        on_revoked: Revoked | None = None,
        on_node_died: NodeDied | None = None,
    ) -> None:
        if admin_token is None:
            raise ClusterUnavailable(NO_ADMIN_TOKEN)
        keys = ClusterKeys(admin_token)
        self.redis_url = redis_url
        self.node_id = node_id or f"node_{secrets.token_hex(3)}"
        self.url = public_url.rstrip("/")
        self._registry = registry
        self._link = ClusterConnection(redis_url, self.node_id, self.url, keys)
        self._signer = RequestSigner(self.node_id, keys)
        self._membership = Membership(
            self._link,
            registry,
            workers=workers,
            stations=stations,
            view_changed=self._view_changed,
            on_node_died=on_node_died,
        )
        self._relay = StatusRelay(self._membership, self._signer, registry)
        self._events = ClusterEvents(self._link, self._membership, registry, on_revoked)
        self._claims = Claims(self._link, self._membership)
        self._placed = PlacementMemory()
        self._beat_now = asyncio.Event()
        self._beats = 0

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Join: ClusterUnavailable when Redis does not answer."""
        await self._link.open()
        self._registry.add_listener(self)
        await self._membership.sync_shared()
        await self._beat()
        self._link.spawn(self._heartbeat_loop(), "heartbeat")
        self._link.spawn(self._events.listen(), "pubsub")
        logger.info(
            "cluster: node %s at %s joined through %s; %d other node(s)",
            self.node_id,
            self.url,
            redacted(self.redis_url),
            len(self.view),
        )

    async def stop(self) -> None:
        """Leave: the record and claims go at once, so no node routes here any more.
        Called first thing at shutdown (and again, doing nothing, at cleanup)."""
        if self._link.stopped:
            return
        self._beat_now.set()
        await self._link.cancel_tasks()
        self._registry.remove_listener(self)
        await self._relay.close()
        if not self._link.opened:
            return
        try:  # a Redis that is gone (stopped first, or unreachable) must not hold the stop
            await asyncio.wait_for(self._leave(), LEAVE_TIMEOUT_S)
        except Exception as exc:
            logger.warning("cluster: could not leave cleanly (Redis: %s)", exc or "no answer")
        try:
            await asyncio.wait_for(self._link.close(), LEAVE_TIMEOUT_S)
        except Exception as exc:
            logger.warning("cluster: Redis connections not closed cleanly (%s)", exc or "timeout")
        logger.info("cluster: node %s left", self.node_id)

    async def _leave(self) -> None:
        await self._membership.leave()
        await self._events.send(NodeLeft(self.node_id))

    # ------------------------------------------------------------ heartbeat

    async def _heartbeat_loop(self) -> None:
        link = self._link
        while not link.stopped:
            try:
                await asyncio.wait_for(self._beat_now.wait(), HEARTBEAT_S)
            except asyncio.TimeoutError:
                pass
            self._beat_now.clear()
            try:
                await self._beat()
                if not link.reachable:
                    logger.info("cluster: Redis is reachable again")
                link.reachable = True
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if link.reachable:
                    logger.error(
                        "cluster: Redis unreachable (%s); serving this node's cameras only "
                        "until it is back",
                        exc,
                    )
                link.reachable = False

    async def _beat(self) -> None:
        """Refresh this node's record and claims, then read every node's."""
        seen = await self._membership.beat()
        self._beats += 1
        if self._beats % REVOCATION_SYNC_BEATS == 0:
            await self._events.sync_revocations()
            await self._membership.sync_shared()
        # after this node lost Redis, nodes missing now may be its own outage, not theirs
        self._membership.update_view(seen, left=not self._link.reachable)

    def _view_changed(self) -> None:
        self._relay.reconcile()

    # ------------------------------------------------------------ the registry's listener

    def cameras_changed(self) -> None:
        self._beat_now.set()  # the claims and the record at once
        self._events.publish(CamerasChanged(self.node_id, self.url, tuple(self._registry.ids())))

    def camera_event(self, session: CameraSession, text: str) -> None:
        self._events.publish(CameraEvent(self.node_id, session.camera_id, text))

    def watchers_changed(self) -> None:
        self._relay.reconcile()

    def cameras_elsewhere(self) -> list[str]:
        return self._membership.cameras_elsewhere()

    async def claim_camera(self, camera_id: str) -> None:
        """Take a camera id cluster-wide before negotiating (409 when a live node has it; a
        dead node's claim is taken over)."""
        await self._claims.claim_camera(camera_id)

    # ------------------------------------------------------------ placement and claims

    async def place_camera(self, camera_id: str | None, station: str | None) -> NodeInfo | None:
        """Where a new camera goes (`placement.place`); None: here. DuplicateCamera when a
        live other node has its id, ServerFull when every node is full or draining; when
        Redis does not answer in time, the camera stays here."""
        try:
            claims = await self._claims.for_placement(camera_id, station)
        except (RedisError, asyncio.TimeoutError) as exc:
            logger.warning("cluster: Redis unreachable (%r); the camera stays here", exc)
            return None
        now = time.monotonic()
        placement = place(
            camera_id,
            station,
            self._membership.record(),
            self._membership.view,
            wanted_by=claims.wanted_by,
            station_reserved_for=claims.station_reserved_for,
            recent=self._placed.recent(now),
            new_camera_fps=self._membership.new_camera_fps(now),
        )
        best = placement.node
        if placement.loads:  # capacity decided (not a station)
            if placement.reserve_station:
                assert station is not None
                best = await self._claims.reserve_station(station, best)
            logger.info(
                "[%s] placed on %s; spare fps (cameras): %s",
                camera_id or "new camera",
                best.id,
                ", ".join(
                    f"{node} {load.spare_fps:.0f} ({load.cameras})"
                    for node, load in placement.loads.items()
                ),
            )
            self._placed.remember(now, best)
        return None if best.id == self.node_id else best

    def release_camera(self, camera_id: str) -> None:
        self._claims.release_camera(camera_id)

    async def want_cameras(self, camera_ids: list[str]) -> None:
        """A station here asked for cameras streaming on other nodes: they are placed here
        when they reconnect, also through a node whose view of this one is a beat old."""
        self._beat_now.set()  # this node's record, with the station's list, at once
        await self._claims.want_cameras(camera_ids)

    async def announce_draining(self) -> None:
        self._membership.draining = True
        await self._events.send(NodeDraining(self.node_id, True))
        self._beat_now.set()

    # ------------------------------------------------------------ revocations

    async def revoke(self, token_id: str, expires_at: float) -> None:
        """Every node refuses the token from now on, after restarts too."""
        await self._events.revoke(token_id, expires_at)

    async def revoked_tokens(self) -> dict[str, float]:
        return await self._events.revoked_tokens()

    async def sync_revocations(self) -> None:
        await self._events.sync_revocations()

    # ------------------------------------------------------------ what any node answers

    @property
    def registry(self) -> CameraRegistry:
        return self._registry

    @property
    def view(self) -> dict[str, NodeInfo]:
        """The other live nodes, by id."""
        return self._membership.view

    @property
    def draining(self) -> bool:
        return self._membership.draining

    def record(self) -> NodeInfo:
        return self._membership.record()

    def all_cameras(self) -> list[str]:
        return self._membership.all_cameras()

    def all_stations(self, local: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._membership.all_stations(local)

    def node_of_camera(self, camera_id: str) -> NodeInfo | None:
        """The other node hosting this camera; None when it is here or nowhere."""
        return self._membership.node_of_camera(camera_id)

    def node_of_station(self, station_id: str) -> NodeInfo | None:
        return self._membership.node_of_station(station_id)

    def node_urls(self) -> list[str]:
        return self._membership.node_urls()

    def origins(self) -> frozenset[str]:
        return self._membership.origins()

    def nodes(self) -> list[dict[str, Any]]:
        return self._membership.nodes()

    # ------------------------------------------------------------ requests between nodes

    def verify(
        self, value: str, method: str, path: str, client: str, grant: str, body_hash: str
    ) -> bool:
        return self._signer.verify(value, method, path, client, grant, body_hash)

    def signed_headers(
        self, method: str, path: str, client: str, grant: Grant, body: bytes
    ) -> dict[str, str]:
        return self._signer.signed_headers(method, path, client, grant, body)

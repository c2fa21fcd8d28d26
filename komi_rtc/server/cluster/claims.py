"""Which node has a camera id or a station, cluster-wide: the claims in Redis.

A camera id is claimed before negotiating (two nodes never both take it; a dead node's
claim is taken over), renewed by its node's heartbeat and released when the camera leaves.
A new station is reserved for the node its first camera is placed on, so its other cameras,
offered at the same moment through other nodes, go there too. A station that asks for
cameras streaming elsewhere marks them wanted, so they come to it when they reconnect.
Nothing here waits for Redis longer than REDIS_WAIT_S: an offer is then decided alone.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from redis.exceptions import RedisError

from ...protocol import DuplicateCamera
from ...protocol.cluster_events import NodeInfo
from .connection import ClusterConnection
from .keys import (
    EXPIRY_MS,
    REDIS_WAIT_S,
    RELEASE_CLAIM,
    STATION_RESERVATION_MS,
    WANTED_MS,
    camera_key,
    station_key,
    wanted_key,
)
from .membership import Membership
from .placement import reservation_holder

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlacementClaims:
    """What Redis says about a camera being placed: the node whose station asked for it,
    the node its station is reserved for (None: nobody, or not asked)."""

    wanted_by: str | None = None
    station_reserved_for: str | None = None


class Claims:
    def __init__(self, connection: ClusterConnection, membership: Membership) -> None:
        self._link = connection
        self._membership = membership

    async def for_placement(self, camera_id: str | None, station: str | None) -> PlacementClaims:
        """The claims placing this camera depends on (the station's reservation only when
        no node's record lists the station yet). DuplicateCamera when a live other node has
        the camera; RedisError or TimeoutError when Redis does not answer in time."""
        link = self._link
        wanted_by = station_owner = None
        if camera_id is not None and link.reachable:
            owner, wanted_by = await asyncio.wait_for(
                link.redis.mget(camera_key(camera_id), wanted_key(camera_id)), REDIS_WAIT_S
            )
            if owner is not None and owner != link.node_id and owner in self._membership.view:
                raise DuplicateCamera(camera_id)
        if (
            station is not None
            and self._membership.node_of_station(station) is None
            and link.reachable
        ):
            station_owner = await asyncio.wait_for(
                link.redis.get(station_key(station)), REDIS_WAIT_S
            )
        return PlacementClaims(wanted_by, station_owner)

    async def claim_camera(self, camera_id: str) -> None:
        """Take a camera id cluster-wide before negotiating (409 when a live node has it; a
        dead node's claim is taken over)."""
        if not self._link.reachable:
            logger.warning("[%s] cluster: id not claimed, Redis unreachable", camera_id)
            return
        try:
            await asyncio.wait_for(self._claim(camera_id), REDIS_WAIT_S)
        except (RedisError, asyncio.TimeoutError) as exc:
            logger.warning("[%s] cluster: id not claimed, Redis unreachable (%r)", camera_id, exc)

    async def _claim(self, camera_id: str) -> None:
        redis, node_id = self._link.redis, self._link.node_id
        key = camera_key(camera_id)
        if await redis.set(key, node_id, nx=True, px=EXPIRY_MS):
            return
        owner = await redis.get(key)
        # a claim of a node whose record expired (dead) is taken over
        if owner in (None, node_id) or not await self._membership.beating(owner):
            await redis.set(key, node_id, px=EXPIRY_MS)
            return
        raise DuplicateCamera(camera_id)

    def release_camera(self, camera_id: str) -> None:
        if not self._link.stopped:  # once stopped, its claims went with its leaving
            self._link.spawn(self._release(camera_id), f"release:{camera_id}")

    async def _release(self, camera_id: str) -> None:
        try:
            await self._link.redis.eval(RELEASE_CLAIM, 1, camera_key(camera_id), self._link.node_id)
        except Exception as exc:
            logger.warning("[%s] cluster: claim not released (%s); it expires", camera_id, exc)

    async def want_cameras(self, camera_ids: list[str]) -> None:
        """Mark cameras streaming on other nodes as wanted by a station here: they are
        placed here when they reconnect, also through a node whose view of this one is a
        beat old."""
        try:
            pipe = self._link.redis.pipeline(transaction=False)
            for camera_id in camera_ids:
                pipe.set(wanted_key(camera_id), self._link.node_id, px=WANTED_MS)
            await asyncio.wait_for(pipe.execute(), REDIS_WAIT_S)
        except (RedisError, asyncio.TimeoutError) as exc:
            logger.warning("cluster: cameras %s not marked as wanted (Redis: %r)", camera_ids, exc)

    async def reserve_station(self, station: str, chosen: NodeInfo) -> NodeInfo:
        """A new station's first placement reserves it for the chosen node, so its other
        cameras, offered at the same moment through other nodes, go there too (the first
        reservation wins; the hosting node's heartbeat renews it once the station exists)."""
        redis = self._link.redis
        key = station_key(station)
        try:
            won = await asyncio.wait_for(
                redis.set(key, chosen.id, nx=True, px=STATION_RESERVATION_MS), REDIS_WAIT_S
            )
            if won:
                return chosen
            owner = await asyncio.wait_for(redis.get(key), REDIS_WAIT_S)
        except (RedisError, asyncio.TimeoutError) as exc:
            logger.warning("[%s] cluster: station not reserved (Redis: %r)", station, exc)
            return chosen
        host = reservation_holder(owner, self._membership.record(), self._membership.view)
        if host is None:
            return chosen
        logger.info("[%s] station reserved for %s by another placement", station, host.id)
        return host

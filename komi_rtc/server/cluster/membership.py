"""Who is in the cluster: this node's record, written each heartbeat with its claims, and
the view of the other live nodes read back from theirs.

A node's record (its address, capacity left, cameras and stations) expires EXPIRY_MS after
its last heartbeat; a record counts only when a node of this cluster sealed it within that
time (a copy of an old record written back does not bring a dead node back). A node that
stops beating is dead: the lowest live node id ends its open sets once it stayed away past
DEATH_GRACE_S.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError

from ...protocol.cluster_events import NodeInfo
from ..camera_registry import CameraRegistry
from .connection import ClusterConnection
from .keys import (
    EXPIRY_MS,
    FINGERPRINT_KEY,
    NODES_KEY,
    ORIGIN_KEPT_S,
    ORIGINS_KEY,
    RELEASE_CLAIM,
    RENEW_CLAIM,
    camera_key,
    node_key,
    station_key,
)
from .placement import node_of_station, typical_camera_fps
from .signing import BadSeal, Stale
from .startup import url_origin

logger = logging.getLogger(__name__)

DEATH_GRACE_S = 2.0  # a node missing this long after its record expired is dead

# what a dead node's cameras mean here: (node, its cameras no live node claimed, when)
NodeDied = Callable[[str, list[str], float], Awaitable[None]]


class Membership:
    """This node's record and the view of the others. `view_changed` is called after the
    view changed (nodes came, went, or their cameras changed); `on_node_died`, with a dead
    node's cameras, on the node that ends its sets."""

    def __init__(
        self,
        connection: ClusterConnection,
        registry: CameraRegistry,
        *,
        workers: int,
        stations: Callable[[], list[dict[str, Any]]],
        view_changed: Callable[[], None],
        on_node_died: NodeDied | None,
    ) -> None:
        self._link = connection
        self._registry = registry
        self._workers = workers
        self._stations = stations
        self._view_changed = view_changed
        self._on_node_died = on_node_died
        self.node_id = connection.node_id
        self.url = connection.url
        self.draining = False
        self.view: dict[str, NodeInfo] = {}  # the other live nodes
        self._own_origin = url_origin(self.url)
        self._origins: set[str] = {self._own_origin} if self._own_origin else set()

    # ------------------------------------------------------------ this node

    def record(self) -> NodeInfo:
        """This node now: capacity is what its workers analyse a second at the inference
        time measured here; demand, what its cameras send (capped by --analysis-fps)."""
        now = time.monotonic()
        demand = 0.0
        guess = self.new_camera_fps(now)
        for session in self._registry.sessions():
            session.rate.refresh(now)
            fps = session.rate.received_fps
            if session.rate.age(now) < 2.0:  # not measured yet: what cameras here send
                fps = max(fps, guess)
            cap = session.rate.cap_fps
            demand += min(fps, cap) if cap else fps
        # the default guess until measured (a few warm-up frames would skew it either way)
        per_frame_ms = self._registry.inference_ms if self._registry.inference_measured else 20.0
        capacity = self._workers * 1000.0 / max(per_frame_ms, 1.0)
        cameras = tuple(self._registry.ids())
        return NodeInfo(
            id=self.node_id,
            url=self.url,
            capacity_fps=capacity,
            demand_fps=demand,
            cameras=cameras,
            stations=tuple(self._stations()),
            draining=self.draining,
            workers=self._workers,
            measured=self._registry.inference_measured,
            full=self._registry.full,
            recorded_cameras=len(cameras),
        )

    def new_camera_fps(self, now: float) -> float:
        """What a camera not measured yet is expected to send (`typical_camera_fps` of the
        cameras measured here)."""
        rates = []
        for session in self._registry.sessions():
            if session.rate.age(now) >= 2.0:
                cap = session.rate.cap_fps
                fps = session.rate.received_fps
                rates.append(min(fps, cap) if cap else fps)
        return typical_camera_fps(rates)

    # ------------------------------------------------------------ heartbeat

    async def beat(self) -> dict[str, NodeInfo]:
        """Refresh this node's record and claims, then read every node's: the live others."""
        redis = self._link.redis
        keys = self._link.keys
        me = self.record()
        record = keys.seal(f"node:{self.node_id}", me.to_wire())  # with its beat time
        async with redis.pipeline(transaction=False) as pipe:
            pipe.set(node_key(self.node_id), record, px=EXPIRY_MS)
            pipe.sadd(NODES_KEY, self.node_id)
            for camera_id in [*me.cameras, *self._registry.reserved()]:
                pipe.eval(RENEW_CLAIM, 1, camera_key(camera_id), self.node_id, EXPIRY_MS)
            for station in me.stations:
                pipe.eval(RENEW_CLAIM, 1, station_key(station["id"]), self.node_id, EXPIRY_MS)
            # a Redis restarted empty gets the fingerprint back
            pipe.set(FINGERPRINT_KEY, keys.fingerprint, nx=True)
            pipe.smembers(NODES_KEY)
            results = await pipe.execute()
        others = sorted(n for n in results[-1] if n != self.node_id)
        records = await redis.mget([node_key(n) for n in others]) if others else []
        seen: dict[str, NodeInfo] = {}
        for node, raw in zip(others, records, strict=True):
            info = self._read_record(node, raw) if raw is not None else None
            if info is not None:
                seen[node] = info
        gone = [n for n, raw in zip(others, records, strict=True) if raw is None]
        if gone:
            await redis.srem(NODES_KEY, *gone)
        return seen

    async def leave(self) -> None:
        """This node's record and claims go at once, so no node routes here any more."""
        async with self._link.redis.pipeline(transaction=False) as pipe:
            pipe.delete(node_key(self.node_id))
            pipe.srem(NODES_KEY, self.node_id)
            for camera_id in {*self._registry.ids(), *self._registry.reserved()}:
                pipe.eval(RELEASE_CLAIM, 1, camera_key(camera_id), self.node_id)
            await pipe.execute()

    def _read_record(self, node: str, raw: str) -> NodeInfo | None:
        """A node's record if that node wrote it (its MAC is good) within EXPIRY_MS: its beat
        time says so, not Redis's expiry (a copy of an old record, written back without one,
        does not bring a dead node back)."""
        try:
            sealed = self._link.keys.unseal(f"node:{node}", raw, max_age_s=EXPIRY_MS / 1000)
            info = NodeInfo.from_wire(sealed)
        except Stale:
            return None  # it stopped beating (Redis expires its record about now)
        except (BadSeal, ValueError, KeyError, TypeError) as exc:
            self._link.refuse(f"node:{node}", f"node {node}'s record", exc)
            return None
        if info.id != node:  # cannot be (the MAC covers the key), but never trust a mix-up
            self._link.refuse(f"node:{node}", f"node {node}'s record", ValueError(f"of {info.id}"))
            return None
        return info

    async def beating(self, node: str) -> bool:
        """Whether `node` has a record it wrote within EXPIRY_MS (a dead node's claims and
        sets are taken over only when it has not)."""
        raw = await self._link.redis.get(node_key(node))
        return raw is not None and self._read_record(node, raw) is not None

    async def sync_shared(self) -> None:
        """The nodes' page origins (each node keeps its own fresh; each entry tagged with
        the record key, so no one else adds an origin), and a check that the admin token's
        fingerprint in Redis is still this node's."""
        redis = self._link.redis
        keys = self._link.keys
        async with redis.pipeline(transaction=False) as pipe:
            pipe.get(FINGERPRINT_KEY)
            now = time.time()
            if self._own_origin:
                pipe.zadd(ORIGINS_KEY, {keys.tag("origin", self._own_origin): now})
            pipe.zremrangebyscore(ORIGINS_KEY, "-inf", now - ORIGIN_KEPT_S)
            pipe.zrange(ORIGINS_KEY, 0, -1)
            results = await pipe.execute()
        fingerprint, tagged = results[0], results[-1]
        if fingerprint not in (None, keys.fingerprint) and self._link.complain("fingerprint"):
            logger.error(
                "cluster: Redis holds another admin token's fingerprint: a node given another "
                "KOMI_ADMIN_TOKEN joined while Redis was empty, or someone else wrote it "
                "(nodes with another token cannot read each other's records)"
            )
        origins = [keys.untag("origin", member) for member in tagged]
        untagged = [m for m, origin in zip(tagged, origins, strict=True) if origin is None]
        if untagged:  # an older version's, or someone else's: never an allowed origin
            self._link.refuse(
                "origins", f"page origins in {ORIGINS_KEY}", BadSeal(f"{len(untagged)} not signed")
            )
            await redis.zrem(ORIGINS_KEY, *untagged)
        current = {url_origin(i.url) for i in self.view.values()} | {self._own_origin}
        self._origins = {o for o in [*map(url_origin, filter(None, origins)), *current] if o}

    # ------------------------------------------------------------ the view

    def update_view(self, seen: dict[str, NodeInfo], left: bool = False) -> None:
        """The live other nodes are now `seen`; those missing died (or `left`: on purpose,
        or missing because this node lost Redis)."""
        before = set(self.view)
        died = {n: self.view[n] for n in before - set(seen)}
        joined = set(seen) - before
        cameras_before = self.all_cameras()
        self.view = seen
        self._origins |= {
            o for o in (url_origin(i.url) for i in seen.values()) if o
        }  # until the next sync
        for node in joined:
            logger.info("cluster: node %s at %s is up", node, seen[node].url)
        for node, info in died.items():
            if left:
                logger.info("cluster: node %s at %s left", node, info.url)
                continue
            logger.warning(
                "cluster: node %s at %s stopped beating; its %d camera(s) will reconnect",
                node,
                info.url,
                len(info.cameras),
            )
            self._after_death(info)
        if self.all_cameras() != cameras_before:
            self._registry.push_list()
        self._view_changed()

    def node_left(self, node: str) -> None:
        if node in self.view:
            self.update_view({n: i for n, i in self.view.items() if n != node}, left=True)

    def set_cameras(self, node: str, url: str, cameras: tuple[str, ...]) -> None:
        """What a node's pub/sub said it hosts now (before its next record says so)."""
        info = self.view.get(node) or NodeInfo(id=node, url=url)
        before = self.all_cameras()
        self.view[node] = dataclasses.replace(info, cameras=cameras)
        if self.all_cameras() != before:
            self._registry.push_list()

    def set_draining(self, node: str, draining: bool) -> None:
        info = self.view.get(node)
        if info is not None:
            self.view[node] = dataclasses.replace(info, draining=draining)

    def _after_death(self, info: NodeInfo) -> None:
        """The lowest live node id ends the dead node's open sets (nobody else can), once
        it stayed away past a grace period (a node that stalled a few seconds is not
        dead)."""
        if self._on_node_died is None:
            return
        if min([self.node_id, *self.view]) != self.node_id:
            return
        self._link.spawn(self._end_sets_of_dead(info, time.time()), f"dead:{info.id}")

    async def _end_sets_of_dead(self, info: NodeInfo, at: float) -> None:
        await asyncio.sleep(DEATH_GRACE_S)  # the grace period itself
        if info.id in self.view or self._link.stopped or self._on_node_died is None:
            return
        try:
            if await self.beating(info.id):
                return  # it is beating again
            keys = [camera_key(c) for c in info.cameras]
            owners = await self._link.redis.mget(keys) if keys else []
        except RedisError as exc:
            logger.warning("cluster: node %s's sets left open (Redis: %s)", info.id, exc)
            return
        # sets are ended by the node that recorded them; only a set written before sets
        # had a node is matched by camera, and only for cameras no live node claimed since
        orphans = [c for c, o in zip(info.cameras, owners, strict=True) if o in (None, info.id)]
        await self._on_node_died(info.id, orphans, at)

    # ------------------------------------------------------------ what any node answers

    def all_cameras(self) -> list[str]:
        cameras = set(self._registry.ids())
        for info in self.view.values():
            cameras.update(info.cameras)
        return sorted(cameras)

    def cameras_elsewhere(self) -> list[str]:
        """The cameras the other nodes host."""
        return sorted({c for info in self.view.values() for c in info.cameras})

    def all_stations(self, local: list[dict[str, Any]]) -> list[dict[str, Any]]:
        stations = {s["id"]: s for s in local}
        for info in self.view.values():
            for station in info.stations:
                stations.setdefault(station["id"], station)
        return [stations[k] for k in sorted(stations)]

    def node_of_camera(self, camera_id: str) -> NodeInfo | None:
        """The other node hosting this camera; None when it is here or nowhere."""
        if camera_id in self._registry.ids():
            return None
        for info in self.view.values():
            if camera_id in info.cameras:
                return info
        return None

    def node_of_station(self, station_id: str) -> NodeInfo | None:
        return node_of_station(station_id, self.view)

    def node_urls(self) -> list[str]:
        """The live nodes' addresses, this one first: a camera told these can reconnect
        through another when its entry node dies."""
        others = sorted(i.url for i in self.view.values() if not i.draining)
        return [self.url, *others]

    def origins(self) -> frozenset[str]:
        """The page origins of the cluster's nodes, those that died within ORIGIN_KEPT_S
        too: a page one node served may call the others (a camera page whose node died
        offers through a live one, after that node left the view)."""
        return frozenset(self._origins)

    def nodes(self) -> list[dict[str, Any]]:
        me = self.record().to_wire()
        me["self"] = True
        return [me, *(self.view[n].to_wire() for n in sorted(self.view))]

"""A node of a KOMI cluster (`--redis URL`): what it shares through Redis and what it learns.

A camera, and the station it belongs to, stays on one node, so video and inference never
cross the network (LiveKit keeps a room on one node the same way). Redis holds only routing
state: each node's record (its address, capacity left, cameras and stations, refreshed by a
heartbeat and expiring 3 s after the node stops beating), which node hosts which camera and
station (claims that expire with it), a fingerprint of the admin token and the revoked
tokens. Camera list changes, reps, exercise changes and revocations travel over pub/sub.
Nothing on the per-frame path touches Redis: status updates of other nodes' cameras reach
`/ws/monitor` clients over one WebSocket per node (`StatusRelay`).

Every node is given the cluster's admin token; the records, events and revocations it
writes are sealed and the requests it passes on are signed with keys derived from it
(`cluster_signing.py`), so write access to Redis does not make anyone a node.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from redis.exceptions import RedisError as _RedisError

from ..protocol import DuplicateCamera
from .access import Grant
from .camera_registry import CameraRegistry
from .cluster_signing import BadSeal, ClusterKeys, Complaints, ReplayGuard, Stale
from .limits import ServerFull
from .redis_connect import redacted

logger = logging.getLogger(__name__)

PREFIX = "komi:"
CHANNEL = PREFIX + "events"
FINGERPRINT_KEY = PREFIX + "admin_fingerprint"  # an HMAC of a label with the admin token
# what versions before 2026-12 kept in Redis in clear (removed at start)
LEGACY_SECRET_KEYS = (PREFIX + "admin_token", PREFIX + "cluster_key")
FORWARD_MAX_AGE_S = 10.0  # a signed request is good this long after it was signed, once
EVENT_MAX_AGE_S = 10.0  # a pub/sub event this old (by its sender's clock) is ignored
REVOKED_KEY = PREFIX + "revoked"
NODES_KEY = PREFIX + "nodes"
ORIGINS_KEY = PREFIX + "origins"  # node page origins by when last seen: its pages may call
ORIGIN_KEPT_S = 7 * 24 * 3600.0  # any node this long after it was last up (then forgotten)
HEARTBEAT_S = 1.0
EXPIRY_MS = 3000  # a node's record and claims outlive its last heartbeat by this much
NEW_CAMERA_FPS = 15.0  # what a camera not measured yet needs, before any was measured here
STATION_RESERVATION_MS = 10_000  # a new station's node, until its heartbeat renews it
WANTED_MS = 30_000  # a camera a station asked for goes to its node when it reconnects meanwhile
SPARE_TOLERANCE_FPS = 5.0  # spares this close are equal: the node with fewer cameras wins
PLACEMENT_MEMORY_S = 3.0  # a placement counts against its node until its heartbeat shows it
DRAIN_LINGER_S = 4.0  # a drained node still forwards offers this long
FORWARDED = "X-Komi-Forwarded"  # set on a request one node passes to another
CLIENT = "X-Komi-Client"  # ... with the address of the client it came from
GRANT_HEADER = "X-Komi-Grant"  # ... what the client's token allows, as that node found (JSON)
BODY_HASH = "X-Komi-Body-SHA256"  # ... and the body's hash: the signature covers all four
MONITOR_GRANT = Grant("monitor")  # a node's status relay watches with these rights
NODE_GRANT = Grant("admin")  # another request of a node's own (asking a camera to move)
NO_ADMIN_TOKEN = (
    "--redis: every node of a cluster must be given the same admin token: set "
    "KOMI_ADMIN_TOKEN (or --admin-token-file FILE) to the cluster's token on this node "
    "(its keys derive from it; it is never kept in Redis)"
)


def node_key(node_id: str) -> str:
    return f"{PREFIX}node:{node_id}"


def camera_key(camera_id: str) -> str:
    return f"{PREFIX}camera:{camera_id}"


def station_key(station_id: str) -> str:
    return f"{PREFIX}station:{station_id}"


def wanted_key(camera_id: str) -> str:
    return f"{PREFIX}wanted:{camera_id}"


# a claim is given up only by its owner, and renewed only by it (or taken when free)
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"
_RENEW = (
    "local v = redis.call('get', KEYS[1]) "
    "if v == false or v == ARGV[1] then "
    "return redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) end "
    "return 0"
)
REVOCATION_SYNC_BEATS = 10  # revocations and the fingerprint re-read this often
REDIS_WAIT_S = 1.0  # an offer waits no longer than this for Redis (then decides alone)
DEATH_GRACE_S = 2.0  # a node missing this long after its record expired is dead


class ClusterUnavailable(RuntimeError):
    """Redis cannot be reached at start (a clear message, not a traceback)."""


def url_origin(url: str) -> str | None:
    """`scheme://host[:port]` of a node's public URL, as a browser's Origin header says it
    (no default port)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"  # IPv6
    if port is None or port == {"http": 80, "https": 443}[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def check_redis(redis_url: str) -> None:
    """Refuse to start, with a clear message, when the cluster's Redis cannot be reached."""
    import redis
    from redis.sentinel import MasterNotFoundError

    from .redis_connect import parse_sentinel_url, sync_client

    try:
        client = sync_client(redis_url, socket_connect_timeout=5)
    except ValueError as exc:
        raise ClusterUnavailable(f"--redis: {exc}") from None
    try:
        client.ping()
    except MasterNotFoundError:
        address = parse_sentinel_url(redis_url)
        assert address is not None
        sentinels = ", ".join(f"{h}:{p}" for h, p in address.sentinels)
        raise ClusterUnavailable(
            f"cannot reach Redis at {redacted(redis_url)}: no Sentinel at {sentinels} answered "
            f"with a master named {address.service!r} (are they running, and is that the name "
            "in their `sentinel monitor` line?)"
        ) from None
    except (redis.RedisError, ValueError) as exc:
        raise ClusterUnavailable(f"cannot reach Redis at {redacted(redis_url)}: {exc}") from None
    finally:
        client.close()


def check_node_id(redis_url: str, node_id: str, url: str) -> None:
    """Refuse a `--node-id` that a live node at another address has: two nodes with one id
    would take each other's cameras and end each other's sets. (The same address is this
    node's own last run, its record not yet expired.)"""
    from .redis_connect import sync_client

    client = sync_client(redis_url, socket_connect_timeout=5)
    try:
        raw = client.get(node_key(node_id))
    finally:
        client.close()
    if raw is None:
        return
    try:
        other = str(json.loads(raw).get("url", ""))
    except (ValueError, AttributeError):
        return  # unreadable: its heartbeat, if it lives, rewrites it
    if other.rstrip("/") != url.rstrip("/"):
        raise ClusterUnavailable(
            f"--node-id {node_id} is in use by the node at {other}: give each node its own id "
            "(a node that stopped frees its id within 5 s)"
        )


def check_admin_token(redis_url: str, admin_token: str | None) -> None:
    """Refuse to start without the cluster's admin token, or with another one than the
    nodes already beating have (Redis holds its fingerprint, never the token). A leftover
    admin token or signing key of an older version is deleted from Redis."""
    import redis

    from .redis_connect import sync_client

    if admin_token is None:
        raise ClusterUnavailable(NO_ADMIN_TOKEN)
    keys = ClusterKeys(admin_token)
    client = sync_client(redis_url, socket_connect_timeout=5, decode_responses=True)
    try:
        client.set(FINGERPRINT_KEY, keys.fingerprint, nx=True)
        stored = client.get(FINGERPRINT_KEY)
        if client.delete(*LEGACY_SECRET_KEYS):
            logger.warning(
                "cluster: deleted the admin token and signing key an older version kept in "
                "Redis in clear (anyone who read Redis before may know them: change the "
                "admin token if that worries you)"
            )
    except redis.RedisError as exc:
        raise ClusterUnavailable(f"cannot reach Redis at {redacted(redis_url)}: {exc}") from None
    finally:
        client.close()
    if stored != keys.fingerprint:
        raise ClusterUnavailable(
            "the cluster's nodes were given a different admin token: give every node the "
            "same KOMI_ADMIN_TOKEN (or --admin-token-file)"
        )


@dataclass
class NodeInfo:
    """A node as its heartbeat describes it."""

    id: str
    url: str
    capacity_fps: float = 0.0
    demand_fps: float = 0.0
    cameras: list[str] = field(default_factory=list)
    stations: list[dict[str, Any]] = field(default_factory=list)
    draining: bool = False
    workers: int = 0
    measured: bool = False  # capacity from inference timed here (else a default guess)
    full: bool = False  # at its --max-cameras
    recorded_cameras: int = 0  # cameras its demand counts (pub/sub may have told of more)

    @property
    def spare_fps(self) -> float:
        return self.capacity_fps - self.demand_fps

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "capacity_fps": round(self.capacity_fps, 1),
            "demand_fps": round(self.demand_fps, 1),
            "spare_fps": round(self.spare_fps, 1),
            "cameras": self.cameras,
            "stations": self.stations,
            "draining": self.draining,
            "workers": self.workers,
            "measured": self.measured,
            "full": self.full,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> NodeInfo:
        cameras = [str(c) for c in data.get("cameras", [])]
        return cls(
            id=str(data["id"]),
            url=str(data["url"]),
            capacity_fps=float(data.get("capacity_fps", 0.0)),
            demand_fps=float(data.get("demand_fps", 0.0)),
            cameras=cameras,
            stations=list(data.get("stations", [])),
            draining=bool(data.get("draining", False)),
            workers=int(data.get("workers", 0)),
            measured=bool(data.get("measured", False)),
            full=bool(data.get("full", False)),
            recorded_cameras=len(cameras),
        )


class Cluster:
    """This node's membership: owns the Redis client, the heartbeat, the pub/sub listener
    and the status relay, and `stop()` ends them all."""

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
    ) -> None:
        self.redis_url = redis_url
        self.node_id = node_id or f"node_{secrets.token_hex(3)}"
        self.url = public_url.rstrip("/")
        self.draining = False
        self.view: dict[str, NodeInfo] = {}  # the other live nodes
        self._registry = registry
        self._workers = workers
        if admin_token is None:
            raise ClusterUnavailable(NO_ADMIN_TOKEN)
        self._keys = ClusterKeys(admin_token)
        self._requests_seen = ReplayGuard(FORWARD_MAX_AGE_S)
        self._events_seen = ReplayGuard(EVENT_MAX_AGE_S)
        self._complaints = Complaints()
        self._stations = stations
        self._redis: Any = None
        self._subscriber: Any = None
        self._tasks: set[asyncio.Task[None]] = set()
        # recent placements: (when, node, how many cameras it showed then)
        self._placed: list[tuple[float, str, int]] = []
        self._beat_now = asyncio.Event()
        self._stopped = False  # redis-py may swallow a cancellation mid-command: loops check
        self._beats = 0
        self._revoked: set[str] = set()
        self._own_origin = url_origin(self.url)
        self._origins: set[str] = {self._own_origin} if self._own_origin else set()
        self._reachable = True
        self._relay = StatusRelay(self, registry)
        # set by the app: what a revocation, a dead node's cameras and a remote event do here
        self.on_revoked: Callable[[str, float], Awaitable[None]] | None = None
        self.on_node_died: Callable[[str, list[str], float], Awaitable[None]] | None = None
        registry.listing = self.all_cameras
        registry.changed = self._local_cameras_changed
        registry.event = self._local_event
        registry.clients_changed = self._relay.reconcile
        registry.claim = self.claim_camera

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        from .redis_connect import async_client

        self._redis = async_client(
            self.redis_url,
            decode_responses=True,
            socket_connect_timeout=5,
            socket_timeout=10,  # a Redis that stops answering never holds a handler
            health_check_interval=10,
        )
        # pub/sub on its own connection, which waits for events without a timeout
        self._subscriber = async_client(
            self.redis_url, decode_responses=True, socket_connect_timeout=5
        )
        try:
            await self._redis.ping()
        except Exception as exc:
            await self._redis.aclose()
            await self._subscriber.aclose()
            raise ClusterUnavailable(
                f"cannot reach Redis at {redacted(self.redis_url)}: {exc}"
            ) from None
        await self._sync_shared()
        await self._beat()
        self._spawn(self._heartbeat_loop(), "heartbeat")
        self._spawn(self._listen(), "pubsub")
        logger.info(
            "cluster: node %s at %s joined through %s; %d other node(s)",
            self.node_id,
            self.url,
            redacted(self.redis_url),
            len(self.view),
        )

    async def revoked_tokens(self) -> dict[str, float]:
        """The revocations in Redis that a node made (sealed); others are ignored."""
        revoked = {}
        for token_id, raw in (await self._redis.hgetall(REVOKED_KEY)).items():
            try:
                sealed = self._keys.unseal(f"revoked:{token_id}", raw)
                revoked[token_id] = float(sealed["expires_at"])
            except (BadSeal, KeyError, TypeError, ValueError) as exc:
                self._refuse("revocations", f"a revocation in {REVOKED_KEY}", exc)
        return revoked

    async def stop(self) -> None:
        """Leave: the record and claims go at once, so no node routes here any more.
        Called first thing at shutdown (and again, doing nothing, at cleanup)."""
        if self._stopped:
            return
        self._stopped = True
        self._beat_now.set()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        await self._relay.close()
        if self._redis is None:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.delete(node_key(self.node_id))
                pipe.srem(NODES_KEY, self.node_id)
                for camera_id in {*self._registry.ids(), *self._registry.reserved()}:
                    pipe.eval(_RELEASE, 1, camera_key(camera_id), self.node_id)
                await pipe.execute()
            await self._publish({"type": "leave"})
        except Exception as exc:
            logger.warning("cluster: could not leave cleanly (Redis: %s)", exc)
        await self._redis.aclose()
        await self._subscriber.aclose()
        logger.info("cluster: node %s left", self.node_id)

    def _spawn(self, coroutine: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(coroutine)
        task.set_name(f"cluster:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------ heartbeat

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
        return NodeInfo(
            id=self.node_id,
            url=self.url,
            capacity_fps=capacity,
            demand_fps=demand,
            cameras=self._registry.ids(),
            stations=self._stations(),
            draining=self.draining,
            workers=self._workers,
            measured=self._registry.inference_measured,
            full=self._registry.full,
            recorded_cameras=len(self._registry.ids()),
        )

    @property
    def registry(self) -> CameraRegistry:
        return self._registry

    def _refuse(self, source: str, what: str, reason: Exception) -> None:
        """A record or event that no node of this cluster wrote (or too old): ignored, and
        said once a minute per source (whoever writes them cannot flood the log)."""
        if self._complaints.due(source):
            logger.warning("cluster: ignoring %s: %s", what[:120], reason)

    async def _heartbeat_loop(self) -> None:
        while not self._stopped:
            try:
                await asyncio.wait_for(self._beat_now.wait(), HEARTBEAT_S)
            except asyncio.TimeoutError:
                pass
            self._beat_now.clear()
            try:
                await self._beat()
                if not self._reachable:
                    logger.info("cluster: Redis is reachable again")
                self._reachable = True
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._reachable:
                    logger.error(
                        "cluster: Redis unreachable (%s); serving this node's cameras only "
                        "until it is back",
                        exc,
                    )
                self._reachable = False

    async def _beat(self) -> None:
        """Refresh this node's record and claims, then read every node's."""
        me = self.record()
        record = self._keys.seal(f"node:{self.node_id}", me.to_wire())  # with its beat time
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(node_key(self.node_id), record, px=EXPIRY_MS)
            pipe.sadd(NODES_KEY, self.node_id)
            for camera_id in [*me.cameras, *self._registry.reserved()]:
                pipe.eval(_RENEW, 1, camera_key(camera_id), self.node_id, EXPIRY_MS)
            for station in me.stations:
                pipe.eval(_RENEW, 1, station_key(station["id"]), self.node_id, EXPIRY_MS)
            # a Redis restarted empty gets the fingerprint back
            pipe.set(FINGERPRINT_KEY, self._keys.fingerprint, nx=True)
            pipe.smembers(NODES_KEY)
            results = await pipe.execute()
        others = sorted(n for n in results[-1] if n != self.node_id)
        records = await self._redis.mget([node_key(n) for n in others]) if others else []
        seen: dict[str, NodeInfo] = {}
        for node, raw in zip(others, records, strict=True):
            info = self._read_record(node, raw) if raw is not None else None
            if info is not None:
                seen[node] = info
        gone = [n for n, raw in zip(others, records, strict=True) if raw is None]
        if gone:
            await self._redis.srem(NODES_KEY, *gone)
        self._beats += 1
        if self._beats % REVOCATION_SYNC_BEATS == 0:
            await self.sync_revocations()
            await self._sync_shared()
        # after this node lost Redis, nodes missing now may be its own outage, not theirs
        self._update_view(seen, left=not self._reachable)

    def _read_record(self, node: str, raw: str) -> NodeInfo | None:
        """A node's record if that node wrote it (its MAC is good) within EXPIRY_MS: its beat
        time says so, not Redis's expiry (a copy of an old record, written back without one,
        does not bring a dead node back)."""
        try:
            sealed = self._keys.unseal(f"node:{node}", raw, max_age_s=EXPIRY_MS / 1000)
            info = NodeInfo.from_wire(sealed)
        except Stale:
            return None  # it stopped beating (Redis expires its record about now)
        except (BadSeal, ValueError, KeyError, TypeError) as exc:
            self._refuse(f"node:{node}", f"node {node}'s record", exc)
            return None
        if info.id != node:  # cannot be (the MAC covers the key), but never trust a mix-up
            self._refuse(f"node:{node}", f"node {node}'s record", ValueError(f"of {info.id}"))
            return None
        return info

    async def _beating(self, node: str) -> bool:
        """Whether `node` has a record it wrote within EXPIRY_MS (a dead node's claims and
        sets are taken over only when it has not)."""
        raw = await self._redis.get(node_key(node))
        return raw is not None and self._read_record(node, raw) is not None

    def _update_view(self, seen: dict[str, NodeInfo], left: bool = False) -> None:
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
        self._relay.reconcile()

    def _after_death(self, info: NodeInfo) -> None:
        """The lowest live node id ends the dead node's open sets (nobody else can), once
        it stayed away past a grace period (a node that stalled a few seconds is not
        dead)."""
        if self.on_node_died is None:
            return
        if min([self.node_id, *self.view]) != self.node_id:
            return
        self._spawn(self._end_sets_of_dead(info, time.time()), f"dead:{info.id}")

    async def _end_sets_of_dead(self, info: NodeInfo, at: float) -> None:
        await asyncio.sleep(DEATH_GRACE_S)  # the grace period itself
        if info.id in self.view or self._stopped or self.on_node_died is None:
            return
        try:
            if await self._beating(info.id):
                return  # it is beating again
            keys = [camera_key(c) for c in info.cameras]
            owners = await self._redis.mget(keys) if keys else []
        except _RedisError as exc:
            logger.warning("cluster: node %s's sets left open (Redis: %s)", info.id, exc)
            return
        # sets are ended by the node that recorded them; only a set written before sets
        # had a node is matched by camera, and only for cameras no live node claimed since
        orphans = [c for c, o in zip(info.cameras, owners, strict=True) if o in (None, info.id)]
        await self.on_node_died(info.id, orphans, at)

    # ------------------------------------------------------------ what any node answers

    def all_cameras(self) -> list[str]:
        cameras = set(self._registry.ids())
        for info in self.view.values():
            cameras.update(info.cameras)
        return sorted(cameras)

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
        for info in self.view.values():
            if any(s.get("id") == station_id for s in info.stations):
                return info
        return None

    def sign(self, method: str, path: str, client: str, grant: str, body_hash: str) -> str:
        """`X-Komi-Forwarded` for a request this node passes on: which node, when, a nonce,
        and an HMAC with the cluster's request key over them and the method, path with
        query, client address, grant (JSON) and body hash, so a client cannot pose as a
        node, and a captured signature serves no other request, nor this one twice."""
        stamp = f"{self.node_id}:{int(time.time())}:{secrets.token_hex(8)}"
        return f"{stamp}:{self._keys.request_mac(stamp, method, path, client, grant, body_hash)}"

    def verify(
        self, value: str, method: str, path: str, client: str, grant: str, body_hash: str
    ) -> bool:
        """A signature a node made for this very request, within FORWARD_MAX_AGE_S, and not
        seen before."""
        stamp, _, mac = value.rpartition(":")
        node, _, rest = stamp.partition(":")
        when, _, nonce = rest.partition(":")
        if not (node and when.isdigit() and nonce and mac):
            return False
        now = time.time()
        if abs(now - int(when)) > FORWARD_MAX_AGE_S:
            return False
        expected = self._keys.request_mac(stamp, method, path, client, grant, body_hash)
        return hmac.compare_digest(mac, expected) and self._requests_seen.first_use(mac, now)

    def signed_headers(
        self, method: str, path: str, client: str, grant: Grant, body: bytes
    ) -> dict[str, str]:
        """The headers of a request to another node: the signature, the client's address,
        the grant this node found for it (so no token crosses), the body's hash."""
        grant_json = json.dumps(dataclasses.asdict(grant), separators=(",", ":"))
        body_hash = hashlib.sha256(body).hexdigest()
        return {
            FORWARDED: self.sign(method, path, client, grant_json, body_hash),
            CLIENT: client,
            GRANT_HEADER: grant_json,
            BODY_HASH: body_hash,
        }

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

    # ------------------------------------------------------------ placement and claims

    def new_camera_fps(self, now: float) -> float:
        """What a camera not measured yet is expected to send: the median of the cameras
        measured here (one site's cameras are alike), else NEW_CAMERA_FPS. Guessing low
        would send a burst of new cameras to whichever node has the youngest ones."""
        rates = []
        for session in self._registry.sessions():
            if session.rate.age(now) >= 2.0:
                cap = session.rate.cap_fps
                fps = session.rate.received_fps
                rates.append(min(fps, cap) if cap else fps)
        rates.sort()
        return rates[len(rates) // 2] if rates else NEW_CAMERA_FPS

    async def place_camera(self, camera_id: str | None, station: str | None) -> NodeInfo | None:
        """Where a new camera goes: its station's node, else the node with the most analysed
        capacity left (fewest cameras among those within SPARE_TOLERANCE_FPS of the most,
        then this one). None: here."""
        station_owner = None
        wanted_by = None
        try:
            if camera_id is not None and self._reachable:
                owner, wanted_by = await asyncio.wait_for(
                    self._redis.mget(camera_key(camera_id), wanted_key(camera_id)), REDIS_WAIT_S
                )
                if owner is not None and owner != self.node_id and owner in self.view:
                    raise DuplicateCamera(camera_id)
            if station is not None and self.node_of_station(station) is None and self._reachable:
                station_owner = await asyncio.wait_for(
                    self._redis.get(station_key(station)), REDIS_WAIT_S
                )
        except (_RedisError, asyncio.TimeoutError) as exc:
            logger.warning("cluster: Redis unreachable (%r); the camera stays here", exc)
            return None
        if station is None and camera_id is not None:
            found, wanting = self._wanting_station(camera_id, wanted_by)
            if found:
                return wanting
        new_station = False
        if station is not None:
            host = self.node_of_station(station)
            if host is None and station_owner == self.node_id and not self.draining:
                return None  # reserved here by an earlier placement; its camera is on its way
            if host is None and station_owner:
                host = self.view.get(station_owner)
            if host is not None and not host.draining:
                return host
            if host is None and any(s["id"] == station for s in self._stations()):
                return None
            new_station = host is None and not station_owner
        now = time.monotonic()
        self._placed = [p for p in self._placed if now - p[0] < PLACEMENT_MEMORY_S]
        candidates = [self.record(), *self.view.values()]
        candidates = [c for c in candidates if not c.draining and not c.full]
        if not candidates:
            raise ServerFull("every node of the cluster is full or draining")
        # a node that has analysed nothing yet is assumed as fast, a worker, as the measured
        # ones (its default guess would draw every camera of a burst)
        per_worker = sorted(
            c.capacity_fps / c.workers for c in candidates if c.measured and c.workers
        )
        typical = per_worker[len(per_worker) // 2] if per_worker else None

        guess = self.new_camera_fps(now)

        def spare_and_cameras(info: NodeInfo) -> tuple[float, int]:
            capacity = info.capacity_fps
            if not info.measured and typical is not None:
                capacity = typical * max(info.workers, 1)
            # placements sent there that its camera list does not show yet
            mine = [p for p in self._placed if p[1] == info.id]
            shown = len(info.cameras) - min((p[2] for p in mine), default=len(info.cameras))
            pending = max(0, len(mine) - shown)
            unrecorded = max(0, len(info.cameras) - info.recorded_cameras)
            spare = capacity - info.demand_fps - (unrecorded + pending) * guess
            return spare, len(info.cameras) + pending

        scored = {c.id: spare_and_cameras(c) for c in candidates}
        most = max(spare for spare, _ in scored.values())
        best = min(
            (c for c in candidates if scored[c.id][0] >= most - SPARE_TOLERANCE_FPS),
            key=lambda c: (scored[c.id][1], -scored[c.id][0], c.id != self.node_id),
        )
        if new_station:
            assert station is not None
            best = await self._reserve_station(station, best)
        logger.info(
            "[%s] placed on %s; spare fps (cameras): %s",
            camera_id or "new camera",
            best.id,
            ", ".join(f"{c.id} {scored[c.id][0]:.0f} ({scored[c.id][1]})" for c in candidates),
        )
        self._placed.append((now, best.id, len(best.cameras)))
        return None if best.id == self.node_id else best

    def _wanting_station(
        self, camera_id: str, wanted_by: str | None
    ) -> tuple[bool, NodeInfo | None]:
        """A station that lists this camera (`POST /stations/{id}`) takes it: (True, its
        node, None for here) when one does. `wanted_by`: the node that just asked for it,
        before its record (with the station's list) reached this node."""
        if not self.draining and any(camera_id in s["cameras"] for s in self._stations()):
            return True, None
        for info in self.view.values():
            if any(camera_id in s.get("cameras", []) for s in info.stations):
                if not info.draining:
                    return True, info
        if wanted_by == self.node_id and not self.draining:
            return True, None
        host = self.view.get(wanted_by) if wanted_by else None
        if host is not None and not host.draining:
            return True, host
        return False, None

    async def want_cameras(self, camera_ids: list[str]) -> None:
        """A station here asked for cameras streaming on other nodes: they are placed here
        when they reconnect, also through a node whose view of this one is a beat old."""
        self._beat_now.set()  # this node's record, with the station's list, at once
        try:
            pipe = self._redis.pipeline(transaction=False)
            for camera_id in camera_ids:
                pipe.set(wanted_key(camera_id), self.node_id, px=WANTED_MS)
            await asyncio.wait_for(pipe.execute(), REDIS_WAIT_S)
        except (_RedisError, asyncio.TimeoutError) as exc:
            logger.warning("cluster: cameras %s not marked as wanted (Redis: %r)", camera_ids, exc)

    async def _reserve_station(self, station: str, chosen: NodeInfo) -> NodeInfo:
        """A new station's first placement reserves it for the chosen node, so its other
        cameras, offered at the same moment through other nodes, go there too (the first
        reservation wins; the hosting node's heartbeat renews it once the station exists)."""
        key = station_key(station)
        try:
            won = await asyncio.wait_for(
                self._redis.set(key, chosen.id, nx=True, px=STATION_RESERVATION_MS), REDIS_WAIT_S
            )
            if won:
                return chosen
            owner = await asyncio.wait_for(self._redis.get(key), REDIS_WAIT_S)
        except (_RedisError, asyncio.TimeoutError) as exc:
            logger.warning("[%s] cluster: station not reserved (Redis: %r)", station, exc)
            return chosen
        host = self.record() if owner == self.node_id else self.view.get(str(owner))
        if host is None or host.draining:
            return chosen
        logger.info("[%s] station reserved for %s by another placement", station, host.id)
        return host

    async def claim_camera(self, camera_id: str) -> None:
        """Take a camera id cluster-wide before negotiating (409 when a live node has it; a
        dead node's claim is taken over)."""
        if not self._reachable:
            logger.warning("[%s] cluster: id not claimed, Redis unreachable", camera_id)
            return
        try:
            await asyncio.wait_for(self._claim(camera_id), REDIS_WAIT_S)
        except (_RedisError, asyncio.TimeoutError) as exc:
            logger.warning("[%s] cluster: id not claimed, Redis unreachable (%r)", camera_id, exc)

    async def _claim(self, camera_id: str) -> None:
        key = camera_key(camera_id)
        if await self._redis.set(key, self.node_id, nx=True, px=EXPIRY_MS):
            return
        owner = await self._redis.get(key)
        # a claim of a node whose record expired (dead) is taken over
        if owner in (None, self.node_id) or not await self._beating(owner):
            await self._redis.set(key, self.node_id, px=EXPIRY_MS)
            return
        raise DuplicateCamera(camera_id)

    def release_camera(self, camera_id: str) -> None:
        if not self._stopped:  # once stopped, its claims went with its leaving
            self._spawn(self._release(camera_id), f"release:{camera_id}")

    async def _release(self, camera_id: str) -> None:
        try:
            await self._redis.eval(_RELEASE, 1, camera_key(camera_id), self.node_id)
        except Exception as exc:
            logger.warning("[%s] cluster: claim not released (%s); it expires", camera_id, exc)

    # ------------------------------------------------------------ pub/sub

    def publish(self, event: dict[str, Any]) -> None:
        if self._stopped:
            return
        self._spawn(self._publish(event), f"publish:{event.get('type')}")

    async def _publish(self, event: dict[str, Any]) -> None:
        event["node"] = self.node_id
        try:
            await self._redis.publish(CHANNEL, self._keys.seal("event", event))
        except Exception as exc:
            logger.warning("cluster: %s not published (Redis: %s)", event.get("type"), exc)

    def _local_cameras_changed(self) -> None:
        self._beat_now.set()  # the claims and the record at once
        self.publish({"type": "cameras", "cameras": self._registry.ids(), "url": self.url})

    def _local_event(self, session: Any, text: str) -> None:
        self.publish({"type": "event", "camera_id": session.camera_id, "text": text})

    async def _listen(self) -> None:
        backoff = 1.0
        while not self._stopped:
            pubsub = self._subscriber.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                if backoff > 1.0:  # subscribed again: what was published meanwhile is lost
                    await self.sync_revocations()
                backoff = 1.0
                async for message in pubsub.listen():
                    if self._stopped:
                        return
                    if message.get("type") == "message":
                        self._on_message(message.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("cluster: pub/sub lost (%s); again in %g s", exc, backoff)
                await asyncio.sleep(backoff)  # reconnect delay, not synchronisation
                backoff = min(backoff * 2, 10.0)
            finally:
                await pubsub.aclose()

    def _on_message(self, raw: Any) -> None:
        """An event a node published (sealed, at most EVENT_MAX_AGE_S old, not seen before);
        anything else on the channel is ignored."""
        try:
            event = self._keys.unseal("event", raw, max_age_s=EVENT_MAX_AGE_S)
            node = str(event["node"])
            kind = str(event["type"])
            if not self._events_seen.first_use(event["mac"], time.time()):
                raise BadSeal("seen before (a replay)")
        except (BadSeal, ValueError, KeyError, TypeError) as exc:
            said = _event_type(raw)
            self._refuse(f"event:{said}", f"a {said!r} event", exc)
            return
        if node == self.node_id:
            return
        if kind == "cameras":
            info = self.view.get(node)
            if info is None:
                info = self.view[node] = NodeInfo(id=node, url=str(event.get("url", "")))
            before = self.all_cameras()
            info.cameras = [str(c) for c in event.get("cameras", [])]
            if self.all_cameras() != before:
                self._registry.push_list()
        elif kind == "event":
            self._registry.push_remote(str(event.get("text", "")), droppable=False)
        elif kind == "leave":
            if node in self.view:
                self._update_view({n: i for n, i in self.view.items() if n != node}, left=True)
        elif kind == "node":
            info = self.view.get(node)
            if info is not None:
                info.draining = bool(event.get("draining"))
        elif kind == "revoked" and self.on_revoked is not None:
            self._revoked.add(str(event.get("token_id")))
            self._spawn(
                self.on_revoked(str(event.get("token_id")), float(event.get("expires_at", 0))),
                "revoked",
            )

    async def revoke(self, token_id: str, expires_at: float) -> None:
        """Every node refuses the token from now on, after restarts too."""
        self._revoked.add(token_id)
        sealed = self._keys.seal(f"revoked:{token_id}", {"expires_at": expires_at})
        await self._redis.hset(REVOKED_KEY, token_id, sealed)
        await self._publish({"type": "revoked", "token_id": token_id, "expires_at": expires_at})

    async def _sync_shared(self) -> None:
        """The nodes' page origins (each node keeps its own fresh; each entry tagged with
        the record key, so no one else adds an origin), and a check that the admin token's
        fingerprint in Redis is still this node's."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(FINGERPRINT_KEY)
            now = time.time()
            if self._own_origin:
                pipe.zadd(ORIGINS_KEY, {self._keys.tag("origin", self._own_origin): now})
            pipe.zremrangebyscore(ORIGINS_KEY, "-inf", now - ORIGIN_KEPT_S)
            pipe.zrange(ORIGINS_KEY, 0, -1)
            results = await pipe.execute()
        fingerprint, tagged = results[0], results[-1]
        if fingerprint not in (None, self._keys.fingerprint) and self._complaints.due(
            "fingerprint"
        ):
            logger.error(
                "cluster: Redis holds another admin token's fingerprint: a node given another "
                "KOMI_ADMIN_TOKEN joined while Redis was empty, or someone else wrote it "
                "(nodes with another token cannot read each other's records)"
            )
        origins = [self._keys.untag("origin", member) for member in tagged]
        untagged = [m for m, origin in zip(tagged, origins, strict=True) if origin is None]
        if untagged:  # an older version's, or someone else's: never an allowed origin
            self._refuse(
                "origins", f"page origins in {ORIGINS_KEY}", BadSeal(f"{len(untagged)} not signed")
            )
            await self._redis.zrem(ORIGINS_KEY, *untagged)
        current = {url_origin(i.url) for i in self.view.values()} | {self._own_origin}
        self._origins = {o for o in [*map(url_origin, filter(None, origins)), *current] if o}

    async def sync_revocations(self) -> None:
        """Take the revocations this node has not heard of (pub/sub delivers at most once:
        a node reconnecting when one was published missed it)."""
        if self.on_revoked is None:
            return
        now = time.time()
        for token_id, expires_at in (await self.revoked_tokens()).items():
            if token_id not in self._revoked and expires_at > now:
                self._revoked.add(token_id)
                await self.on_revoked(token_id, expires_at)

    async def announce_draining(self) -> None:
        self.draining = True
        await self._publish({"type": "node", "draining": True})
        self._beat_now.set()


def _event_type(raw: Any) -> str:
    """What a refused event says it is, for the log (bounded: anyone may have written it)."""
    try:
        return str(json.loads(raw).get("type"))[:40]
    except (ValueError, TypeError, AttributeError):
        return "unreadable"


class StatusRelay:
    """While this node has `/ws/monitor` clients, one WebSocket to each other node's
    `/ws/monitor?scope=node` brings their cameras' status updates (per frame, so never
    through Redis)."""

    def __init__(self, cluster: Cluster, registry: CameraRegistry) -> None:
        self._cluster = cluster
        self._registry = registry
        self._links: dict[str, tuple[str, asyncio.Task[None]]] = {}
        self._http: aiohttp.ClientSession | None = None

    def reconcile(self) -> None:
        wanted = {}
        if self._registry.has_clients:
            wanted = {n: i.url for n, i in self._cluster.view.items()}
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
            headers = self._cluster.signed_headers("GET", path, "", MONITOR_GRANT, b"")
            try:
                async with self._http.ws_connect(
                    f"{url}{path}", headers=headers, heartbeat=20.0
                ) as ws:
                    backoff = 0.5
                    async for message in ws:
                        if message.type != aiohttp.WSMsgType.TEXT:
                            continue
                        if '"status_update"' in message.data[:40]:
                            self._registry.push_remote(message.data, droppable=True)
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


async def drain(cluster: Cluster, timeout_s: float) -> int:
    """SIGTERM on a cluster node: stop taking cameras, then end each camera between two
    reps (a rep under way is finished and recorded first) so it reconnects to its entry
    node, which places it on a live one. Returns how many cameras were moved."""
    await cluster.announce_draining()
    registry = cluster.registry
    sessions = [s for s in registry.sessions() if not s.closing]
    logger.warning(
        "cluster: node %s draining: moving %d camera(s) to other nodes (at most %g s)",
        cluster.node_id,
        len(sessions),
        timeout_s,
    )
    deadline = time.monotonic() + timeout_s

    async def move(session: Any) -> None:
        try:
            await asyncio.wait_for(session.between_reps.wait(), deadline - 1.0 - time.monotonic())
        except asyncio.TimeoutError:
            logger.warning("[%s] still mid-rep when draining ran out of time", session.camera_id)
        await session.close("node draining: reconnect to move to another node")

    await asyncio.gather(*(move(s) for s in sessions), return_exceptions=True)
    if sessions:
        # cameras that came in through this node reconnect through it (1 s later): their
        # offers are still passed on to live nodes for a moment
        await asyncio.sleep(min(DRAIN_LINGER_S, max(0.0, deadline - time.monotonic())))
    return len(sessions)

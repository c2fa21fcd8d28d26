"""How a node reaches the cluster's Redis: one URL, plain or through Redis Sentinel.

Why Sentinel: with one Redis, routing stops when that Redis does. Given the Sentinels'
addresses, a node asks them for the current master on every new connection, so when
Sentinel promotes a replica the nodes follow it within seconds (the heartbeats then
rewrite every record and claim; the admin token and signing key are put back too).

`--redis` forms:
- `redis://[:password@]host:port/db` (also `rediss://`, `unix://`): one Redis.
- `redis+sentinel://[:password@]host:port[,host:port...]/service[/db]`: the Sentinels and
  the name they monitor the master under (`sentinel monitor <service> ...`); the password,
  if any, is the master's (the Sentinels themselves are asked without one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel

SENTINEL_SCHEME = "redis+sentinel"


@dataclass(frozen=True)
class SentinelAddress:
    sentinels: list[tuple[str, int]]
    service: str
    db: int
    password: str | None


def parse_sentinel_url(url: str) -> SentinelAddress | None:
    """The Sentinel form of `--redis`, or None for a plain Redis URL; ValueError when a
    Sentinel URL is malformed (said in words a user can act on)."""
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        return None
    hosts = parts.netloc.rpartition("@")[2]
    sentinels = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{url!r}: each Sentinel must be host:port (26379 is the usual port)")
        sentinels.append((host.strip("[]"), int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ValueError(f"{url!r}: name the master's service: redis+sentinel://host:port/komi")
    db = path[1] if len(path) > 1 else "0"
    if not db.isdigit() or len(path) > 2:
        raise ValueError(f"{url!r}: the path is /service or /service/db (a number)")
    password = unquote(parts.password) if parts.password else None
    return SentinelAddress(sentinels, path[0], int(db), password)


def redacted(url: str) -> str:
    """A Redis URL without its password, for the banner and the log."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def sync_client(url: str, **options: Any) -> Any:
    """A blocking client (start-up checks), for a plain or a Sentinel URL."""
    address = parse_sentinel_url(url)
    if address is None:
        return redis.Redis.from_url(url, **options)
    timeout = options.get("socket_connect_timeout", 5)
    sentinel = Sentinel(
        address.sentinels,
        sentinel_kwargs={"socket_connect_timeout": timeout, "socket_timeout": timeout},
    )
    return sentinel.master_for(address.service, db=address.db, password=address.password, **options)


def async_client(url: str, **options: Any) -> Any:
    """An asyncio client, for a plain or a Sentinel URL (the master is looked up again on
    each new connection, so a failover is followed)."""
    address = parse_sentinel_url(url)
    if address is None:
        return redis.asyncio.Redis.from_url(url, **options)
    timeout = options.get("socket_connect_timeout", 5)
    sentinel = AsyncSentinel(
        address.sentinels,
        sentinel_kwargs={"socket_connect_timeout": timeout, "socket_timeout": timeout},
    )
    return sentinel.master_for(address.service, db=address.db, password=address.password, **options)

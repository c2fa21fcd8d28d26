"""Checks before a node joins (`--redis`): Redis answers, its `--node-id` is its own, and it
was given the cluster's admin token. Each failure is a `ClusterUnavailable` with a message a
person can act on, never a traceback."""

from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

import redis
from redis.sentinel import MasterNotFoundError

from .keys import FINGERPRINT_KEY, LEGACY_SECRET_KEYS, node_key
from .redis_clients import parse_sentinel_url, redacted, sync_client
from .signing import ClusterKeys

logger = logging.getLogger(__name__)

NO_ADMIN_TOKEN = (
    "--redis: every node of a cluster must be given the same admin token: set "
    "KOMI_ADMIN_TOKEN (or --admin-token-file FILE) to the cluster's token on this node "
    "(its keys derive from it; it is never kept in Redis)"
)


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

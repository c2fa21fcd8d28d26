"""This node's connection to the cluster: what every part of its membership shares.

The Redis clients, the keys derived from the admin token, the tasks the parts start (owned
here and cancelled in `close()`), whether Redis answered the last heartbeat, and the log of
refused records and events (once a minute per source, so whoever writes forgeries into Redis
cannot flood the log).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from .redis_clients import async_client, redacted
from .signing import ClusterKeys, Complaints
from .startup import ClusterUnavailable

logger = logging.getLogger(__name__)


class ClusterConnection:
    def __init__(self, redis_url: str, node_id: str, url: str, keys: ClusterKeys) -> None:
        self.redis_url = redis_url
        self.node_id = node_id
        self.url = url
        self.keys = keys
        self.redis: Any = async_client(
            redis_url,
            decode_responses=True,
            socket_connect_timeout=5,
            socket_timeout=10,  # a Redis that stops answering never holds a handler
            health_check_interval=10,
        )
        # pub/sub on its own connection, which waits for events without a timeout
        self.subscriber: Any = async_client(
            redis_url, decode_responses=True, socket_connect_timeout=5
        )
        self.opened = False
        self.stopped = False  # redis-py may swallow a cancellation mid-command: loops check
        self.reachable = True  # Redis answered the last heartbeat
        self._tasks: set[asyncio.Task[None]] = set()
        self._complaints = Complaints()

    async def open(self) -> None:
        """ClusterUnavailable when Redis does not answer (both clients are closed then)."""
        try:
            await self.redis.ping()
        except Exception as exc:
            await self.redis.aclose()
            await self.subscriber.aclose()
            raise ClusterUnavailable(
                f"cannot reach Redis at {redacted(self.redis_url)}: {exc}"
            ) from None
        self.opened = True

    def spawn(self, coroutine: Awaitable[None], name: str) -> None:
        """Run `coroutine` as a task of this node's cluster membership (cancelled by
        `cancel_tasks()`)."""
        task = asyncio.ensure_future(coroutine)
        task.set_name(f"cluster:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def cancel_tasks(self) -> None:
        """Marks the connection stopped and ends every task it started (within 5 s)."""
        self.stopped = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)

    async def close(self) -> None:
        await self.redis.aclose()
        await self.subscriber.aclose()

    def refuse(self, source: str, what: str, reason: Exception) -> None:
        """A record or event that no node of this cluster wrote (or too old): ignored, and
        said once a minute per source (whoever writes them cannot flood the log)."""
        if self._complaints.due(source):
            logger.warning("cluster: ignoring %s: %s", what[:120], reason)

    def complain(self, source: str) -> bool:
        """Whether to log a problem of `source` now (once a minute per source)."""
        return self._complaints.due(source)

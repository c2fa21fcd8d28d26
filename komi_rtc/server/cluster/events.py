"""What the nodes tell each other at once, over Redis pub/sub: camera list changes, reps and
exercise changes, a node leaving or draining, and revoked tokens (typed events,
`protocol/cluster_events.py`).

Each event is sealed by the node that published it; one that no node sealed, older than
EVENT_MAX_AGE_S, or seen before is ignored. Pub/sub delivers at most once: revocations are
also kept in Redis, and a node that reconnects reads them again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ...protocol.cluster_events import (
    CameraEvent,
    CamerasChanged,
    ClusterEvent,
    NodeDraining,
    NodeLeft,
    TokenRevoked,
    event_from_wire,
)
from ..camera_registry import CameraRegistry
from .connection import ClusterConnection
from .keys import CHANNEL, REVOKED_KEY
from .membership import Membership
from .signing import BadSeal, ReplayGuard

logger = logging.getLogger(__name__)

EVENT_MAX_AGE_S = 10.0  # a pub/sub event this old (by its sender's clock) is ignored

# what a revocation means here: (token id, when it expires anyway, unix s)
Revoked = Callable[[str, float], Awaitable[None]]


class ClusterEvents:
    """Publishes this node's events and listens for the others' (`listen()` runs until the
    connection stops, subscribing again after Redis was lost)."""

    def __init__(
        self,
        connection: ClusterConnection,
        membership: Membership,
        registry: CameraRegistry,
        on_revoked: Revoked | None,
    ) -> None:
        self._link = connection
        self._membership = membership
        self._registry = registry
        self._on_revoked = on_revoked
        self._events_seen = ReplayGuard(EVENT_MAX_AGE_S)
        self._revoked: set[str] = set()

    def publish(self, event: ClusterEvent) -> None:
        if self._link.stopped:
            return
        self._link.spawn(self.send(event), f"publish:{event.type}")

    async def send(self, event: ClusterEvent) -> None:
        """Publish now (a failure is logged: pub/sub is best effort)."""
        try:
            await self._link.redis.publish(CHANNEL, self._link.keys.seal("event", event.to_wire()))
        except Exception as exc:
            logger.warning("cluster: %s not published (Redis: %s)", event.type, exc)

    async def listen(self) -> None:
        backoff = 1.0
        while not self._link.stopped:
            pubsub = self._link.subscriber.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                if backoff > 1.0:  # subscribed again: what was published meanwhile is lost
                    await self.sync_revocations()
                backoff = 1.0
                async for message in pubsub.listen():
                    if self._link.stopped:
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
        anything else on the channel is ignored, and so is an event type this version does
        not know."""
        try:
            sealed = self._link.keys.unseal("event", raw, max_age_s=EVENT_MAX_AGE_S)
            event = event_from_wire(sealed)
            if not self._events_seen.first_use(sealed["mac"], time.time()):
                raise BadSeal("seen before (a replay)")
        except (BadSeal, ValueError, KeyError, TypeError) as exc:
            said = _event_type(raw)
            self._link.refuse(f"event:{said}", f"a {said!r} event", exc)
            return
        if event is None or event.node == self._link.node_id:
            return
        if isinstance(event, CamerasChanged):
            self._membership.set_cameras(event.node, event.url, event.cameras)
        elif isinstance(event, CameraEvent):
            self._registry.push_remote(event.text, droppable=False)
        elif isinstance(event, NodeLeft):
            self._membership.node_left(event.node)
        elif isinstance(event, NodeDraining):
            self._membership.set_draining(event.node, event.draining)
        elif isinstance(event, TokenRevoked) and self._on_revoked is not None:
            self._revoked.add(event.token_id)
            self._link.spawn(self._on_revoked(event.token_id, event.expires_at), "revoked")

    # ------------------------------------------------------------ revocations

    async def revoke(self, token_id: str, expires_at: float) -> None:
        """Every node refuses the token from now on, after restarts too."""
        self._revoked.add(token_id)
        sealed = self._link.keys.seal(f"revoked:{token_id}", {"expires_at": expires_at})
        await self._link.redis.hset(REVOKED_KEY, token_id, sealed)
        await self.send(TokenRevoked(self._link.node_id, token_id, expires_at))

    async def revoked_tokens(self) -> dict[str, float]:
        """The revocations in Redis that a node made (sealed); others are ignored."""
        revoked = {}
        for token_id, raw in (await self._link.redis.hgetall(REVOKED_KEY)).items():
            try:
                sealed = self._link.keys.unseal(f"revoked:{token_id}", raw)
                revoked[token_id] = float(sealed["expires_at"])
            except (BadSeal, KeyError, TypeError, ValueError) as exc:
                self._link.refuse("revocations", f"a revocation in {REVOKED_KEY}", exc)
        return revoked

    async def sync_revocations(self) -> None:
        """Take the revocations this node has not heard of (pub/sub delivers at most once:
        a node reconnecting when one was published missed it)."""
        if self._on_revoked is None:
            return
        now = time.time()
        for token_id, expires_at in (await self.revoked_tokens()).items():
            if token_id not in self._revoked and expires_at > now:
                self._revoked.add(token_id)
                await self._on_revoked(token_id, expires_at)


def _event_type(raw: Any) -> str:
    """What a refused event says it is, for the log (bounded: anyone may have written it)."""
    try:
        return str(json.loads(raw).get("type"))[:40]
    except (ValueError, TypeError, AttributeError):
        return "unreadable"

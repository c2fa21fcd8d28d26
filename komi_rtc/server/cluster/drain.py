"""SIGTERM on a cluster node: its cameras move to other nodes before it stops."""

from __future__ import annotations

import asyncio
import logging
import time

from ..camera_session import CameraSession
from .node import Cluster

logger = logging.getLogger(__name__)

DRAIN_LINGER_S = 4.0  # a drained node still forwards offers this long


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

    async def move(session: CameraSession) -> None:
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

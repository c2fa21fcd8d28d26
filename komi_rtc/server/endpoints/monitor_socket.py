"""`/ws/monitor`: the original monitor WebSocket, camera list and status updates."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import WSMsgType, web

from ...protocol.messages import ErrorMessage, encode
from ..app_keys import (
    CONFIG,
    LIVE,
    MONITOR_SOCKETS,
    REGISTRY,
    SLOTS,
    request_grant,
)
from ..limits import MessageRate

logger = logging.getLogger(__name__)


_MONITOR_WS_MESSAGE_BYTES = 64 * 1024  # /ws/monitor only sends; anything bigger is hostile


async def ws_monitor(request: web.Request) -> web.WebSocketResponse:
    release = request.app[SLOTS].acquire(request.remote)
    try:
        return await _serve_ws_monitor(request)
    finally:
        release()


async def _serve_ws_monitor(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=_MONITOR_WS_MESSAGE_BYTES)
    await ws.prepare(request)
    sockets = request.app[MONITOR_SOCKETS]
    sockets.add(ws)
    try:
        return await _pump_ws_monitor(request, ws)
    finally:
        sockets.discard(ws)


async def _pump_ws_monitor(
    request: web.Request, ws: web.WebSocketResponse
) -> web.WebSocketResponse:
    registry = request.app[REGISTRY]
    # ?scope=node: another node's status relay (cluster/relay.py), this node's cameras only
    queue = registry.watch(whole_cluster=request.query.get("scope") != "node")
    grant = request_grant(request)
    owner = object()
    request.app[LIVE].add(grant, owner, ws.close)
    rate = MessageRate(request.app[CONFIG].max_messages_per_s, f"/ws/monitor {request.remote}")

    async def pump() -> None:
        while True:
            await ws.send_str(await queue.get())

    sender = asyncio.ensure_future(pump())
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT and (rate.allow() or rate.refused == 1):
                error = "/ws/monitor only sends" if rate.refused == 0 else rate.error
                await ws.send_str(encode(ErrorMessage(error)))
    finally:
        request.app[LIVE].remove(grant, owner)
        registry.unwatch(queue)
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
    return ws

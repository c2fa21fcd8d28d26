"""Request bodies: read within a deadline (a slow client never holds a handler) and, for
REST calls, parsed as one JSON object with the protocol's hardened reader."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from ..protocol import InvalidRequest, KomiError, load_json

BODY_TIMEOUT_S = 10.0  # a body that trickles in slower than this is refused (408)


class BodyTimeout(KomiError):
    status = 408


async def read_body(request: web.Request) -> bytes:
    """The request body, or 408 when it does not arrive in time."""
    try:
        return await asyncio.wait_for(request.read(), BODY_TIMEOUT_S)
    except asyncio.TimeoutError:
        raise BodyTimeout(f"the request body did not arrive within {BODY_TIMEOUT_S:g} s") from None


async def json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; 400 when it is not one."""
    try:
        body = load_json(await read_body(request))
    except ValueError as exc:
        raise InvalidRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    return body

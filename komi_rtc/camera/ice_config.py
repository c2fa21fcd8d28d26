"""The ICE servers a camera peer uses: those the server hands out in `/config.json` (STUN,
and TURN with credentials minted for this peer's token), asked before each connection, as
the browser pages do, since minted credentials expire."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiortc import RTCConfiguration, RTCIceServer

from ..protocol import InvalidRequest
from ..protocol.rest import ClientConfig


class ConfigRefused(Exception):
    """`/config.json` answered 401 or 403: the token is not taken (`status`, `error`)."""

    def __init__(self, status: int, error: object) -> None:
        super().__init__(f"{status} {error}")
        self.status = status
        self.error = error


async def fetch_rtc_configuration(
    http: aiohttp.ClientSession, server: str, headers: dict[str, str], ssl: bool
) -> RTCConfiguration:
    """The server's ICE servers as aiortc takes them. A server without `/config.json` (404,
    an older one) gives none; a refusal raises ConfigRefused; any other answer that is not
    the documented shape raises aiohttp.ClientResponseError, retried like a lost server."""
    async with http.get(f"{server}/config.json", headers=headers, ssl=ssl) as response:
        if response.status == 404:
            return RTCConfiguration()
        body: Any = await response.json(content_type=None) if response.content_length else {}
        if response.status in (401, 403):
            raise ConfigRefused(
                response.status, body.get("error") if isinstance(body, dict) else None
            )
        if response.status != 200:
            response.raise_for_status()
        try:
            config = ClientConfig.from_wire(body)
        except InvalidRequest as exc:
            raise aiohttp.ClientResponseError(
                response.request_info, (), status=response.status, message=str(exc)
            ) from None
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(list(s.urls), username=s.username, credential=s.credential)
            for s in config.ice_servers
        ]
    )

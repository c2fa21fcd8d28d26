"""The landing page, the browser pages and what they read first: `/healthz`, `/config.json`,
`/exercises`."""

from __future__ import annotations

import logging
import time

from aiohttp import web

from ... import __version__
from ...analysis.catalog import PROFILES
from ...protocol import DATA_CHANNEL_LABEL
from ...protocol.rest import ClientConfig, ExerciseListing, Health, IceServer, ServiceStatus
from ..app_keys import (
    CATALOG,
    CONFIG,
    PAGE_STATUS,
    request_grant,
)
from ..middleware import Handler
from ..turn_credentials import turn_server_for

logger = logging.getLogger(__name__)


def _wants_json(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


async def index(request: web.Request) -> web.StreamResponse:
    """No data here: the landing page is public."""
    if _wants_json(request):
        access = "open" if request.app[CONFIG].open_access else "token"
        return web.json_response(ServiceStatus(__version__, access).to_wire())
    return web.FileResponse(request.app[CONFIG].web_root / "index.html")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response(Health().to_wire())


def page(name: str) -> Handler:
    async def page(request: web.Request) -> web.StreamResponse:
        status = request.get(PAGE_STATUS, 200)
        response = web.FileResponse(request.app[CONFIG].web_root / name, status=status)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"  # the token may be in the URL
        return response

    return page


def app_file(name: str, content_type: str) -> Handler:
    """A file of the installable camera app that the browser fetches without the page's
    token (a manifest is fetched without credentials, a service worker's update check too):
    public, holding nothing secret, with the content type browsers require (a service
    worker must be JavaScript, a manifest `application/manifest+json`). Served from the
    root, so the service worker may control /camera (a script's scope is at most its own
    folder); revalidated on each use, so a new version reaches installed apps."""

    async def app_file(request: web.Request) -> web.StreamResponse:
        response = web.FileResponse(request.app[CONFIG].web_root / name)
        response.content_type = content_type
        response.headers["Cache-Control"] = "no-cache"
        return response

    return app_file


async def client_config(request: web.Request) -> web.Response:
    """What the pages and camera peers need: ICE servers and the data channel label. With
    `--turn-url`, a TURN entry with credentials minted for this caller's token (the route
    takes only valid tokens); never cached, as it holds a credential."""
    config = request.app[CONFIG]
    servers = [IceServer((url,)) for url in config.ice_servers]
    turn = turn_server_for(config, request_grant(request), time.time())
    if turn is not None:
        servers.append(turn)
    response = web.json_response(ClientConfig(tuple(servers), DATA_CHANNEL_LABEL).to_wire())
    response.headers["Cache-Control"] = "no-store"
    return response


async def exercises(request: web.Request) -> web.Response:
    catalog = request.app[CATALOG]
    return web.json_response(ExerciseListing(catalog.listing(), list(PROFILES)).to_wire())

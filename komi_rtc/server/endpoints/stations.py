"""Stations over HTTP: list, set up, exercise, join links and calibration (docs/protocol.md,
"Stations")."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlencode

from aiohttp import web

from ...protocol.rest import (
    StationJoinLink,
    StationListing,
    parse_station_cameras,
    require_exercise_field,
)
from ..app_keys import (
    AUTHORITY,
    CLUSTER,
    CONFIG,
    REGISTRY,
    SIGNALING,
    request_grant,
)
from ..cluster import Cluster, NodeInfo, ask_node, forward, forwarded
from ..http_bodies import json_object, read_body
from ..station_calibration import board_image as serve
from ..station_calibration import calibrate, exported, install, install_toml
from ..stations import MAX_CAMERAS, validate_station_id
from ..tls import svg_qr
from .tokens import log_minted

logger = logging.getLogger(__name__)

TOML_TYPES = ("application/toml", "text/x-toml", "text/toml")


async def stations(request: web.Request) -> web.Response:
    local = [s.summary() for s in request.app[SIGNALING].stations.all()]
    cluster = request.app.get(CLUSTER)
    listed = cluster.all_stations(local) if cluster else local
    return web.json_response(StationListing(listed).to_wire())


def _station_id(request: web.Request) -> str:
    return validate_station_id(request.match_info["station_id"])


async def set_station(request: web.Request) -> web.Response:
    """`POST /stations/{station_id}` {"cameras": [...]}: who belongs to the station; cameras
    not streaming yet join when they come. In a cluster, a new station starts on the node
    streaming most of its cameras, and the others are moved there (`moving`)."""
    cameras = parse_station_cameras(await json_object(request), MAX_CAMERAS).cameras
    station_id = _station_id(request)
    signaling = request.app[SIGNALING]
    cluster = request.app.get(CLUSTER)
    if cluster is not None and not forwarded(request):
        known = {s.id for s in signaling.stations.all()}
        if station_id not in known:  # (a station on another node was passed on there)
            here = set(request.app[REGISTRY].ids())
            counts: dict[str, int] = {}  # node -> how many of the cameras it streams
            for camera_id in cameras:
                host = cluster.node_of_camera(camera_id)
                node = host.id if host else cluster.node_id if camera_id in here else None
                if node is not None:
                    counts[node] = counts.get(node, 0) + 1
            # the most cameras, this node on a tie, else the first listed camera's node
            best = max(counts, key=lambda n: (counts[n], n == cluster.node_id), default=None)
            if best is not None and best != cluster.node_id and best in cluster.view:
                return await forward(request, cluster.view[best], await read_body(request))
    live = {s.camera_id: s for s in request.app[REGISTRY].sessions()}
    station = signaling.stations.set_cameras(station_id, cameras, live)
    summary = station.summary()
    if cluster is not None:
        summary["moving"] = await _pull_cameras(request.app, cluster, station_id, station.wanted)
    return web.json_response(summary)


async def _pull_cameras(
    app: web.Application, cluster: Cluster, station_id: str, camera_ids: list[str]
) -> list[str]:
    """A station's cameras streaming on other nodes: each is ended there (between two
    reps) and, reconnecting, placed here. Returns the ids on their way."""
    elsewhere = {c: n for c in camera_ids if (n := cluster.node_of_camera(c)) is not None}
    if not elsewhere:
        return []
    await cluster.want_cameras(list(elsewhere))

    async def release(camera_id: str, node: NodeInfo) -> bool:
        path = f"/cluster/cameras/{camera_id}/release"
        status, answer = await ask_node(app, node, "POST", path, {"station": station_id})
        if status != 200:
            logger.warning(
                "[%s] station %s: node %s did not release it: %s %s",
                camera_id,
                station_id,
                node.id,
                status,
                answer,
            )
        return status == 200

    asked = await asyncio.gather(*(release(c, n) for c, n in elsewhere.items()))
    return [c for c, moving in zip(elsewhere, asked, strict=True) if moving]


async def station_join(request: web.Request) -> web.Response:
    """`GET /stations/{id}/join` (**extension**): a camera link that joins this station,
    with a fresh camera pairing token, and its QR code (SVG) for phones to scan."""
    station_id = _station_id(request)
    config = request.app[CONFIG]
    query = {"station": station_id}
    expires_at = None
    authority = request.app.get(AUTHORITY)
    token_id = None
    if authority is not None:  # a token for this station only, revoked with its maker's
        grant = request_grant(request)
        minted = authority.mint(
            "camera",
            None,
            config.link_ttl_s,
            station=station_id,
            parent=None if grant.is_admin else grant,
        )
        query["token"], expires_at = minted["token"], minted["expires_at"]
        token_id = minted["token_id"]
        log_minted(token_id, "camera", grant, station=station_id)
    url = f"{request.scheme}://{request.host}/camera?{urlencode(query)}"
    qr = await asyncio.get_running_loop().run_in_executor(None, svg_qr, url)
    return web.json_response(StationJoinLink(station_id, url, qr, expires_at, token_id).to_wire())


async def set_station_exercise(request: web.Request) -> web.Response:
    station = request.app[SIGNALING].stations.get(_station_id(request))
    body = require_exercise_field(await json_object(request))
    return web.json_response(station.set_exercise(body, "REST"))


async def calibrate_station(request: web.Request) -> web.Response:
    """`POST /stations/{id}/calibrate` {"method": "self"|"board", ...}: waits until done."""
    station = request.app[SIGNALING].stations.get(_station_id(request))
    return web.json_response(await calibrate(station, await json_object(request)))


async def set_station_calibration(request: web.Request) -> web.Response:
    """`POST`/`PUT /stations/{id}/calibration`: JSON as `GET /stations` shows it, or with
    `Content-Type: application/toml` a Pose2Sim/Anipose file (`?cameras=cam01:phone_a,...`
    maps its camera names to camera ids)."""
    station = request.app[SIGNALING].stations.get(_station_id(request))
    if request.content_type in TOML_TYPES:
        body = await read_body(request)
        return web.json_response(install_toml(station, body, request.query.get("cameras")))
    return web.json_response(install(station, await json_object(request)))


async def station_calibration(request: web.Request) -> web.Response:
    """`GET /stations/{id}/calibration`: TOML on `Accept: application/toml`, else JSON."""
    station = request.app[SIGNALING].stations.get(_station_id(request))
    as_toml = any(kind in request.headers.get("Accept", "") for kind in TOML_TYPES)
    text, content_type = exported(station, as_toml)
    return web.Response(text=text, content_type=content_type)


async def board_image(request: web.Request) -> web.Response:
    return await serve(request)

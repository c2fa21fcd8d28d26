"""The cluster's own endpoints: `GET /cluster` and the node-to-node camera release."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from ...protocol import KomiError, validate_camera_id
from ...protocol.rest import CameraReleased, ClusterNodes
from ..access import (
    Forbidden,
)
from ..app_keys import (
    CLUSTER,
    REGISTRY,
)
from ..cluster import forwarded
from ..http_bodies import json_object
from ..stations import validate_station_id

logger = logging.getLogger(__name__)


async def cluster_nodes(request: web.Request) -> web.Response:
    """`GET /cluster` (**extension**): the nodes, their capacity left and their cameras."""
    cluster = request.app.get(CLUSTER)
    if cluster is None:
        return web.json_response(ClusterNodes(None, []).to_wire())
    return web.json_response(ClusterNodes(cluster.node_id, cluster.nodes()).to_wire())


async def release_camera(request: web.Request) -> web.Response:
    """`POST /cluster/cameras/{camera}/release` {"station"}: between nodes only. A station on
    the asking node lists this camera: end it here between two reps, so it reconnects and
    is placed there (its entry node sees the station's list)."""
    if request.app.get(CLUSTER) is None or not forwarded(request):
        raise Forbidden("this endpoint is for the nodes of a cluster")
    camera_id = validate_camera_id(request.match_info["camera"])
    body = await json_object(request)
    station_id = validate_station_id(body.get("station"))
    session = request.app[REGISTRY].get(camera_id)
    if session.kind == "websocket":
        raise CameraStaysHere(f"{camera_id} streams over /ws/camera, which stays on its node")
    try:
        await asyncio.wait_for(session.between_reps.wait(), RELEASE_REP_WAIT_S)
    except asyncio.TimeoutError:
        logger.warning("[%s] still mid-rep: moved to station %s anyway", camera_id, station_id)
    logger.info("[%s] moving to station %s on another node", camera_id, station_id)
    await session.close(f"moving to station {station_id}: reconnect")
    return web.json_response(CameraReleased(camera_id).to_wire())


class CameraStaysHere(KomiError):
    status = 409


RELEASE_REP_WAIT_S = 5.0  # a camera moved to a station finishes the rep under way first

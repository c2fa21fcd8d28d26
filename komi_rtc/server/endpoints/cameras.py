"""Cameras: the list, their counters, their exercise and person, the WebRTC offer and the
original `/ws/camera`."""

from __future__ import annotations

import logging
import time

from aiohttp import web

from ...protocol import validate_camera_id
from ...protocol.rest import CameraListing, CameraStats, ServerStats, parse_person_request
from ..access import (
    Forbidden,
)
from ..app_keys import (
    CONFIG,
    DECODES,
    POOL,
    REGISTRY,
    SIGNALING,
    SLOTS,
    request_grant,
)
from ..camera_session import CameraSession
from ..http_bodies import json_object
from ..legacy_camera import handle_ws_camera

logger = logging.getLogger(__name__)


async def cameras(request: web.Request) -> web.Response:
    """Every camera of the cluster (of this server without --redis)."""
    return web.json_response(CameraListing(request.app[REGISTRY].listing()).to_wire())


async def stats(request: web.Request) -> web.Response:
    """Per-camera counters: frames received, analysed and skipped by design (newest wins)."""
    cameras = {}
    for session in request.app[REGISTRY].sessions():
        s = session.stats
        session.rate.refresh(time.monotonic())
        cameras[session.camera_id] = CameraStats(
            kind=session.kind,
            exercise=session.exercise,
            frames_received=s.frames_received,
            frames_analysed=s.frames_analysed,
            frames_skipped=s.frames_skipped,
            analysis_failures=s.analysis_failures,
            received_fps=session.rate.received_fps,
            analysed_fps=session.rate.analysed_fps,
            overloaded=session.rate.overloaded,
            monitors=session.monitor_count,
        )
    return web.json_response(ServerStats(cameras, request.app[POOL].size).to_wire())


def _session(request: web.Request) -> CameraSession:
    """The camera named in the path; 400 for a malformed id, 404 for an unknown one."""
    camera_id = validate_camera_id(request.match_info["camera_id"])
    return request.app[REGISTRY].get(camera_id)


async def set_camera_exercise(request: web.Request) -> web.Response:
    """`POST /cameras/{camera_id}/exercise` {"exercise": "squat", "profile": "standard"}."""
    session = _session(request)
    body = await json_object(request)
    return web.json_response(session.set_exercise(body, "REST").to_wire())


async def set_camera_person(request: web.Request) -> web.Response:
    """`POST /cameras/{camera_id}/person` {"person": "anna"} (null unties)."""
    session = _session(request)
    person = parse_person_request(await json_object(request)).person
    grant = request_grant(request)
    if not grant.may_tie(person):
        raise Forbidden(
            f"a {grant.describe()} may not tie its camera to {person}: ask for a camera "
            "link made for that person"
        )
    return web.json_response(session.set_person(person, "REST").to_wire())


async def offer(request: web.Request) -> web.Response:
    return await request.app[SIGNALING].handle_offer(request)


async def ws_camera(request: web.Request) -> web.WebSocketResponse:
    app = request.app
    release = app[SIGNALING].camera_slots.acquire(request.remote)
    try:
        return await _serve_ws_camera(request)
    finally:
        release()


async def _serve_ws_camera(request: web.Request) -> web.WebSocketResponse:
    app = request.app
    return await handle_ws_camera(
        request,
        request_grant(request),
        app[REGISTRY],
        app[SIGNALING].new_legacy_session,
        app[CONFIG],
        app[SLOTS],
        app[DECODES],
    )

"""The KOMI RTC server as an aiohttp app: `create_app(config)` and its HTTP/WebSocket endpoints."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from .. import __version__
from ..analysis.catalog import PROFILES, Catalog
from ..pose.worker_pool import PoseWorkerPool
from ..protocol import InvalidRequest, KomiError, validate_camera_id
from ..protocol.messages import ErrorBody, ErrorMessage, encode
from .camera_registry import CameraRegistry
from .camera_session import CameraSession
from .config import ServerConfig
from .frame_images import FrameImages
from .legacy_camera import handle_ws_camera
from .signaling import Signaling

logger = logging.getLogger(__name__)

REGISTRY = web.AppKey("registry", CameraRegistry)
SIGNALING = web.AppKey("signaling", Signaling)
CONFIG = web.AppKey("config", ServerConfig)
POOL = web.AppKey("pool", PoseWorkerPool)
CATALOG = web.AppKey("catalog", Catalog)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error a client can cause answers JSON `{"error": ...}` with its 4xx status."""
    try:
        return await handler(request)
    except KomiError as exc:
        logger.warning("%s %s -> %d: %s", request.method, request.path, exc.status, exc)
        return web.json_response(ErrorBody(str(exc)).to_wire(), status=exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        logger.info("%s %s -> %d", request.method, request.path, exc.status)
        return web.json_response(ErrorBody(exc.reason).to_wire(), status=exc.status)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        logger.exception("%s %s failed", request.method, request.path)
        return web.json_response(ErrorBody("internal server error").to_wire(), status=500)


def _wants_json(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


async def index(request: web.Request) -> web.StreamResponse:
    if _wants_json(request):
        registry = request.app[REGISTRY]
        return web.json_response(
            {
                "status": "ok",
                "service": "komi-rtc",
                "version": __version__,
                "cameras": registry.ids(),
            }
        )
    return web.FileResponse(request.app[CONFIG].web_root / "index.html")


def _page(name: str) -> Handler:
    async def page(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(request.app[CONFIG].web_root / name)

    return page


async def cameras(request: web.Request) -> web.Response:
    return web.json_response({"cameras": request.app[REGISTRY].ids()})


async def client_config(request: web.Request) -> web.Response:
    """What the pages need: ICE servers (STUN/TURN) and the data channel label."""
    config = request.app[CONFIG]
    return web.json_response(
        {"ice_servers": [{"urls": url} for url in config.ice_servers], "data_channel": "komi"}
    )


def _session(request: web.Request) -> CameraSession:
    """The camera named in the path; 400 for a malformed id, 404 for an unknown one."""
    camera_id = validate_camera_id(request.match_info["camera_id"])
    return request.app[REGISTRY].get(camera_id)


async def stats(request: web.Request) -> web.Response:
    """Per-camera counters: frames received, analysed and skipped by design (newest wins)."""
    cameras = {}
    for session in request.app[REGISTRY].sessions():
        s = session.stats
        session.rate.refresh(time.monotonic())
        cameras[session.camera_id] = {
            "kind": session.kind,
            "exercise": session.exercise,
            "frames_received": s.frames_received,
            "frames_analysed": s.frames_analysed,
            "frames_skipped": s.frames_skipped,
            "analysis_failures": s.analysis_failures,
            "received_fps": round(session.rate.received_fps, 1),
            "analysed_fps": round(session.rate.analysed_fps, 1),
            "overloaded": session.rate.overloaded,
            "monitors": session.monitor_count,
        }
    return web.json_response({"cameras": cameras, "workers": request.app[POOL].size})


async def exercises(request: web.Request) -> web.Response:
    catalog = request.app[CATALOG]
    return web.json_response({"exercises": catalog.listing(), "profiles": list(PROFILES)})


async def set_camera_exercise(request: web.Request) -> web.Response:
    """`POST /cameras/{camera_id}/exercise` {"exercise": "squat", "profile": "standard"}."""
    session = _session(request)
    try:
        body = await request.json()
    except ValueError:
        raise InvalidRequest("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    return web.json_response(session.set_exercise(body, "REST").to_wire())


async def offer(request: web.Request) -> web.Response:
    return await request.app[SIGNALING].handle_offer(request)


async def ws_monitor(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=20.0)
    await ws.prepare(request)
    registry = request.app[REGISTRY]
    queue = registry.watch()

    async def pump() -> None:
        while True:
            await ws.send_str(await queue.get())

    sender = asyncio.ensure_future(pump())
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await ws.send_str(encode(ErrorMessage("/ws/monitor only sends")))
    finally:
        registry.unwatch(queue)
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
    return ws


async def ws_camera(request: web.Request) -> web.WebSocketResponse:
    app = request.app
    return await handle_ws_camera(
        request,
        app[REGISTRY],
        app[SIGNALING].new_legacy_session,
        app[CONFIG].stall_timeout_s,
    )


def _start_demo_camera(config: ServerConfig) -> tuple[asyncio.Task[None], Any]:
    """A camera peer inside the server streaming a rendered person doing squats, with the
    exercise set, so a first look shows reps counted."""
    from ..camera.peer import CameraPeer
    from ..media.video_sources import demo_source

    scheme = "https" if config.https else "http"
    source = demo_source("demo", 640, 480, config.demo_fps)
    peer = CameraPeer(
        f"{scheme}://127.0.0.1:{config.port}",
        "demo_camera",
        source,
        fps=config.demo_fps,
        verify_tls=False,  # our own certificate, on loopback
        exercise=source.exercise,
    )
    task = asyncio.ensure_future(peer.run())
    task.set_name("demo_camera")
    logger.info(
        "[demo_camera] streaming %s at %g fps, %s analysed",
        source.description,
        config.demo_fps,
        source.exercise,
    )
    return task, peer


def create_app(config: ServerConfig, pool: PoseWorkerPool | None = None) -> web.Application:
    """Build the server. A given `pool` is used, not owned (tests share one)."""
    app = web.Application(middlewares=[json_errors], client_max_size=4 * 1024 * 1024)
    app[CONFIG] = config
    app[CATALOG] = catalog = Catalog(config.exercise_dir)  # CatalogError for a bad file
    registry = CameraRegistry()
    app[REGISTRY] = registry

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        owned = pool is None
        workers = pool or PoseWorkerPool(config.workers, config.model_path)
        if owned:
            await asyncio.get_running_loop().run_in_executor(None, workers.start)
        app[POOL] = workers
        app[SIGNALING] = Signaling(config, registry, workers, catalog)
        demo = _start_demo_camera(config) if config.demo_camera else None
        yield
        if demo is not None:
            demo_task, demo_peer = demo
            demo_task.cancel()
            await asyncio.gather(demo_task, return_exceptions=True)
            await demo_peer.close()
        await app[SIGNALING].close()
        await asyncio.gather(*(s.close("server shutting down") for s in registry.sessions()))
        if owned:
            await asyncio.get_running_loop().run_in_executor(None, workers.stop)

    app.cleanup_ctx.append(lifecycle)

    async def close_websockets(app: web.Application) -> None:
        await asyncio.gather(*(s.close("server shutting down") for s in registry.sessions()))

    app.on_shutdown.append(close_websockets)
    router = app.router
    router.add_get("/", index)
    router.add_get("/camera", _page("camera.html"))
    router.add_get("/monitor", _page("monitor.html"))
    router.add_get("/config.json", client_config)
    router.add_get("/favicon.ico", _page("favicon.svg"))
    router.add_get("/cameras", cameras)
    router.add_get("/exercises", exercises)
    router.add_get("/stats", stats)
    router.add_post("/cameras/{camera_id}/exercise", set_camera_exercise)
    images = FrameImages(app[REGISTRY])
    router.add_get("/latest_image/{camera_id}", images.latest_image)
    router.add_get("/get-image/{camera_id}", images.get_image)
    router.add_post("/offer", offer)
    router.add_get("/ws/monitor", ws_monitor)
    router.add_get("/ws/camera", ws_camera)
    router.add_static("/static/", config.web_root, show_index=False)
    return app

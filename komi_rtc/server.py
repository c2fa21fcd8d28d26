"""The KOMI RTC server: aiohttp app factory, HTTP/WebSocket endpoints and the command line."""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import os
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import cv2
from aiohttp import WSMsgType, web

from .camera_registry import CameraRegistry
from .camera_session import CameraSession
from .config import ServerConfig
from .legacy_camera import handle_ws_camera
from .pose_worker import PoseWorkerPool
from .protocol import InvalidRequest, KomiError, validate_camera_id
from .signaling import Signaling
from .tls import ensure_self_signed, lan_addresses, server_ssl_context, terminal_qr

logger = logging.getLogger(__name__)

__version__ = "0.1.0"

REGISTRY = web.AppKey("registry", CameraRegistry)
SIGNALING = web.AppKey("signaling", Signaling)
CONFIG = web.AppKey("config", ServerConfig)
POOL = web.AppKey("pool", PoseWorkerPool)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error a client can cause answers JSON `{"error": ...}` with its 4xx status."""
    try:
        return await handler(request)
    except KomiError as exc:
        logger.warning("%s %s -> %d: %s", request.method, request.path, exc.status, exc)
        return web.json_response({"error": str(exc)}, status=exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        logger.info("%s %s -> %d", request.method, request.path, exc.status)
        return web.json_response({"error": exc.reason}, status=exc.status)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        logger.exception("%s %s failed", request.method, request.path)
        return web.json_response({"error": "internal server error"}, status=500)


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
    camera_id = validate_camera_id(request.match_info["camera_id"])
    return request.app[REGISTRY].get(camera_id)


async def _newest_jpeg(session: CameraSession) -> bytes:
    """JPEG of the newest frame, encoded in a thread and cached per frame."""
    cached = session.jpeg_cache
    item = session.newest.latest
    if item is None:
        raise web.HTTPServiceUnavailable(reason="no frame received from this camera yet")
    version = session.newest.version
    if cached is not None and cached[0] == version:
        return cached[1]

    def encode() -> bytes:
        bgr = item.frame.to_ndarray(format="bgr24")
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 85])
        return data.tobytes()

    jpeg = await asyncio.get_running_loop().run_in_executor(None, encode)
    session.jpeg_cache = (version, jpeg)
    return jpeg


async def latest_image(request: web.Request) -> web.Response:
    session = _session(request)
    jpeg = await _newest_jpeg(session)
    item = session.newest.latest
    return web.json_response(
        {
            "camera_id": session.camera_id,
            "timestamp": item.received_wall if item else None,
            "image_data": base64.b64encode(jpeg).decode(),
            "pose_data": session.latest_pose_data,
        }
    )


async def get_image(request: web.Request) -> web.Response:
    jpeg = await _newest_jpeg(_session(request))
    return web.Response(body=jpeg, content_type="image/jpeg")


async def stats(request: web.Request) -> web.Response:
    """Per-camera counters: frames received, analysed and skipped by design (newest wins)."""
    cameras = {}
    for session in request.app[REGISTRY].sessions():
        s = session.stats
        session.rate.refresh(time.monotonic())
        cameras[session.camera_id] = {
            "kind": session.kind,
            "frames_received": s.frames_received,
            "frames_analysed": s.frames_analysed,
            "frames_skipped": s.frames_skipped,
            "analysis_failures": s.analysis_failures,
            "received_fps": round(session.rate.received_fps, 1),
            "analysed_fps": round(session.rate.analysed_fps, 1),
            "overloaded": session.rate.overloaded,
            "monitors": max(0, len(session.sinks) - (1 if session.own_sink else 0)),
        }
    return web.json_response({"cameras": cameras, "workers": request.app[POOL].size})


async def exercises(request: web.Request) -> web.Response:
    from .analysis.catalog import PROFILES, default_catalog

    return web.json_response({"exercises": default_catalog().listing(), "profiles": list(PROFILES)})


async def set_camera_exercise(request: web.Request) -> web.Response:
    """`POST /cameras/{camera_id}/exercise` {"exercise": "squat", "profile": "standard"}."""
    session = _session(request)
    try:
        body = await request.json()
    except ValueError:
        raise InvalidRequest("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    reply = session.analysis.apply_set_exercise(body)
    session.broadcast(reply)
    logger.info("[%s] exercise set to %s over REST", session.camera_id, reply["exercise"])
    return web.json_response(reply)


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
                await ws.send_str('{"type":"error","error":"/ws/monitor only sends"}')
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
    """A camera peer inside the server streaming the bundled person, for a first look."""
    from .camera import CameraPeer
    from .video_sources import open_source

    scheme = "https" if config.https else "http"
    peer = CameraPeer(
        f"{scheme}://127.0.0.1:{config.port}",
        "demo_camera",
        open_source("demo", 640, 480, config.demo_fps),
        fps=config.demo_fps,
        verify_tls=False,  # our own certificate, on loopback
    )
    task = asyncio.ensure_future(peer.run())
    task.set_name("demo_camera")
    logger.info("[demo_camera] streaming the bundled demo person at %g fps", config.demo_fps)
    return task, peer


def create_app(config: ServerConfig, pool: PoseWorkerPool | None = None) -> web.Application:
    """Build the server. A given `pool` is used, not owned (tests share one)."""
    app = web.Application(middlewares=[json_errors], client_max_size=4 * 1024 * 1024)
    app[CONFIG] = config
    registry = CameraRegistry()
    app[REGISTRY] = registry

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        owned = pool is None
        workers = pool or PoseWorkerPool(config.workers, config.model_path)
        if owned:
            await asyncio.get_running_loop().run_in_executor(None, workers.start)
        app[POOL] = workers
        app[SIGNALING] = Signaling(config, registry, workers)
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
    router.add_get("/latest_image/{camera_id}", latest_image)
    router.add_get("/get-image/{camera_id}", get_image)
    router.add_post("/offer", offer)
    router.add_get("/ws/monitor", ws_monitor)
    router.add_get("/ws/camera", ws_camera)
    router.add_static("/static/", config.web_root, show_index=False)
    return app


def parse_args(argv: list[str] | None = None) -> ServerConfig:
    parser = argparse.ArgumentParser(
        prog="komi-rtc", description="KOMI RTC server: live pose analysis of WebRTC cameras."
    )
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (0.0.0.0)")
    parser.add_argument("--port", type=int, default=8000, help="port (8000)")
    parser.add_argument(
        "--workers", type=int, default=None, help="pose worker processes (one per core)"
    )
    parser.add_argument(
        "--model",
        default=None,
        metavar="FILE.task",
        help="a MediaPipe pose landmarker .task file (default: bundled BlazePose full)",
    )
    parser.add_argument(
        "--analysis-fps",
        type=float,
        default=None,
        help="analyse at most this many frames a second per camera (default: all it can)",
    )
    parser.add_argument(
        "--stall-timeout",
        type=float,
        default=5.0,
        help="remove a camera that sends no video for this many seconds (5)",
    )
    parser.add_argument(
        "--ice-server",
        action="append",
        default=[],
        metavar="URL",
        help="STUN/TURN server for peers outside the LAN (repeatable)",
    )
    parser.add_argument("--inject-delay-ms", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--stock-jitter-buffer",
        action="store_true",
        help="keep aiortc's jitter buffer (a frame is released one frame late); for comparison",
    )
    parser.add_argument(
        "--reencode-monitors",
        action="store_true",
        help="re-encode the decoded video for each monitor instead of forwarding the "
        "camera's own VP8 frames (costs about 5%% of a core per monitor); for comparison",
    )
    parser.add_argument(
        "--https",
        action="store_true",
        help="serve HTTPS (phones need it for the camera) with a self-signed certificate",
    )
    parser.add_argument("--cert", default=None, help="TLS certificate (PEM) instead of one made")
    parser.add_argument("--key", default=None, help="TLS private key (PEM) for --cert")
    parser.add_argument(
        "--state-dir",
        default=str(Path.home() / ".komi_rtc"),
        help="where the generated certificate is kept (~/.komi_rtc)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="also stream the bundled demo person as camera 'demo_camera'",
    )
    parser.add_argument("--debug", action="store_true", help="verbose logging")
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.model and not os.path.isfile(args.model):
        parser.error(f"--model: no such file: {args.model}")
    if bool(args.cert) != bool(args.key):
        parser.error("--cert and --key go together")
    for path in (args.cert, args.key):
        if path and not os.path.isfile(path):
            parser.error(f"no such file: {path}")
    return ServerConfig(
        host=args.host,
        port=args.port,
        workers=args.workers,
        model_path=args.model,
        analysis_fps=args.analysis_fps,
        stall_timeout_s=args.stall_timeout,
        ice_servers=tuple(args.ice_server),
        inject_delay_ms=args.inject_delay_ms,
        debug=args.debug,
        demo_camera=args.demo,
        early_frame_release=not args.stock_jitter_buffer,
        forward_video=not args.reencode_monitors,
        https=args.https or bool(args.cert),
        cert_file=args.cert,
        key_file=args.key,
        state_dir=Path(args.state_dir),
    )


def configure_logging(debug: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not debug:
        for noisy in ("aioice", "aiortc", "aiohttp.access"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def _ssl_context(config: ServerConfig) -> ssl.SSLContext | None:
    if not config.https:
        return None
    if config.cert_file and config.key_file:
        cert, key = Path(config.cert_file), Path(config.key_file)
    else:
        cert, key = ensure_self_signed(config.state_dir)
    return server_ssl_context(cert, key)


def _announce(config: ServerConfig) -> str:
    scheme = "https" if config.https else "http"
    lines = [f"KOMI RTC server: {scheme}://localhost:{config.port}/  (Ctrl-C stops)"]
    lines.append(f"  monitor: {scheme}://localhost:{config.port}/monitor")
    lan = lan_addresses() if config.host in ("0.0.0.0", "::") else [config.host]
    for address in lan:
        lines.append(
            f"  from a phone or laptop on this network: {scheme}://{address}:{config.port}/camera"
        )
    if lan:
        camera_url = f"{scheme}://{lan[0]}:{config.port}/camera"
        if config.https:
            lines.append(f"Scan to open the camera page on a phone ({camera_url}):")
            lines.append(terminal_qr(camera_url))
            if not config.cert_file:
                lines.append(
                    "  The certificate is self-signed: the phone warns once; choose "
                    "'Advanced' then 'Proceed' (Safari: 'Show Details', 'visit this website')."
                )
        else:
            lines.append("  Phones need HTTPS for the camera: restart with --https.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    configure_logging(config.debug)
    context = _ssl_context(config)
    app = create_app(config)

    def announce(_: Any) -> None:
        print(_announce(config), flush=True)

    web.run_app(app, host=config.host, port=config.port, ssl_context=context, print=announce)


if __name__ == "__main__":
    main()

"""`python -m komi_rtc.server` (`komi-rtc`): options, logging, TLS and the start banner."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import socket
import ssl
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from ..analysis.catalog import CatalogError
from .app import create_app
from .config import ServerConfig
from .tls import ensure_self_signed, lan_addresses, server_ssl_context, terminal_qr


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
        help="also stream a rendered person doing squats as camera 'demo_camera', with the "
        "squat analysed (a first look at rep counting)",
    )
    parser.add_argument(
        "--exercise-dir",
        default=None,
        metavar="DIR",
        help="also offer the custom exercises (*.json) in DIR, as made by "
        "`python -m komi_rtc.analysis derive`",
    )
    parser.add_argument("--debug", action="store_true", help="verbose logging")
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.model and not os.path.isfile(args.model):
        parser.error(f"--model: no such file: {args.model}")
    if args.exercise_dir and not os.path.isdir(args.exercise_dir):
        parser.error(f"--exercise-dir: no such folder: {args.exercise_dir}")
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
        exercise_dir=Path(args.exercise_dir) if args.exercise_dir else None,
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
    port = config.port
    lines = [f"KOMI RTC server: {scheme}://localhost:{port}/  (Ctrl-C stops)"]
    lines.append(f"  monitor: {scheme}://localhost:{port}/monitor")
    lines.append(f"  camera on this machine: {scheme}://localhost:{port}/camera")
    lan = lan_addresses() if config.host in ("0.0.0.0", "::") else [config.host]
    lan = [a for a in lan if a not in ("127.0.0.1", "localhost", "::1")]
    if not config.https:
        # browsers give a page the camera only over HTTPS or on localhost, laptops included
        if lan:
            lines.append(f"  monitor from another device: http://{lan[0]}:{port}/monitor")
        lines.append(
            "  Cameras on phones or other computers need HTTPS (browsers allow the camera "
            "only on https:// or localhost): restart with --https."
        )
        return "\n".join(lines)
    for address in lan:
        lines.append(
            f"  camera from a phone or laptop on this network: https://{address}:{port}/camera"
        )
    if lan:
        camera_url = f"https://{lan[0]}:{port}/camera"
        lines.append(f"Scan to open the camera page on a phone ({camera_url}):")
        lines.append(terminal_qr(camera_url))
        if not config.cert_file:
            lines.append(
                "  The certificate is self-signed: each device warns once; choose "
                "'Advanced' then 'Proceed' (Safari: 'Show Details', 'visit this website')."
            )
    return "\n".join(lines)


def _port_problem(host: str, port: int) -> str | None:
    """Why the server cannot listen there, checked before anything starts."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return (
                f"port {port} is already in use (another KOMI server?); choose another with --port"
            )
        return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    configure_logging(config.debug)
    problem = _port_problem(config.host, config.port)
    if problem:
        print(f"komi-rtc: error: {problem}", file=sys.stderr)
        raise SystemExit(2)
    context = _ssl_context(config)
    try:
        app = create_app(config)
    except CatalogError as exc:
        print(f"komi-rtc: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None

    def announce(_: Any) -> None:
        print(_announce(config), flush=True)

    web.run_app(app, host=config.host, port=config.port, ssl_context=context, print=announce)

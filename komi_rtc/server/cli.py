"""`python -m komi_rtc.server` (`komi-rtc`): options, logging, TLS and the start banner."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import socket
import ssl
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from .. import __version__
from ..analysis.catalog import CatalogError
from ..history.store import DatabaseUnavailable, check_database, default_url
from ..pose.estimator import ModelError
from ..pose.model_choice import DEFAULT_POSE_MODEL, POSE_MODELS, landmark_model_path
from . import log_safety
from .access import ADMIN_TOKEN_FILE, TokenAuthority, load_admin_token
from .app import create_app
from .app_keys import AUTHORITY, CONFIG, POOL
from .cluster import ClusterUnavailable, redacted
from .config import ServerConfig
from .option_sources import (
    OptionError,
    OptionSource,
    apply_sources,
    config_path,
    describe,
    environ_of,
    given_on_command_line,
)
from .tls import ensure_self_signed, lan_addresses, server_ssl_context, terminal_qr
from .turn_credentials import TurnSecretError, check_turn_urls, load_turn_secret

logger = logging.getLogger(__name__)
_DEFAULTS = ServerConfig()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="komi-rtc",
        description="KOMI RTC server: live pose analysis of WebRTC cameras. Every option may "
        "also come from $KOMI_<OPTION> (e.g. KOMI_MAX_CAMERAS=16) or a TOML file (--config); "
        "the command line wins, then the environment, then the file. "
        "`komi-rtc config [options]` prints the effective configuration; `komi-rtc links` "
        "prints fresh monitor and camera links for a running server.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE.toml",
        help="read options from this TOML file (keys as the options without --, e.g. "
        "max-cameras = 16); also $KOMI_CONFIG",
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
        help="a MediaPipe pose landmarker .task file of your own; looks for up to 4 people "
        "on every frame (default: --pose-model, one person tracked)",
    )
    parser.add_argument(
        "--pose-model",
        default=DEFAULT_POSE_MODEL,
        choices=POSE_MODELS,
        help=f"BlazePose model ({DEFAULT_POSE_MODEL}): lite is faster and ships in the package, "
        "full comes with mediapipe, heavy needs scripts/setup.sh --heavy",
    )
    parser.add_argument(
        "--keyframe-interval",
        type=int,
        default=3,
        metavar="N",
        help="run the model at most N frames apart while the person moves, tracking "
        "keypoints by optical flow in between (3); 1: the model on every frame",
    )
    parser.add_argument(
        "--legacy-pose",
        action="store_true",
        help="MediaPipe's legacy solutions API, as before version 0.4 (it assumes 30 fps); "
        "for comparison",
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
        help="where the server keeps its state: the admin token, revoked and minted tokens, "
        "the SQLite history and the generated certificate (~/.komi_rtc)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="also stream a rendered person doing squats as camera 'demo_camera' (in a "
        "cluster 'demo_<node id>'), with the squat analysed (a first look at rep counting)",
    )
    parser.add_argument(
        "--exercise-dir",
        default=None,
        metavar="DIR",
        help="also offer the custom exercises (*.json) in DIR, as made by "
        "`python -m komi_rtc.analysis derive`",
    )
    parser.add_argument(
        "--db",
        default=None,
        metavar="URL",
        help="history database (SQLAlchemy URL), e.g. postgresql+psycopg://user:pw@host/komi "
        "(default: SQLite history.sqlite3 in the state dir)",
    )
    cluster = parser.add_argument_group(
        "cluster",
        "Several servers as one (README, 'Running a cluster'): any node answers for all, "
        "new cameras go to the node with the most capacity left.",
    )
    cluster.add_argument(
        "--redis",
        default=None,
        metavar="URL",
        help="join the cluster that shares this Redis, e.g. redis://10.0.0.5:6379/0, or "
        "through Redis Sentinel: redis+sentinel://10.0.0.5:26379,10.0.0.6:26379/komi "
        "(the Sentinels, then the name they monitor the master under)",
    )
    cluster.add_argument(
        "--public-url",
        default=None,
        metavar="URL",
        help="how peers and the other nodes reach this node, e.g. http://10.0.0.11:8000 "
        "(default: this machine's LAN address and --port)",
    )
    cluster.add_argument(
        "--node-id", default=None, help="this node's name in the cluster (default: random)"
    )
    cluster.add_argument(
        "--drain-timeout",
        type=float,
        default=_DEFAULTS.drain_timeout_s,
        metavar="S",
        help="on SIGTERM, move the cameras to other nodes for at most this long (20)",
    )
    access = parser.add_argument_group(
        "access control",
        "Every endpoint but the landing page needs a token (README, 'Security'). The admin "
        "token comes from $KOMI_ADMIN_TOKEN, else --admin-token-file, else one generated in "
        "the state dir on first start.",
    )
    access.add_argument(
        "--admin-token-file", default=None, metavar="FILE", help="read the admin token here"
    )
    access.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="also accept requests from pages on this origin, e.g. https://gym.example "
        "(repeatable; the server's own origin is always accepted)",
    )
    access.add_argument(
        "--link-ttl",
        type=float,
        default=_DEFAULTS.link_ttl_s / 3600,
        metavar="HOURS",
        help="how long the camera and monitor links printed at start stay valid (168)",
    )
    access.add_argument(
        "--open",
        action="store_true",
        help="NO access control: anyone who reaches the server sees every camera. Local "
        "development only",
    )
    turn = parser.add_argument_group(
        "TURN",
        "A TURN server (coturn with use-auth-secret) relays for cameras behind NAT. Each page "
        "or camera peer with a valid token gets credentials minted from the shared secret, "
        "which comes from $KOMI_TURN_SECRET, else --turn-secret-file (README, 'TURN').",
    )
    turn.add_argument(
        "--turn-url",
        action="append",
        default=[],
        metavar="URL",
        help="the TURN server as peers reach it, e.g. turn:turn.clinic.example:3478 or "
        "turns:turn.clinic.example:5349?transport=tcp (repeatable)",
    )
    turn.add_argument(
        "--turn-secret-file",
        default=None,
        metavar="FILE",
        help="read coturn's static-auth-secret here (default: $KOMI_TURN_SECRET)",
    )
    turn.add_argument(
        "--turn-ttl",
        type=float,
        default=_DEFAULTS.turn_ttl_s / 3600,
        metavar="HOURS",
        help="how long minted TURN credentials stay valid (12; never past the token's expiry)",
    )
    limits = parser.add_argument_group("limits", "What any one client can make the server hold.")
    for flag, field_name, kind, what in (
        ("--max-body-bytes", "max_body_bytes", int, "HTTP request body"),
        ("--max-ws-message-bytes", "max_ws_message_bytes", int, "one /ws/camera message"),
        ("--max-messages-per-s", "max_messages_per_s", float, "messages a second a connection"),
        ("--max-cameras", "max_cameras", int, "cameras on this server"),
        ("--max-cameras-per-address", "max_cameras_per_address", int, "cameras of one address"),
        ("--max-monitors-per-camera", "max_monitors_per_camera", int, "monitors of one camera"),
        ("--connect-timeout", "connect_timeout_s", float, "seconds a peer may take to connect"),
        ("--max-concurrent-offers", "max_concurrent_offers", int, "offers negotiating at once"),
        (
            "--max-connections-per-address",
            "max_connections_per_address",
            int,
            "peers and WebSockets from one address",
        ),
        ("--max-frame-side", "max_frame_side", int, "pixels a side of a frame or JPEG"),
        ("--max-frame-pixels", "max_frame_pixels", int, "pixels of a frame or JPEG"),
        ("--max-url-chars", "max_url_chars", int, "characters of a request URL"),
    ):
        default = getattr(_DEFAULTS, field_name)
        shown = f"{default:,}" if kind is int else f"{default:g}"
        limits.add_argument(flag, type=kind, default=default, help=f"{what} ({shown}; 0: no limit)")
    parser.add_argument("--debug", action="store_true", help="verbose logging (--log-level debug)")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=LOG_LEVELS,
        help="what the log says: debug, info (start, stop, connections: the default), "
        "warning, error",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="log warnings and errors only (--log-level warning)"
    )
    return parser


def _options(
    argv: list[str] | None, environ: Mapping[str, str] | None = None
) -> tuple[argparse.ArgumentParser, argparse.Namespace, dict[str, OptionSource]]:
    """The options from the command line, the environment and the --config file."""
    parser = _parser()
    arguments = sys.argv[1:] if argv is None else list(argv)
    env = environ_of(environ)
    try:
        sources = apply_sources(parser, env, config_path(arguments, env))
    except OptionError as exc:
        parser.error(str(exc))
    return parser, parser.parse_args(arguments), sources


def parse_args(
    argv: list[str] | None = None, environ: Mapping[str, str] | None = None
) -> ServerConfig:
    parser, args, _ = _options(argv, environ)
    return _config(parser, args, environ_of(environ))


def _redact(dest: str, value: Any) -> Any:
    """Secrets never printed: a database's or Redis's password."""
    if isinstance(value, str) and dest in ("db", "redis") and "@" in value:
        return redacted(value)
    return value


def print_config(argv: list[str], environ: Mapping[str, str] | None = None) -> int:
    """`komi-rtc config [options]`: the effective configuration and where each value came
    from (command line > environment > file > default), secrets hidden."""
    parser, args, sources = _options(argv, environ)
    _config(parser, args, environ_of(environ))  # the same checks as a start
    named = given_on_command_line(parser, argv)
    print(describe(args, sources, named, _redact))
    return 0


def print_links(argv: list[str], environ: Mapping[str, str] | None = None) -> int:
    """`komi-rtc links [options]`: fresh monitor and camera links (and the camera link's QR
    code) from a running server, minted with the admin token through its POST /tokens, so
    the server lists and can revoke them."""
    import json
    import urllib.error
    import urllib.request

    parser, args, _ = _options(argv, environ)
    config = _config(parser, args, environ_of(environ))
    authority = None
    if not config.open_access:
        token = load_admin_token(config.admin_token, config.admin_token_file, config.state_dir)
        authority = token
    scheme = "https" if config.https else "http"
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
    base = f"{scheme}://{host}:{config.port}"
    links = {}
    for role in ("monitor", "camera"):
        if authority is None:
            links[role] = ""
            continue
        body = json.dumps({"role": role, "ttl_s": config.link_ttl_s}).encode()
        request = urllib.request.Request(
            f"{base}/tokens",
            data=body,
            headers={"Authorization": f"Bearer {authority}", "Content-Type": "application/json"},
        )
        try:
            context = ssl._create_unverified_context() if config.https else None  # our own cert
            with urllib.request.urlopen(request, timeout=10, context=context) as response:
                links[role] = "?token=" + json.loads(response.read())["token"]
        except urllib.error.HTTPError as exc:
            print(f"komi-rtc links: the server at {base} refused: {exc.code}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"komi-rtc links: no server answers at {base} ({exc})", file=sys.stderr)
            return 2
    # the address people open: the node's public URL, else (listening on every address) the
    # LAN one, else the one it listens on
    lan = lan_addresses() if config.host in ("0.0.0.0", "::", "") else []
    shown = config.public_url or (f"{scheme}://{lan[0]}:{config.port}" if lan else base)
    print(f"monitor: {shown}/monitor{links['monitor']}")
    print(f"camera:  {shown}/camera{links['camera']}")
    print(terminal_qr(f"{shown}/camera{links['camera']}"))
    return 0


def _config(
    parser: argparse.ArgumentParser, args: argparse.Namespace, environ: Mapping[str, str]
) -> ServerConfig:
    if args.admin_token_file and not os.path.isfile(args.admin_token_file):
        parser.error(f"--admin-token-file: no such file: {args.admin_token_file}")
    if args.admin_token_file and environ.get("KOMI_ADMIN_TOKEN"):
        # the contract reads the environment first; a file given beside it would be ignored
        # without a word, so neither wins: the person says which one they mean
        parser.error(
            "both $KOMI_ADMIN_TOKEN and --admin-token-file give an admin token: "
            "unset KOMI_ADMIN_TOKEN or drop --admin-token-file"
        )
    for origin in args.allow_origin:
        if not origin.startswith(("http://", "https://")) or origin.count("/") != 2:
            parser.error(f"--allow-origin {origin!r}: give scheme://host[:port], no path")
    if args.link_ttl <= 0:
        parser.error("--link-ttl must be positive")
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.model and not os.path.isfile(args.model):
        parser.error(f"--model: no such file: {args.model}")
    if args.keyframe_interval < 1:
        parser.error("--keyframe-interval must be at least 1")
    if not args.model and not args.legacy_pose:
        try:
            landmark_model_path(args.pose_model)
        except ModelError as exc:
            parser.error(f"--pose-model {args.pose_model}: {exc}")
    if args.exercise_dir and not os.path.isdir(args.exercise_dir):
        parser.error(f"--exercise-dir: no such folder: {args.exercise_dir}")
    if args.public_url and not args.public_url.startswith(("http://", "https://")):
        parser.error(f"--public-url {args.public_url!r}: give http(s)://host:port")
    if (args.public_url or args.node_id) and not args.redis:
        parser.error("--public-url and --node-id need --redis")
    plain_id = args.node_id and args.node_id.replace("_", "").replace("-", "").isalnum()
    if args.node_id and not (len(args.node_id) <= 64 and plain_id):
        parser.error("--node-id: letters, digits, '-' and '_' (at most 64)")
    allow_origins = tuple(o.rstrip("/").lower() for o in args.allow_origin)
    if args.public_url:  # the other nodes ask this one by that name
        allow_origins += (args.public_url.rstrip("/").lower(),)
    if bool(args.cert) != bool(args.key):
        parser.error("--cert and --key go together")
    for path in (args.cert, args.key):
        if path and not os.path.isfile(path):
            parser.error(f"no such file: {path}")
    turn_secret = _turn_secret(parser, args, environ)
    return ServerConfig(
        host=args.host,
        port=args.port,
        workers=args.workers,
        model_path=args.model,
        pose_model=args.pose_model,
        legacy_pose=args.legacy_pose,
        keyframe_interval=args.keyframe_interval,
        analysis_fps=args.analysis_fps,
        stall_timeout_s=args.stall_timeout,
        ice_servers=tuple(args.ice_server),
        turn_urls=tuple(args.turn_url),
        turn_secret=turn_secret,
        turn_ttl_s=args.turn_ttl * 3600,
        inject_delay_ms=args.inject_delay_ms,
        debug=args.debug,
        log_level="debug" if args.debug else "warning" if args.quiet else args.log_level,
        demo_camera=args.demo,
        exercise_dir=Path(args.exercise_dir) if args.exercise_dir else None,
        early_frame_release=not args.stock_jitter_buffer,
        forward_video=not args.reencode_monitors,
        https=args.https or bool(args.cert),
        cert_file=args.cert,
        key_file=args.key,
        state_dir=Path(args.state_dir),
        db_url=args.db,
        admin_token=environ.get("KOMI_ADMIN_TOKEN") or None,
        admin_token_file=Path(args.admin_token_file) if args.admin_token_file else None,
        open_access=args.open,
        allow_origins=allow_origins,
        redis_url=args.redis,
        public_url=args.public_url,
        node_id=args.node_id,
        drain_timeout_s=args.drain_timeout,
        link_ttl_s=args.link_ttl * 3600,
        max_body_bytes=args.max_body_bytes,
        max_ws_message_bytes=args.max_ws_message_bytes,
        max_messages_per_s=args.max_messages_per_s,
        max_cameras=args.max_cameras,
        max_cameras_per_address=args.max_cameras_per_address,
        max_monitors_per_camera=args.max_monitors_per_camera,
        connect_timeout_s=args.connect_timeout,
        max_concurrent_offers=args.max_concurrent_offers,
        max_connections_per_address=args.max_connections_per_address,
        max_frame_side=args.max_frame_side,
        max_frame_pixels=args.max_frame_pixels,
        max_url_chars=args.max_url_chars,
    )


def _turn_secret(
    parser: argparse.ArgumentParser, args: argparse.Namespace, environ: Mapping[str, str]
) -> str | None:
    """The TURN secret, read only when --turn-url asks for it; errors said at start."""
    explicit = environ.get("KOMI_TURN_SECRET") or None
    if not args.turn_url:
        if explicit or args.turn_secret_file:
            parser.error("a TURN secret without --turn-url: give the TURN server's address")
        return None
    problem = check_turn_urls(args.turn_url)
    if problem:
        parser.error(problem)
    if args.turn_ttl <= 0:
        parser.error("--turn-ttl must be positive")
    if explicit and args.turn_secret_file:
        parser.error(
            "both $KOMI_TURN_SECRET and --turn-secret-file give a TURN secret: "
            "unset KOMI_TURN_SECRET or drop --turn-secret-file"
        )
    secret_file = Path(args.turn_secret_file) if args.turn_secret_file else None
    try:
        return load_turn_secret(explicit, secret_file)
    except TurnSecretError as exc:
        parser.error(str(exc))


LOG_LEVELS = ("debug", "info", "warning", "error")


def configure_logging(level: str) -> None:
    debug = level == "debug"
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not debug:
        for noisy in ("aioice", "aiortc", "aiohttp.access", "alembic"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    log_safety.install(logging.getLogger().handlers)


def keep_admin_token_out_of_logs(app: web.Application) -> None:
    """The log filter (configure_logging) also hides the admin token wherever it appears;
    it is known once the app is made (from the environment, a file or the state dir)."""
    authority = app.get(AUTHORITY)
    if authority is not None:
        log_safety.install(logging.getLogger().handlers, secrets=[authority.admin_token])
    turn_secret = app[CONFIG].turn_secret
    if turn_secret:
        log_safety.install(logging.getLogger().handlers, secrets=[turn_secret])


def _ssl_context(config: ServerConfig) -> ssl.SSLContext | None:
    if not config.https:
        return None
    if config.cert_file and config.key_file:
        cert, key = Path(config.cert_file), Path(config.key_file)
    else:
        cert, key = ensure_self_signed(config.state_dir)
    return server_ssl_context(cert, key)


_OPEN_WARNING = """\
!!! ACCESS CONTROL IS OFF (--open) !!!
!!! Anyone who can reach this server can list and watch every camera, read every pose
!!! stream and change exercises. Use --open only on your own machine, for development."""


class Links:
    """The tokens in the start banner's links: a monitor token and a camera pairing token
    (unbound: each phone that scans it streams under its own id)."""

    def __init__(self, authority: TokenAuthority | None, ttl_s: float) -> None:
        self.monitor = self.camera = ""
        if authority is not None:
            self.monitor = "?token=" + authority.mint("monitor", None, ttl_s)["token"]
            self.camera = "?token=" + authority.mint("camera", None, ttl_s)["token"]


def _admin_token_source(config: ServerConfig, authority: TokenAuthority | None = None) -> str:
    if config.redis_url and authority is not None and config.admin_token:
        return "admin token: the one in $KOMI_ADMIN_TOKEN (the cluster's)"
    if config.admin_token:
        return "admin token: the one in $KOMI_ADMIN_TOKEN"
    if config.admin_token_file:
        return f"admin token: the one in {config.admin_token_file}"
    path = config.state_dir / ADMIN_TOKEN_FILE
    if _made_by_this_run(path):  # shown once, the start that made it; then where it is
        return (
            f"admin token (new; keep it secret; it mints links with POST /tokens): "
            f"{_read(path)}\n    kept in {path}"
        )
    return f"admin token: kept in {path} (keep it secret; `komi-rtc links` prints new links)"


_STARTED = time.time()


def _made_by_this_run(path: Path) -> bool:
    try:
        return path.stat().st_mtime >= _STARTED - 1.0
    except OSError:
        return False


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return "(unreadable)"


def _announce(config: ServerConfig, links: Links, authority: TokenAuthority | None = None) -> str:
    scheme = "https" if config.https else "http"
    port = config.port
    lines = [f"KOMI RTC server: {scheme}://localhost:{port}/  (Ctrl-C stops)"]
    if config.redis_url:
        lines.append(
            f"  cluster node at {config.public_url or '(its LAN address)'}, joined through "
            f"{redacted(config.redis_url)} (SIGTERM moves its cameras to other nodes)"
        )
    if config.open_access:
        lines.insert(0, _OPEN_WARNING)
    else:
        lines.append("  " + _admin_token_source(config, authority))
        days = config.link_ttl_s / 86400
        lines.append(
            f"  The links below carry access tokens valid {days:g} days: share them only with"
        )
        lines.append(
            "  the people they are for (a new start prints new ones; --open: none needed)."
        )
    lines.append(f"  monitor: {scheme}://localhost:{port}/monitor{links.monitor}")
    lines.append(f"  camera on this machine: {scheme}://localhost:{port}/camera{links.camera}")
    lan = lan_addresses() if config.host in ("0.0.0.0", "::") else [config.host]
    lan = [a for a in lan if a not in ("127.0.0.1", "localhost", "::1")]
    if config.https and lan:
        lines.append(
            f"  monitor from another device: https://{lan[0]}:{port}/monitor{links.monitor}"
        )
    if not config.https:
        # browsers give a page the camera only over HTTPS or on localhost, laptops included
        if lan:
            lines.append(
                f"  monitor from another device: http://{lan[0]}:{port}/monitor{links.monitor}"
            )
        lines.append(
            "  Cameras on phones or other computers need HTTPS (browsers allow the camera "
            "only on https:// or localhost): restart with --https."
        )
        return "\n".join(lines)
    for address in lan:
        lines.append(
            "  camera from a phone or laptop on this network: "
            f"https://{address}:{port}/camera{links.camera}"
        )
    if lan:
        camera_url = f"https://{lan[0]}:{port}/camera{links.camera}"
        lines.append(f"Scan to open the camera page on a phone ({camera_url}):")
        lines.append(terminal_qr(camera_url))
        if not config.cert_file:
            lines.append(
                "  The certificate is self-signed: each device warns once; choose "
                "'Advanced' then 'Proceed' (Safari: 'Show Details', 'visit this website')."
            )
    return "\n".join(lines)


def _started(config: ServerConfig, workers: int) -> list[str]:
    model = config.pose_settings.describe()
    database = redacted(config.db_url) if config.db_url else "SQLite in the state dir"
    lines = [
        f"  pose: {workers} worker process(es), {model}",
        f"  history: {database}; state: {config.state_dir}",
    ]
    if config.turn_urls:  # the secret is never shown, only where credentials point
        lines.append(
            f"  TURN: {', '.join(config.turn_urls)}; each link gets its own credentials, "
            f"valid {config.turn_ttl_s / 3600:g} h"
        )
    return lines


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
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == ["config"]:
        raise SystemExit(print_config(arguments[1:]))
    if arguments[:1] == ["links"]:
        raise SystemExit(print_links(arguments[1:]))
    config = parse_args(arguments)
    configure_logging(config.log_level)
    problem = _port_problem(config.host, config.port)
    if problem:
        print(f"komi-rtc: error: {problem}", file=sys.stderr)
        raise SystemExit(2)
    context = _ssl_context(config)
    try:  # before any worker starts: a bad --db is one line, not a half-started server
        check_database(config.db_url or default_url(config.state_dir))
    except DatabaseUnavailable as exc:
        print(f"komi-rtc: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        app = create_app(config)
    except (CatalogError, ValueError, OSError, ClusterUnavailable) as exc:
        print(f"komi-rtc: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    keep_admin_token_out_of_logs(app)
    links = Links(app.get(AUTHORITY), config.link_ttl_s)

    def announce(_: Any) -> None:
        banner = _announce(config, links, app.get(AUTHORITY)).split("\n")
        # what started, in one short block under the first line
        banner[1:1] = _started(config, app[POOL].size)
        print("\n".join(banner), flush=True)

    async def say_stopping(_: web.Application) -> None:
        logger.info("stopping: closing cameras, monitors and pose workers")

    app.on_shutdown.insert(0, say_stopping)
    web.run_app(app, host=config.host, port=config.port, ssl_context=context, print=announce)

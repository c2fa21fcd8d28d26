"""The `komi-rtc` options: names, defaults and help (`komi-rtc --help`). Where their values
come from is `option_sources.py`; how they become a checked `ServerConfig`,
`effective_config.py`."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import __version__
from ..pose.model_choice import DEFAULT_POSE_MODEL, POSE_MODELS
from .config import ServerConfig

_DEFAULTS = ServerConfig()
LOG_LEVELS = ("debug", "info", "warning", "error")


def option_parser() -> argparse.ArgumentParser:
    """Every `komi-rtc` option with its default and help, grouped as `--help` shows them;
    the environment and a --config file fill them in (`option_sources.py`)."""
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

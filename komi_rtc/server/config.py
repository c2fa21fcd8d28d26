"""Server configuration: one value object built from the command line or by tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..pose.model_choice import DEFAULT_POSE_MODEL, PoseSettings

_PACKAGE = Path(__file__).resolve().parent.parent


def _web_root() -> Path:
    """The pages: `komi_rtc/web` in an installed wheel (pyproject.toml maps the repository's
    web/ there), the repository's web/ in a checkout or an editable install."""
    installed = _PACKAGE / "web"
    return installed if (installed / "camera.html").is_file() else _PACKAGE.parent / "web"


WEB_ROOT = _web_root()


@dataclass(frozen=True)
class ServerConfig:
    host: str = "0.0.0.0"
    port: int = 8000
    workers: int | None = None  # pose worker processes; None: one per core
    model_path: str | None = None  # a user's MediaPipe `.task` file (several people)
    pose_model: str = DEFAULT_POSE_MODEL  # lite, full or heavy (pose/model_choice.py)
    legacy_pose: bool = False  # wave 2's legacy solutions API (for comparison)
    keyframe_interval: int = 3  # the model at most this many frames apart; 1: every frame
    stall_timeout_s: float = 5.0  # a camera that sends nothing this long is removed
    analysis_fps: float | None = None  # cap per camera; None: as fast as frames come
    ice_servers: tuple[str, ...] = ()
    # TURN (turn_credentials.py): coturn's addresses and its `static-auth-secret`; each page
    # or peer with a valid token gets credentials valid turn_ttl_s
    turn_urls: tuple[str, ...] = ()
    turn_secret: str | None = field(default=None, repr=False)
    turn_ttl_s: float = 12 * 3600
    web_root: Path = WEB_ROOT
    inject_delay_ms: float = 0.0  # added before each result is sent (latency tests)
    debug: bool = False
    log_level: str = "info"  # debug, info, warning, error
    early_frame_release: bool = True  # release a frame at its RTP marker (jitterbuffer.py)
    forward_video: bool = True  # monitors get the camera's VP8 frames (video_forwarding.py)
    exercise_dir: Path | None = None  # custom exercises (*.json), beside the catalog
    demo_camera: bool = False  # stream the bundled demo person into this server
    demo_fps: float = 10.0
    https: bool = False
    cert_file: str | None = None
    key_file: str | None = None
    state_dir: Path = field(default_factory=lambda: Path.home() / ".komi_rtc")
    db_url: str | None = None  # history database; None: SQLite in state_dir
    # access control (access.py): the admin token; None: KOMI_ADMIN_TOKEN, the file, or one
    # generated in state_dir. open_access turns checks off (local development only).
    admin_token: str | None = None
    admin_token_file: Path | None = None
    open_access: bool = False
    allow_origins: tuple[str, ...] = ()  # more origins allowed beside the server's own
    link_ttl_s: float = 7 * 24 * 3600  # the start banner's camera and monitor links
    # a cluster (cluster/): the Redis that joins the nodes, and how peers and other nodes
    # reach this one (None: http(s)://<this machine's LAN address>:<port>)
    redis_url: str | None = None
    public_url: str | None = None
    node_id: str | None = None  # None: a random one
    drain_timeout_s: float = 20.0  # SIGTERM: at most this long moving cameras off
    # limits (limits.py): what any one client can make the server hold; 0 = no limit
    max_body_bytes: int = 1024 * 1024
    max_ws_message_bytes: int = 4 * 1024 * 1024  # a /ws/camera frame (base64 JPEG)
    max_messages_per_s: float = 60.0  # per connection: control messages, /ws/camera frames
    max_cameras: int = 32
    max_cameras_per_address: int = 16  # one address (one pairing link) never holds them all
    max_monitors_per_camera: int = 16
    connect_timeout_s: float = 10.0  # a peer not connected this long after its answer is closed
    max_concurrent_offers: int = 8
    max_connections_per_address: int = 64  # WebRTC peers + WebSockets from one address
    max_frame_side: int = 4096
    max_frame_pixels: int = 3840 * 2160
    max_url_chars: int = 4096

    @property
    def pose_settings(self) -> PoseSettings:
        return PoseSettings(
            model=self.pose_model,
            model_path=self.model_path,
            legacy=self.legacy_pose,
            max_keyframe_interval=self.keyframe_interval,
        )

"""Server configuration: one value object built from the command line or by tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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
    model_path: str | None = None  # a MediaPipe `.task` file; None: bundled BlazePose full
    stall_timeout_s: float = 5.0  # a camera that sends nothing this long is removed
    analysis_fps: float | None = None  # cap per camera; None: as fast as frames come
    ice_servers: tuple[str, ...] = ()
    web_root: Path = WEB_ROOT
    inject_delay_ms: float = 0.0  # added before each result is sent (latency tests)
    debug: bool = False
    early_frame_release: bool = True  # release a frame at its RTP marker (jitterbuffer.py)
    forward_video: bool = True  # monitors get the camera's VP8 frames (video_forwarding.py)
    exercise_dir: Path | None = None  # custom exercises (*.json), beside the catalog
    demo_camera: bool = False  # stream the bundled demo person into this server
    demo_fps: float = 10.0
    https: bool = False
    cert_file: str | None = None
    key_file: str | None = None
    state_dir: Path = field(default_factory=lambda: Path.home() / ".komi_rtc")

"""The server: the aiohttp app, signaling, one session per camera, monitors, the legacy
KOMI camera protocol and the command line (`python -m komi_rtc.server`)."""

from .app import create_app
from .config import ServerConfig

__all__ = ["ServerConfig", "create_app"]

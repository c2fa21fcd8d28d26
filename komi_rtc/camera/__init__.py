"""The camera peer (`python -m komi_rtc.camera`): webcams, files or the demo person streamed
to the server over WebRTC, with live status and recording."""

from .peer import CameraPeer

__all__ = ["CameraPeer"]

"""KOMI RTC: real-time exercise coaching over WebRTC with per-frame pose estimation.

Layers, lowest first (import-linter holds them, see pyproject.toml): `protocol` (the wire
contract) -> `synthetic` (rendered people) -> `media`, `pose`, `analysis` -> `camera` (the
camera peer) -> `server` -> `bench`.
"""

__version__ = "0.1.0"

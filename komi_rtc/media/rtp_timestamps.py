"""Learn the RTP timestamp origin an aiortc sender adds to every frame's pts.

aiortc's RTCRtpSender sends `random32() + pts` (90 kHz) as the RTP timestamp, so the pts
a receiver sees is offset by a number only the sender knows. A track that knows which
frame it handed out last reads the sender's last RTP timestamp when the next frame is
asked for (the sender asks only after sending every packet of the previous frame).
"""

from __future__ import annotations

from typing import Any

from .aiortc_adapter import sender_rtp_timestamp

RTP_CLOCK_RATE = 90_000


class SenderTimestampOrigin:
    """Call `observe()` at the top of each `recv()`; `origin` is then known after frame 1."""

    def __init__(self) -> None:
        self.sender: Any = None
        self.origin: int | None = None
        self._last_pts: int | None = None

    def observe(self) -> int | None:
        """Return the origin once it becomes known, else None."""
        if self.origin is not None or self.sender is None or self._last_pts is None:
            return None
        rtp_timestamp = sender_rtp_timestamp(self.sender)
        if rtp_timestamp is None:
            return None
        self.origin = (rtp_timestamp - self._last_pts) % 2**32
        return self.origin

    def handed_out(self, pts_90khz: int) -> None:
        self._last_pts = pts_90khz


def lookup_pts(by_pts: dict[int, Any], pts: int, tolerance: int = 2) -> Any:
    """Find a frame by pts; aiortc's time-base conversion may round a tick either way."""
    found = by_pts.get(pts)
    if found is not None:
        return found
    for delta in range(1, tolerance + 1):
        found = by_pts.get(pts - delta)
        if found is None:
            found = by_pts.get(pts + delta)
        if found is not None:
            return found
    return None

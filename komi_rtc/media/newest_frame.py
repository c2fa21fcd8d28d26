"""The newest-frame slot: writers overwrite, readers wait for something newer.

This is what makes stale frames get skipped instead of queued: a slow reader simply sees
the newest frame the next time it asks.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import av
import numpy as np


@dataclass(frozen=True)
class ReceivedFrame:
    frame: av.VideoFrame
    pts: int  # 90 kHz, as the server received it (frame_pts on the wire)
    received_monotonic: float  # seconds, time.monotonic()
    received_wall: float  # seconds since the epoch
    rgb: np.ndarray | None = None  # the same picture as RGB, when the source already has it
    camera_time: float | None = None  # capture time in the camera's clock, when it says so


class NewestFrame:
    def __init__(self) -> None:
        self.version = 0
        self.latest: ReceivedFrame | None = None
        self._changed: asyncio.Future[None] | None = None
        self._closed = False

    def publish(self, item: ReceivedFrame) -> None:
        self.latest = item
        self.version += 1
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)
        self._changed = None

    async def wait_newer(self, seen_version: int) -> tuple[int, ReceivedFrame]:
        """Wait until a frame newer than `seen_version` exists; raises EOFError when closed."""
        while self.version <= seen_version or self.latest is None:
            if self._closed:
                raise EOFError("camera closed")
            if self._changed is None:
                self._changed = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._changed)
        return self.version, self.latest

    def close(self) -> None:
        self._closed = True
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)

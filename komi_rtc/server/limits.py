"""Bounds on what any client can make the server hold: connections, offers, message rates,
and image sizes read from headers before anything is decoded."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

from ..protocol import KomiError

logger = logging.getLogger(__name__)


class TooManyRequests(KomiError):
    """One client asks too much (429): its other requests and everyone else's still work."""

    status = 429


class ServerFull(KomiError):
    """The server is at a configured capacity (503); try later or raise the limit."""

    status = 503


class ImageTooLarge(KomiError):
    status = 413


class MessageRate:
    """A token bucket per connection: `per_s` messages a second, bursts of two seconds'
    worth. The first refusal is logged; later ones are only counted."""

    def __init__(self, per_s: float, label: str) -> None:
        self.per_s = per_s
        self._capacity = max(1.0, 2.0 * per_s)
        self._tokens = self._capacity
        self._last = time.monotonic()
        self._label = label
        self.refused = 0

    def allow(self) -> bool:
        if self.per_s <= 0:
            return True
        now = time.monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._last) * self.per_s)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        if self.refused == 0:
            logger.warning("%s: more than %g messages a second; dropping", self._label, self.per_s)
        self.refused += 1
        return False

    @property
    def error(self) -> str:
        return f"too many messages: at most {self.per_s:g} a second; this one was dropped"


class AddressSlots:
    """Long-lived things one client address holds: connections (WebRTC peers and
    WebSockets), or cameras (so one address, one pairing link, never holds every camera
    slot of the server)."""

    def __init__(
        self,
        per_address: int,
        what: str = "connections",
        flag: str = "--max-connections-per-address",
    ) -> None:
        self._per_address = per_address
        self._what = what
        self._flag = flag
        self._open: Counter[str] = Counter()

    def acquire(self, address: str | None) -> Callable[[], None]:
        """Take a slot or raise TooManyRequests; returns the release (call it exactly once)."""
        key = address or "unknown"
        if self._per_address > 0 and self._open[key] >= self._per_address:
            logger.warning("%s from %s refused: at most %d", self._what, key, self._per_address)
            raise TooManyRequests(
                f"too many {self._what} from {key}: at most {self._per_address} ({self._flag})"
            )
        self._open[key] += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self._open[key] -= 1
            if self._open[key] <= 0:
                del self._open[key]

        return release

    def count(self, address: str) -> int:
        return self._open.get(address, 0)


class OfferGate:
    """At most `limit` offers negotiating at once (each holds a peer connection and ICE)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self.active = 0

    def enter(self) -> None:
        if self._limit > 0 and self.active >= self._limit:
            raise ServerFull(
                f"too many offers being negotiated at once (at most {self._limit}, "
                "--max-concurrent-offers); retry in a moment"
            )
        self.active += 1

    def leave(self) -> None:
        self.active -= 1


def check_frame_size(width: int, height: int, max_side: int, max_pixels: int, what: str) -> None:
    """ImageTooLarge for a frame above the caps, said before anything allocates it."""
    if width > max_side or height > max_side or width * height > max_pixels:
        raise ImageTooLarge(
            f"{what} is {width}x{height}: above the limit of {max_side} pixels a side and "
            f"{max_pixels} pixels (--max-frame-side, --max-frame-pixels)"
        )

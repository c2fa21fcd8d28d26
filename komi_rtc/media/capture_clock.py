"""When a camera captured each frame, in the server's clock: what pairs a station's frames.

A WebRTC camera's RTCP sender reports map its RTP timestamps to its own wall clock
(browsers and aiortc both send them); a `/ws/camera` frame carries its `timestamp`. Either
gives the capture time in the camera's clock. Cameras' clocks disagree (a phone can be
seconds off), so each camera's offset to the server is estimated as the smallest
(arrival - capture) seen in the last `WINDOW_S`: the clock offset plus the shortest
transit, which on a LAN is a few milliseconds and about the same for every camera. Until
a camera's first sender report, its frames are placed at their arrival time.
"""

from __future__ import annotations

from collections import deque

WINDOW_S = 20.0


class CaptureClock:
    def __init__(self, clock_rate: int = 90_000) -> None:
        self._rate = clock_rate
        self._report: tuple[float, int] | None = None  # (camera wall clock s, RTP timestamp)
        self._offsets: deque[tuple[float, float]] = deque()  # (arrival, arrival - capture)
        self.source = "arrival"  # or "sender_report", "timestamp"
        # aiortc's decoded frames have pts = RTP timestamp - the first frame's: that first
        # RTP timestamp (set by the receiving side), so pts map back to sender reports
        self.rtp_origin: int | None = None

    def sender_report(self, wall_s: float, rtp_timestamp: int) -> None:
        self._report = (wall_s, rtp_timestamp)

    def camera_time(self, rtp_timestamp: int) -> float | None:
        """A frame's capture time in the camera's own clock, from the last sender report."""
        if self._report is None:
            return None
        wall, rtp = self._report
        diff = (rtp_timestamp - rtp + 2**31) % 2**32 - 2**31  # signed, wraps at 2^32
        return wall + diff / self._rate

    def capture_time(self, camera_s: float | None, arrival_s: float) -> float:
        """Server-clock capture time of a frame that arrived at `arrival_s` (server wall
        clock) and was captured at `camera_s` in the camera's clock (None: unknown)."""
        if camera_s is None:
            return arrival_s
        self._offsets.append((arrival_s, arrival_s - camera_s))
        while self._offsets and arrival_s - self._offsets[0][0] > WINDOW_S:
            self._offsets.popleft()
        offset = min(o for _, o in self._offsets)
        return camera_s + offset

    def frame_capture_time(self, pts: int, arrival_s: float) -> float:
        """A decoded WebRTC frame's capture time (server clock) from its pts."""
        if self.rtp_origin is None:
            return arrival_s
        camera_s = self.camera_time((self.rtp_origin + pts) % 2**32)
        if camera_s is not None:
            self.source = "sender_report"
        return self.capture_time(camera_s, arrival_s)

    @property
    def offset_s(self) -> float | None:
        """The camera clock's offset to the server's (plus the shortest transit)."""
        return min((o for _, o in self._offsets), default=None)

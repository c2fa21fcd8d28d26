"""When a camera captured each frame, in the server's clock: what pairs a station's frames.

A WebRTC camera's RTCP sender reports map its RTP timestamps to its own wall clock
(browsers and aiortc both send them); a `/ws/camera` frame carries its `timestamp`. Either
gives the capture time in the camera's clock. Cameras' clocks disagree (a phone can be
seconds off), so each camera's offset to the server is estimated as the smallest
(arrival - capture) seen in the last `WINDOW_S`: the clock offset plus the shortest
transit, which on a LAN is a few milliseconds and about the same for every camera. Every
received frame counts, not only the analysed ones. Cameras that name one `clock` in their
offers (one process's cameras) share the estimate (`ClockOffsets`), since their clock is
one. Until a camera's first sender report, its frames are placed at their arrival time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

WINDOW_S = 20.0
STEPS_KEPT = 64  # capture steps of received frames whose smallest is the capture interval
MIN_STEP_S = 1 / 240  # closer capture times are one frame seen twice


def fundamental_step(steps: Iterable[float]) -> float | None:
    """The interval that steps between capture times are (mostly one) multiples of: the
    median of the steps under 1.5 times the smallest, so that one step shortened by jitter
    (a sender report stamped after encoding) does not halve the tolerance of pairing."""
    values = sorted(steps)
    if not values:
        return None
    near = [v for v in values if v < 1.5 * values[0]]
    return near[len(near) // 2]


class ClockOffsets:
    """(arrival, arrival - capture) of the last `WINDOW_S` of frames on one camera clock.
    Cameras that share a clock (one process's cameras, which say so in their offers) share
    one: the offset is the clock's, and the frames of the camera whose pipeline is fastest
    tell it for all (their shortest transits differed by 0.1 s on a loaded host)."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, float]] = deque()

    def add(self, arrival_s: float, offset_s: float) -> None:
        self._samples.append((arrival_s, offset_s))
        while self._samples and arrival_s - self._samples[0][0] > WINDOW_S:
            self._samples.popleft()

    def smallest(self) -> float | None:
        return min((o for _, o in self._samples), default=None)


class CaptureClock:
    def __init__(self, clock_rate: int = 90_000) -> None:
        self._rate = clock_rate
        self._report: tuple[float, int] | None = None  # (camera wall clock s, RTP timestamp)
        self._own = ClockOffsets()
        self._offsets = self._own
        self._last_camera_s: float | None = None
        self._steps: deque[float] = deque(maxlen=STEPS_KEPT)
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
        self._observe(camera_s, arrival_s)
        offset = self._offsets.smallest()
        return camera_s + (offset if offset is not None else arrival_s - camera_s)

    def share(self, offsets: ClockOffsets | None) -> None:
        """Estimate the offset with the other cameras of this camera's clock (None: alone)."""
        self._offsets = offsets if offsets is not None else self._own

    def camera_time_of(self, pts: int, camera_s: float | None = None) -> float | None:
        """A frame's capture time in the camera's own clock (`camera_s` when the camera
        said it), None before its first sender report."""
        if camera_s is None and self.rtp_origin is not None:
            camera_s = self.camera_time((self.rtp_origin + pts) % 2**32)
        return camera_s

    def estimate(self, pts: int, arrival_s: float, camera_s: float | None = None) -> float:
        """A frame's capture time (server clock) as `capture_time` would give it, without
        learning from it (for frames only looked at, not analysed)."""
        if camera_s is None and self.rtp_origin is not None:
            camera_s = self.camera_time((self.rtp_origin + pts) % 2**32)
        offset = self._offsets.smallest()
        if camera_s is None or offset is None:
            return arrival_s
        return camera_s + offset

    def frame_arrived(self, pts: int, arrival_s: float) -> None:
        """Every received frame, analysed or not, tells the offset: under load only one
        frame in several is analysed, and the smallest transit of those few was seen 0.1
        to 0.5 s off between cameras of one host (issue 24), which pairs wrong instants."""
        if self.rtp_origin is not None:
            camera_s = self.camera_time((self.rtp_origin + pts) % 2**32)
            if camera_s is not None:
                self._observe(camera_s, arrival_s)

    @property
    def capture_interval_s(self) -> float | None:
        """The camera's capture interval: the smallest step between the capture times of
        its last received frames (a camera that cannot keep up skips instants, and only
        some frames are analysed; frames of one instant are never more than half of this
        apart). None before two frames came."""
        return fundamental_step(self._steps)

    def _observe(self, camera_s: float, arrival_s: float) -> None:
        last = self._last_camera_s
        if last is not None and MIN_STEP_S <= camera_s - last < 1.0:
            self._steps.append(camera_s - last)
        if last is None or camera_s > last:
            self._last_camera_s = camera_s
        self._own.add(arrival_s, arrival_s - camera_s)
        if self._offsets is not self._own:
            self._offsets.add(arrival_s, arrival_s - camera_s)

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
        return self._offsets.smallest()

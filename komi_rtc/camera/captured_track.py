"""The camera peer's video track: frames paced on the process's capture timeline, each
stamped with when it was captured, and RTCP sender reports that say so.

A frame's pts is its capture time (host clock) counted from the track's first frame, in
90 kHz ticks, so one linear map turns any RTP timestamp of the stream into a capture time:
`stamp_sender_reports` puts that time in the sender reports the server pairs a station's
frames by. Capture time is the moment a webcam captured the frame (`LiveSource`), the
instant on the recording's own timeline for a file (`RecordedSource`: frame `i` was captured
at `start + i / frame_rate`, so files of one synchronised recording carry equal times), and
the moment a frame was made for anything else (the rendered demo, an image).
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import math
from collections import OrderedDict
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from ..media.aiortc_adapter import stamp_sender_reports
from ..media.capture_timeline import CaptureTimeline
from ..media.frame_source import FrameSource, LiveSource, RecordedSource, SourceError
from ..media.rtp_timestamps import RTP_CLOCK_RATE, SenderTimestampOrigin, lookup_pts

logger = logging.getLogger(__name__)

TIME_BASE = fractions.Fraction(1, RTP_CLOCK_RATE)
_SENT_FRAMES_KEPT = 600


class CapturedTrack(MediaStreamTrack):
    """Paces a FrameSource at the timeline's instants (its own timeline at `fps` when none
    is shared) and remembers when each frame was captured."""

    kind = "video"

    def __init__(
        self, source: FrameSource, fps: float, timeline: CaptureTimeline | None = None
    ) -> None:
        super().__init__()
        self._source = source
        self._timeline = timeline or CaptureTimeline(fps)
        self._clock = self._timeline.clock
        self._instant: int | None = None  # the timeline instant of the last frame
        self._recorded_index: int | None = None  # a recording's last frame handed out
        self._capture_origin: float | None = None  # capture time (unix s) of pts 0
        self._last_pts = -1
        self._rtp = SenderTimestampOrigin()  # RTP timestamp = origin + pts
        self.first_pts: int | None = None
        self.captured_at: OrderedDict[int, float] = OrderedDict()  # pts -> monotonic s
        self.frames_sent = 0

    def attach(self, sender: Any) -> None:
        """The RTCRtpSender sending this track: learn its RTP origin and stamp its sender
        reports with capture time (aiortc changed: they keep the send time, one warning)."""
        self._rtp.sender = sender
        stamp_sender_reports(sender, self.capture_time_of_rtp)

    async def recv(self) -> av.VideoFrame:
        rgb, captured = await self.capture()
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = self.stamp(captured)
        frame.time_base = TIME_BASE
        return frame

    async def capture(self) -> tuple[np.ndarray, float]:
        """The next frame at the timeline's next instant, and when it was captured (unix s
        on the host clock). A recording's frame rate below the timeline's skips instants
        that have no newer frame."""
        source = self._source
        loop = asyncio.get_running_loop()
        try:
            while True:
                instant_s = await self.paced()
                if isinstance(source, RecordedSource):
                    start = self._timeline.start_s
                    start = instant_s if start is None else start  # (set by paced())
                    # from the instant's number: instant_s - start would lose the digits
                    # that tell frames apart (unix seconds are large), and files disagree
                    since_start_s = (self._instant or 0) * self._timeline.interval_s
                    index = math.floor(since_start_s * source.frame_rate + 1e-6)
                    if self._recorded_index is not None and index <= self._recorded_index:
                        continue  # the recording has no newer frame at this instant
                    self._recorded_index = index
                    rgb = await loop.run_in_executor(None, source.frame, index)
                    return rgb, start + index / source.frame_rate
                if isinstance(source, LiveSource):
                    rgb, monotonic_s = await loop.run_in_executor(None, source.read_captured)
                    return rgb, self._clock.wall_of_monotonic(monotonic_s)
                rgb = await loop.run_in_executor(None, source.read)
                return rgb, self._clock.now()
        except SourceError as exc:
            logger.error("%s", exc)
            self.stop()
            raise MediaStreamError from None

    async def paced(self) -> float:
        """Wait for the timeline's next instant (never bursting to catch up) and return it
        (unix s). A recording waits for the timeline's start."""
        if self.readyState != "live":
            raise MediaStreamError
        recorded = isinstance(self._source, RecordedSource)
        self._instant, at = self._timeline.next_instant(self._instant, from_start=recorded)
        await self._timeline.wait_for(at)
        if self.readyState != "live":
            raise MediaStreamError
        return at

    def stamp(self, captured: float | None = None) -> int:
        """The pts of a frame captured at `captured` (unix s; None: now), remembered for the
        latency of its result and for the sender reports."""
        if captured is None:
            captured = self._clock.now()
        if self._capture_origin is None:
            self._capture_origin = captured
        pts = max(round((captured - self._capture_origin) * RTP_CLOCK_RATE), self._last_pts + 1)
        self._last_pts = pts
        self._rtp.observe()  # the sender asks for this frame once the last one is sent
        self._rtp.handed_out(pts)
        self.captured_at[pts] = self._clock.monotonic_of_wall(captured)
        if len(self.captured_at) > _SENT_FRAMES_KEPT:
            self.captured_at.popitem(last=False)
        if self.first_pts is None:
            self.first_pts = pts
        self.frames_sent += 1
        return pts

    def capture_time_of(self, frame_pts: int) -> float | None:
        """When the frame the server calls `frame_pts` was captured (monotonic seconds)."""
        if self.first_pts is None:
            return None
        return lookup_pts(self.captured_at, self.first_pts + frame_pts)

    def captured_unix_of(self, frame_pts: int) -> float | None:
        """When the frame the server calls `frame_pts` was captured (unix s, host clock)."""
        if self.first_pts is None or self._capture_origin is None:
            return None
        return self._capture_origin + (self.first_pts + frame_pts) / RTP_CLOCK_RATE

    def capture_time_of_rtp(self, rtp_timestamp: int) -> float | None:
        """When the frame sent with `rtp_timestamp` was captured (unix s, host clock); None
        until the sender's RTP origin is known."""
        origin = self._rtp.origin
        if origin is None or self._capture_origin is None:
            return None
        pts = (rtp_timestamp - origin + 2**31) % 2**32 - 2**31  # signed: wraps at 2^32
        return self._capture_origin + pts / RTP_CLOCK_RATE

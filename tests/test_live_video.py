"""Live over WebRTC: a rendered person's reps, streamed by an aiortc peer, come back as
`rep_completed` messages equal to the truth, each soon after the rep ends in the video."""

from __future__ import annotations

import asyncio
import fractions
import math
import time

import av
import pytest
from aiortc import MediaStreamTrack
from contract_client import connect_camera

from komi_rtc.synthetic import ExercisingPersonSource, Tempo

TIME_BASE = fractions.Fraction(1, 90000)
FPS = 15.0
TEMPO = Tempo(down=0.9, hold=0.2, up=0.9, pause=0.6, lead_in=1.5, set_rest=3.0)


class RenderedPersonTrack(MediaStreamTrack):
    """Plays the rendered person in real time. Until `start()` it shows the first frame (the
    person standing at rest); from then on the performance runs, and the wall time each
    frame is handed to the sender is kept, so a result can be timed against the video."""

    kind = "video"

    def __init__(self, source: ExercisingPersonSource) -> None:
        super().__init__()
        self.source = source
        self.sent_at: dict[int, float] = {}  # performance frame index -> time.monotonic()
        self._started = False
        self._index = 0
        self._count = 0
        self._clock = time.monotonic()

    def start(self) -> None:
        self._started = True

    async def recv(self) -> av.VideoFrame:
        self._count += 1
        due = self._clock + self._count / FPS
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing the camera, not synchronisation
        if self._started:
            self.source.frame_index = self._index
            rgb = self.source.read()
            self.sent_at[self._index] = time.monotonic()
            self._index += 1
        else:
            self.source.frame_index = 0
            rgb = self.source.read()
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = self._count * int(90000 / FPS)
        frame.time_base = TIME_BASE
        return frame


@pytest.mark.parametrize(
    "exercise, view",
    [("squat", "side_left"), ("bicep_curl", "side_right"), ("lateral_raise", "front")],
)
async def test_streamed_reps_come_back_counted_and_on_time(server, exercise, view):
    source = ExercisingPersonSource(640, 480, FPS, exercise, view, reps_per_set=4, tempo=TEMPO)
    track = RenderedPersonTrack(source)
    camera = await connect_camera(server.url, track, f"live_{exercise}")
    try:
        await camera.next_message("frame_processed", timeout=30)
        camera.send({"type": "set_exercise", "exercise": exercise})
        assert (await camera.next_message("exercise_set"))["exercise"] == exercise
        # frames analysed before the exercise was set carry no analysis; on a loaded box fewer
        # than the 200 messages held arrive during the set, so they would be read below
        camera.drop_held("frame_processed")
        track.start()
        truth = source.performance.reps_until(source.performance.loop_seconds)
        assert len(truth) == 4
        arrivals = []
        for _ in truth:
            event = await camera.next_message("rep_completed", timeout=20)
            arrivals.append((time.monotonic(), event))
        # nothing more is counted in the rest after the set
        last_end_frame = math.ceil(truth[-1].end * FPS)
        reps = 0
        async with asyncio.timeout(30):
            while max(track.sent_at, default=0) < last_end_frame + int(TEMPO.set_rest * FPS) - 3:
                message = await camera.next_message("frame_processed")
                reps = message["analysis"]["reps"]
                assert reps <= len(truth), message["analysis"]
        assert reps == len(truth)
        assert not [m for m in camera.held if m["type"] == "rep_completed"]
    finally:
        await camera.close()
    deltas = [
        arrived - track.sent_at[math.ceil(rep.end * FPS)]
        for rep, (arrived, _) in zip(truth, arrivals, strict=True)
    ]
    print(
        f"{exercise}/{view}: rep_completed minus the rep's end in the video (s):",
        [round(d, 2) for d in deltas],
    )
    for rep, (arrived, event) in zip(truth, arrivals, strict=True):
        assert event["camera_id"] == f"live_{exercise}" and event["exercise"] == exercise
        end_frame = math.ceil(rep.end * FPS)
        shown = track.sent_at[end_frame]
        assert abs(arrived - shown) <= 0.5, (
            f"rep {event['rep']['index']} came {arrived - shown:+.2f} s from its end in the video"
        )

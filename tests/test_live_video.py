"""Live over WebRTC: a rendered person's reps, streamed by an aiortc peer, come back as
`rep_completed` messages equal to the truth, each counted on a frame near the rep's end in
the video and delivered soon after."""

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
PTS_STEP = int(90000 / FPS)
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
        self.count_of: dict[int, int] = {}  # performance frame index -> frame number sent
        self.handed_at: dict[int, float] = {}  # frame number sent -> time.monotonic()
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
            self.count_of[self._index] = self._count
            self._index += 1
        else:
            self.source.frame_index = 0
            rgb = self.source.read()
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        self.handed_at[self._count] = time.monotonic()
        frame.pts = self._count * PTS_STEP
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
            # the server sends a rep's event right after the frame_processed of the frame
            # that completed it; aiortc's receiver counts pts from the first frame's RTP
            # timestamp, so the n-th frame sent (from 1) arrives with pts (n - 1) x PTS_STEP
            counted_on = [m for m in camera.held if m["type"] == "frame_processed"][-1]
            arrivals.append((time.monotonic(), event, counted_on["frame_pts"] // PTS_STEP + 1))
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
    # counted: the frame that completed the rep against the rep's end in the video, in
    # video time (quiet: 2-3 frames before it, as the arm nears rest); delivered: the event's
    # arrival against the moment that frame was handed to the encoder, which a loaded box
    # (the suite runs in two processes, the camera's encoder in this one) stretches
    counted, delivered = [], []
    for rep, (arrived, _, number) in zip(truth, arrivals, strict=True):
        end_number = track.count_of[math.ceil(rep.end * FPS)]
        counted.append((number - end_number) / FPS)
        delivered.append(arrived - track.handed_at[number])
    print(
        f"{exercise}/{view}: rep counted on a frame this far from the rep's end (s):",
        [round(d, 2) for d in counted],
        "delivered after that frame was sent (s):",
        [round(d, 2) for d in delivered],
    )
    for (_, event, _), early_or_late, delay in zip(arrivals, counted, delivered, strict=True):
        assert event["camera_id"] == f"live_{exercise}" and event["exercise"] == exercise
        index = event["rep"]["index"]
        assert abs(early_or_late) <= 0.5, (
            f"rep {index} was counted {early_or_late:+.2f} s from its end in the video"
        )
        assert 0 < delay <= 1.0, f"rep {index} came {delay:.2f} s after its frame was sent"

"""Stations (design.md, "Stations"): two aiortc cameras filming one rendered person from the
side and the front, paired by capture time and counted once."""

from __future__ import annotations

import asyncio
import fractions
import json
import time
from typing import Any

import aiohttp
import av
import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from auth import AUTH_HEADERS
from contract_client import post_offer

from komi_rtc.analysis.catalog import default_catalog
from komi_rtc.analysis.fusion import StationFusion, ViewFrame
from komi_rtc.media.aiortc_adapter import stamp_sender_reports
from komi_rtc.media.capture_clock import CaptureClock
from komi_rtc.media.rtp_timestamps import SenderTimestampOrigin, lookup_pts
from komi_rtc.server.station_pairing import MAX_WAITING, Pairer, ViewItem
from komi_rtc.synthetic.exercise_video import ExercisingPersonSource

TIME_BASE = fractions.Fraction(1, 90000)


class ViewTrack(MediaStreamTrack):
    """One camera of a station: renders the shared performance at wall time - epoch, so
    every view shows the same instant; remembers when each frame was captured."""

    kind = "video"

    def __init__(self, source: ExercisingPersonSource, fps: float, epoch: float) -> None:
        super().__init__()
        self.source = source
        self.fps = fps
        self.epoch = epoch
        self.captured: dict[int, float] = {}  # pts -> wall time of capture
        self.origin = SenderTimestampOrigin()  # RTP timestamp = origin + pts
        self._start = time.monotonic()
        self._next: float | None = None

    async def recv(self) -> av.VideoFrame:
        self.origin.observe()
        now = time.monotonic()
        if self._next is None:
            self._next = now
        elif self._next > now:
            await asyncio.sleep(self._next - now)  # pacing the camera, not synchronisation
        self._next = max(self._next + 1 / self.fps, time.monotonic() - 1 / self.fps)
        wall = time.time()  # the instant shown; the pts is taken at the same instant
        pts = int((time.monotonic() - self._start) * 90000)
        rgb = await asyncio.get_running_loop().run_in_executor(
            None, self.source.render_at, wall - self.epoch
        )
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = pts
        frame.time_base = TIME_BASE
        self.captured[frame.pts] = wall
        self.origin.handed_out(frame.pts)
        return frame

    def capture_time_of_rtp(self, rtp_timestamp: int) -> float | None:
        """When the frame sent with `rtp_timestamp` was captured (unix s), for the sender
        reports, as browsers and KOMI's camera peer stamp them."""
        origin = self.origin.origin
        if origin is None:
            return None
        pts = (rtp_timestamp - origin + 2**31) % 2**32 - 2**31
        return lookup_pts(self.captured, pts)


class StationCamera:
    def __init__(self, track: ViewTrack) -> None:
        self.track = track
        self.pc = RTCPeerConnection()
        track.origin.sender = sender = self.pc.addTrack(track)
        assert stamp_sender_reports(sender, track.capture_time_of_rtp)
        self.channel = self.pc.createDataChannel("komi")
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        @self.channel.on("message")
        def on_message(raw: str) -> None:
            self.messages.put_nowait(json.loads(raw))

    async def connect(self, url: str, camera_id: str, station: str) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        status, answer = await post_offer(
            url,
            {
                "sdp": self.pc.localDescription.sdp,
                "type": "offer",
                "role": "camera",
                "camera_id": camera_id,
                "station": station,
            },
        )
        assert status == 200, answer
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))

    def true_capture(self, rtp_pts: int) -> float | None:
        """The wall time this camera captured the frame the server calls `rtp_pts`."""
        # the server's frame_pts count from the first frame it received (aiortc's
        # receiver subtracts the first RTP timestamp): that is this track's first frame
        first = min(self.track.captured)
        return lookup_pts(self.track.captured, rtp_pts + first)  # ±2 ticks of rounding


async def test_two_cameras_form_a_station_counted_once_and_synced(start_server):
    running = await start_server()
    fps = 10.0
    epoch = time.time()
    side = ExercisingPersonSource(480, 360, fps, "squat", "side_left")
    front = ExercisingPersonSource(480, 360, fps, "squat", "front")
    cam_side = StationCamera(ViewTrack(side, fps, epoch))
    cam_front = StationCamera(ViewTrack(front, fps, epoch))
    try:
        await cam_side.connect(running.url, "st_side", "st1")
        await asyncio.sleep(1.3)  # the cameras start at different times (scenario, not sync)
        await cam_front.connect(running.url, "st_front", "st1")
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
            async with http.get(f"{running.url}/stations") as response:
                [station] = (await response.json())["stations"]
            assert station["id"] == "st1" and station["cameras"] == ["st_front", "st_side"]
            # both views analysed before counting starts
            for camera in (cam_side, cam_front):
                while (await camera.messages.get())["type"] != "frame_processed":
                    pass
            async with http.post(
                f"{running.url}/stations/st1/exercise", json={"exercise": "squat"}
            ) as response:
                assert response.status == 200, await response.text()
            started = time.time() - epoch
            station_reps: list[dict[str, Any]] = []
            pairs: list[dict[str, Any]] = []
            camera_reps = 0
            async with asyncio.timeout(90):
                while len(station_reps) < 4:
                    message = await cam_side.messages.get()
                    if message["type"] == "rep_completed":
                        if message.get("station_id") == "st1":
                            station_reps.append(message)
                        else:
                            camera_reps += 1
                    elif message["type"] == "station_processed":
                        pairs.append(message)
            ended = time.time() - epoch
            async with http.get(f"{running.url}/stations") as response:
                [station] = (await response.json())["stations"]
        assert camera_reps == 0  # one rep_completed per rep: the station's
        truth = len(side.performance.reps_until(ended)) - len(side.performance.reps_until(started))
        assert abs(len(station_reps) - truth) <= 1, (len(station_reps), truth)
        for message in station_reps:
            assert message["rep"]["source"] == "st_side"  # depth is read from the side
            assert set(message["rep"]["views"]) <= {"st_side", "st_front"}
        # the front view confirms the reps it counted too (on a loaded machine it misses
        # one now and then: seen in 2 of 4 suite runs, with keyframes)
        assert sum(set(m["rep"]["views"]) == {"st_side", "st_front"} for m in station_reps) >= 2
        both = [p for p in pairs if len(p["frames"]) == 2]
        # on a quiet machine nearly every group has both views (README: 96-100%); on a busy
        # one each camera skips frames and fewer pairs meet within half a frame interval
        assert len(both) >= 15, (len(both), len(pairs))
        half_frame_ms = 500.0 / fps
        # the server's own estimate, and the truth from when each frame was captured
        assert station["sync_error_ms"] < half_frame_ms
        # Two cameras that are not genlocked capture up to half a frame interval apart (their
        # phase is set by when each started): a pair is right when its frames are the nearest
        # ones. What the server controls is its clock for each camera: per pair, the capture
        # interval it computed against the true one. These cameras stamp their sender
        # reports with capture time, as browsers and KOMI's camera peer do (aiortc's own
        # reports stamp send time: a starved camera's encoding delay showed up here, 7-17 ms
        # p95 quiet and 84-277 ms at load 12-24).
        true_errors = []
        clock_errors = []
        for pair in both:
            a = cam_side.true_capture(pair["frames"]["st_side"])
            b = cam_front.true_capture(pair["frames"]["st_front"])
            if a is not None and b is not None:
                true_errors.append(abs(a - b) * 1000)
                server = pair["captured"]["st_side"] - pair["captured"]["st_front"]
                clock_errors.append(abs((a - b) - server) * 1000)
        assert len(true_errors) >= 0.8 * len(both)
        clock_errors.sort()
        assert clock_errors[int(0.95 * (len(clock_errors) - 1))] < half_frame_ms, clock_errors
        true_errors.sort()
        assert true_errors[int(0.95 * (len(true_errors) - 1))] < 2 * half_frame_ms, true_errors
        analysis = pairs[-1]["analysis"]
        assert analysis["source"] == "st_side" and analysis["views"]["st_front"] == "front"
        assert analysis["metric_sources"]["knee_tracking"] == "st_front"
        # calibrate from the person's own keypoints, then pose3d arrives in metres
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
            for _attempt in range(4):
                # a fit on a few seconds of a busy machine's poses can miss the legs; the
                # server then answers 409 with the reason, and the person goes on moving for
                # a few seconds (new station groups) and tries again
                async with http.post(
                    f"{running.url}/stations/st1/calibrate",
                    json={"method": "self", "body_height_m": 1.75, "seconds": 60},
                ) as response:
                    result = await response.json()
                    assert response.status in (200, 409), result
                if response.status == 200:
                    break
                assert "calibration failed" in result["error"]
                while not cam_side.messages.empty():  # those from before the refusal
                    cam_side.messages.get_nowait()
                async with asyncio.timeout(30):
                    moved = 0
                    while moved < 30:
                        message = await cam_side.messages.get()
                        moved += message["type"] == "station_processed"
            assert response.status == 200, result  # four fits refused: their reason
            assert result["calibrated"] and result["method"] == "self"
            async with http.get(f"{running.url}/stations") as response:
                [station] = (await response.json())["stations"]
            assert station["calibrated"]
            async with http.get(f"{running.url}/stations/st1/join") as response:
                join = await response.json()
            assert "station=st1" in join["url"] and join["qr_svg"].startswith("<svg")
            pairing = join["url"].split("token=")[1]
            camera_only = {"Authorization": f"Bearer {pairing}"}
            async with http.get(f"{running.url}/config.json", headers=camera_only) as response:
                assert response.status == 200
            async with http.get(f"{running.url}/cameras", headers=camera_only) as response:
                assert response.status == 403  # a camera link, nothing more
            async with http.get(f"{running.url}/calibration/board.png") as response:
                assert response.content_type == "image/png"
                assert (await response.read()).startswith(b"\x89PNG")
        # one group's views can disagree (a camera a frame behind mid-squat): judge a run
        poses3d: list[dict[str, Any]] = []
        async with asyncio.timeout(30):
            while len(poses3d) < 20:
                message = await cam_front.messages.get()
                if message["type"] == "station_processed" and "pose3d" in message:
                    poses3d.append(message)
        seen = sorted(sum(1 for k in m["pose3d"] if k["confidence"] > 0) for m in poses3d)
        print(f"joints seen in 3-D over {len(seen)} groups: {seen}")
        pose3d = poses3d[-1]["pose3d"]
        assert len(pose3d) == 33 and {"x", "y", "z", "confidence"} <= set(pose3d[0])
        assert seen[len(seen) // 2] >= 20, seen  # the median group
        assert all("angles3d" in m["analysis"] for m in poses3d)
    finally:
        await cam_side.pc.close()
        await cam_front.pc.close()


def test_the_capture_clock_maps_rtp_to_the_camera_clock_and_removes_its_offset():
    clock = CaptureClock()
    assert clock.frame_capture_time(1000, 50.0) == 50.0  # no sender report yet: arrival
    clock.rtp_origin = 2**32 - 9000  # the first frame's RTP timestamp; its pts is 0
    clock.sender_report(1_000.0, 2**32 - 9000)  # a camera 950 s ahead of the server
    captured = [
        clock.frame_capture_time(9000 * i, 50.2 + 0.1 * i + 0.01 * (i % 3)) for i in range(10)
    ]
    # the RTP timestamp wrapped; frames 0.1 s apart; transit 0.2 to 0.22 s
    assert captured[1] - captured[0] == pytest.approx(0.1)
    assert captured[0] == pytest.approx(50.2, abs=0.001)
    assert clock.source == "sender_report"


def test_fusion_counts_the_side_view_and_adds_the_front_views_errors_and_two_view_rules():
    squat = default_catalog().get("squat")
    fusion = StationFusion(squat)
    side = {"view": "side", "feedback": []}
    front = {"view": "front", "feedback": [{"code": "knees_cave", "message": {}}]}
    rep_side = {
        "index": 1,
        "score": 100.0,
        "peak_angle_deg": 85.0,
        "ended_at": 10.0,
        "errors": [],
        "good": True,
    }
    rep_front = {
        "index": 1,
        "score": 70.0,
        "ended_at": 10.1,
        "errors": ["knees_cave"],
        "good": False,
    }
    analysis, reps = fusion.update(
        [ViewFrame("a", 10.0, side, [rep_side]), ViewFrame("b", 10.0, front, [rep_front])], 10.0
    )
    assert (
        analysis["source"] == "a"
        and reps
        and reps[0]["errors"] == ["knees_cave", "knees_cave_at_depth"]
    )
    assert reps[0]["score"] == 80.0 and reps[0]["error_views"]["knees_cave"] == ["b"]
    assert fusion.reps == 1 and analysis["feedback"][0]["code"] == "knees_cave"
    # the side camera loses the person: the front one counts
    for t in range(11, 15):
        fusion.update(
            [
                ViewFrame("a", float(t), side, [], person_seen=False),
                ViewFrame("b", float(t), front, []),
            ],
            float(t),
        )
    assert fusion.source == "b"


def test_a_camera_taking_over_counts_the_reps_the_lost_one_missed():
    fusion = StationFusion(default_catalog().get("squat"))
    side = {"view": "side", "feedback": []}
    front = {"view": "front", "feedback": []}

    def rep(index: int, ended: float) -> dict:
        return {"index": index, "score": 90.0, "ended_at": ended, "errors": [], "good": True}

    counted = []
    # rep 1 seen by both; then the side camera loses the person and the front counts rep 2
    for t, side_reps, front_reps, seen in (
        (10.0, [rep(1, 10.0)], [rep(1, 10.1)], True),
        (11.0, [], [], True),
        (13.0, [], [rep(2, 13.0)], False),
        (14.0, [], [], False),
        (16.0, [], [rep(3, 16.0)], False),
        (17.5, [], [], False),
    ):
        _, reps = fusion.update(
            [ViewFrame("a", t, side, side_reps, seen), ViewFrame("b", t, front, front_reps)], t
        )
        counted += reps
    assert fusion.source == "b"
    assert [r["source"] for r in counted] == ["a", "b", "b"] and fusion.reps == 3


def test_a_calibrated_station_judges_depth_from_the_3d_knee_angle():
    fusion = StationFusion(default_catalog().get("squat"))
    side = {"view": "side", "feedback": []}
    front = {"view": "front", "feedback": []}
    # 3D knee angles over two reps: the first goes deep (85 deg), the second stays high (118)
    for i in range(60):
        t = 10.0 + i * 0.1
        knee = (
            85.0 + 60 * abs((i % 30) - 15) / 15 if i < 30 else 118.0 + 30 * abs((i % 30) - 15) / 15
        )
        fusion.observe_angles_3d(t, {"left_knee": knee, "right_knee": knee + 1})
    shallow_in_2d = {
        "index": 1,
        "score": 70.0,
        "ended_at": 13.0,
        "duration_s": 2.8,
        "errors": ["shallow"],
        "good": False,
    }
    clean_in_2d = {
        "index": 2,
        "score": 100.0,
        "ended_at": 16.0,
        "duration_s": 2.8,
        "errors": [],
        "good": True,
    }
    reps = []
    for t, r in ((13.0, shallow_in_2d), (16.0, clean_in_2d)):
        _, done = fusion.update([ViewFrame("a", t, side, [r]), ViewFrame("b", t, front, [])], t)
        reps += done
        # the front view never reports that rep: the station rep goes out after its hold-back
        later = [ViewFrame("a", t + 1, side, []), ViewFrame("b", t + 1, front, [])]
        reps += fusion.update(later, t + 1)[1]
    assert reps[0]["peak_angle_3d_deg"] == 85.0 and "shallow" not in reps[0]["errors"]
    assert reps[1]["peak_angle_3d_deg"] == 118.0 and "shallow" in reps[1]["errors"]
    assert reps[0]["judged_in_3d"] == ["shallow"]


def _view(camera_id: str, captured: float, reps: list[dict[str, Any]] | None = None) -> ViewItem:
    return ViewItem(camera_id, captured, int(captured * 1000), [], 640, 480, None, reps or [])


async def test_a_rep_on_a_frame_no_group_takes_still_reaches_the_station():
    """CI lost a view's rep: the frame that completed it was passed over for a newer one."""
    groups: list[list[ViewItem]] = []
    pairer = Pairer(groups.append)
    pairer.set_cameras(["front", "side"])
    rep = {"index": 2, "ended_at": 1.05}
    try:
        pairer.add(_view("side", 1.00))
        pairer.add(_view("front", 1.05, [rep]))  # no side frame within half an interval
        pairer.add(_view("front", 1.10))
        pairer.add(_view("side", 1.10))  # pairs with front 1.10; front 1.05 goes alone
        assert [[(i.camera_id, i.captured) for i in g] for g in groups] == [
            [("side", 1.00)],  # the front camera moved past it: no partner will come
            [("front", 1.05)],
            [("side", 1.10), ("front", 1.10)],
        ]
        assert [r for g in groups for i in g for r in i.reps] == [rep]
    finally:
        pairer.close()


async def test_a_rep_on_a_frame_let_go_from_a_full_queue_is_carried_on():
    emitted = asyncio.Event()
    groups: list[list[ViewItem]] = []

    def emit(group: list[ViewItem]) -> None:
        groups.append(group)
        if len(groups) == MAX_WAITING:
            emitted.set()

    pairer = Pairer(emit)
    pairer.set_cameras(["front", "side"])  # the side camera never sends
    rep = {"index": 1, "ended_at": 0.0}
    try:
        pairer.add(_view("front", 0.0, [rep]))
        for i in range(1, MAX_WAITING + 1):
            pairer.add(_view("front", i / 100))  # faster than the wait lets them go
        async with asyncio.timeout(5):
            await emitted.wait()  # the rest go alone once they have waited MAX_WAIT_S
        reps = [r for group in groups for item in group for r in item.reps]
        assert reps == [rep] and groups[0][0].captured == 0.01
    finally:
        pairer.close()

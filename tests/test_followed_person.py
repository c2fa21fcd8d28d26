"""Issue 24: one person followed per camera, from start to end, when another walks past; and
`frame_processed` says whom (`tracking.person`)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from auth import ADMIN_TOKEN
from harness import wait_for

from komi_rtc.bench.real_footage import two_people_outdoors
from komi_rtc.camera.peer import CameraPeer
from komi_rtc.media.video_sources import open_source
from komi_rtc.pose.estimator import Pose
from komi_rtc.pose.followed_person import GRACE_S, FollowedPerson


def _person_at(x: float, y: float, height: float) -> Pose:
    """A standing person: 33 keypoints spread over a box `height` tall centred at x, y."""
    keypoints = np.zeros((33, 4), np.float32)
    keypoints[:, 0] = x + np.linspace(-height / 6, height / 6, 33)
    keypoints[:, 1] = y + np.linspace(-height / 2, height / 2, 33)
    keypoints[:, 3] = 0.9
    return Pose(keypoints)


def test_a_passer_by_is_not_followed_until_the_person_has_been_gone_a_while():
    followed = FollowedPerson()
    on_the_box = _person_at(300, 120, 100)
    followed.saw(on_the_box, 0)
    assert followed.person_id == 1
    walker = _person_at(100, 270, 150)
    assert followed.choose([walker], 66) is None  # the person is missing: not the walker
    landed = _person_at(420, 280, 130)  # a second later, two heights away: a jump down
    assert followed.choose([walker, landed], 1000) is landed
    followed.saw(landed, 1000)
    assert followed.person_id == 1
    late = int(1000 + GRACE_S * 1000 + 100)  # gone for good: whoever is there now
    assert followed.choose([walker], late) is walker
    followed.saw(walker, late)
    assert followed.person_id == 2


def test_others_are_looked_for_before_they_are_forgotten_and_a_far_find_is_checked():
    """On a loaded box (a few frames analysed a second) 20 model frames took over 10 s, so the
    walker, seen last more than OTHERS_KEPT_S before, was forgotten; when the tracker then
    found her 0.7 s after losing him, within the reach his time missing allows, she was
    taken for him (a suite run). Now, while someone else is about, the look-around comes at
    least every 2.5 s (alone every 6 s), and a pose found beyond REACH of his last place is
    checked against everyone."""
    followed = FollowedPerson()
    followed.look_around_due(0)  # the first sighting starts the clock
    assert not followed.look_around_due(2_600)  # alone: not yet
    assert followed.look_around_due(6_600)  # 6.5 s: whatever the model frames
    on_the_box = _person_at(300, 120, 100)
    followed.saw(on_the_box, 6_600)
    followed.choose([on_the_box, _person_at(100, 150, 110)], 6_600)  # someone else is about
    assert not followed.look_around_due(8_700)  # 2 s passed, 2 model frames: not yet
    assert followed.look_around_due(9_200)  # 2.5 s: whatever the model frames
    followed = FollowedPerson()
    followed.saw(on_the_box, 0)
    assert followed.near_last_seen(_person_at(340, 130, 100))
    walker = _person_at(160, 150, 110)  # 1.4 heights away
    assert not followed.near_last_seen(walker)
    # 0.7 s missing, the reach has grown past her: theirs by distance alone, so the caller
    # asks the detector for several people, and with him in view he is nearer
    assert followed.is_theirs(walker, 700)
    him = _person_at(330, 140, 100)
    assert followed.choose([walker, him], 700) is him


async def test_the_person_on_the_box_is_followed_while_the_other_walks_past(server):
    """Sports2D's demo (real footage, 30 fps, 7.7 s) streamed at 640x360, 15 fps through the
    real server: one person (1) throughout, and never a jump to the walker, who passes
    within a box's width of him and is in view alone while he is in the air."""
    video = str(two_people_outdoors())
    peer = CameraPeer(
        server.url, "cam_two_people", open_source(video, 640, 360, 15), fps=15, token=ADMIN_TOKEN
    )
    peer.messages = asyncio.Queue()
    results: list[dict[str, Any]] = []
    task = asyncio.create_task(peer.run())

    async def until_the_end() -> bool:
        while not peer.messages.empty():
            message = peer.messages.get_nowait()
            if message.get("type") == "frame_processed":
                results.append(message)
        return bool(results) and results[-1]["frame_pts"] >= 7.4 * 90_000

    try:
        await wait_for(until_the_end, 60, lambda: f"the video's end ({len(results)} results)")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await peer.close()
    seen = [m for m in results if m["frame_pts"] < 7.6 * 90_000 and m["pose_data"]["pose"]]
    # about 90 on an idle machine; a loaded one skips frames, but the whole video is seen
    assert len(seen) >= 12, len(results)
    # followed from the start to his crouch before the jump off the box at least (on a
    # loaded box the model has lost him in the air, 5.4-6.2 s, and not found him again:
    # README, known limits; with three busy loops beside it, 1 run in 8 lost him at 4.8 s,
    # as he crouches, and the detector did not find him again against the sun; a quiet run
    # loses him at 5.27 s and finds him again)
    assert seen[0]["frame_pts"] < 2.5 * 90_000 and seen[-1]["frame_pts"] > 4.5 * 90_000
    # the person followed is named; on a loaded box the model sometimes loses him for a
    # few seconds mid-video (about 3.3 s, in the air) and he comes back under a new number:
    # a known limit (README). A new number is allowed only after such a gap, never between
    # consecutive frames, and where he is (below) shows it is still him, not the walker.
    for before, after in zip(seen, seen[1:], strict=False):
        if after["tracking"]["person"] != before["tracking"]["person"]:
            assert after["frame_pts"] - before["frame_pts"] > 0.5 * 90_000, (before, after)
    assert seen[0]["tracking"]["person"] == 1
    track = [
        (
            m["frame_pts"] / 90_000,
            float(np.mean([k["x"] for k in m["pose_data"]["pose"][0]["keypoints"]])),
        )
        for m in seen
    ]
    # he jumps down from the box at 5.6 s, lands at 6.2 s and walks off to the right; the
    # walker is then 200 px left of him and walks out on the left: following her would show
    said = " ".join(f"{t:.2f}s:{x:.0f}" for t, x in track)
    for (t0, x0), (t1, x1) in zip(track, track[1:], strict=False):
        if t1 - t0 < 0.15:  # consecutive frames: nobody moves 120 px in 1/15 s here
            assert abs(x1 - x0) < 120, said
    assert all(x > 280 for t, x in track if t >= 5.0), said
    if track[-1][0] > 6.5:  # he walked off to the right, not the walker to the left
        # at 6.7 s he is at x 440 and the walker at about 240; in a suite run the last pose,
        # the first after he was lost for 1.5 s, read 367 there
        assert track[-1][1] > 330, said


def test_the_look_around_for_others_waits_until_the_frames_result_is_out(monkeypatch):
    """While the person is tracked, the detector for several people (about 35 ms) runs after
    the frame's result is sent (`after_result`, which the pose worker calls), not before:
    inline it made one camera's p99 latency 52 ms instead of 26. On Sports2D's demo, the
    person on the box while the walker passes."""
    import cv2

    from komi_rtc.pose import followed_person
    from komi_rtc.pose.model_choice import PoseSettings, create_estimator

    # looks every 2 s even before anyone else is seen (6 s alone otherwise), so that two
    # come in the 5 s before he jumps
    monkeypatch.setattr(followed_person, "LOOK_AROUND_ALONE_S", followed_person.LOOK_AROUND_S)
    estimator = create_estimator(PoseSettings())
    assert isinstance(estimator, followed_person.OnePersonLandmarker)
    followed_person.close_searchers()  # none loaded: the first look around loads it
    capture = cv2.VideoCapture(str(two_people_outdoors()))
    looked_at: list[int] = []
    seen = 0
    try:
        for index in range(150):  # 5 s, before he jumps off the box; 15 of its 30 fps
            ok, bgr = capture.read()
            assert ok
            if index % 2:
                continue
            rgb = cv2.cvtColor(cv2.resize(bgr, (640, 360)), cv2.COLOR_BGR2RGB)
            time_ms = round(index * 1000 / 30)
            poses = estimator.estimate(rgb, time_ms)
            seen += len(poses)
            assert estimator.person_id in (None, 1), time_ms  # never someone else
            # the estimate never looked around itself: the detector for several people is
            # loaded by the first look, which only `after_result` makes
            assert bool(followed_person._SEARCHERS) == bool(looked_at), time_ms
            if estimator.after_result():
                looked_at.append(time_ms)
    finally:
        capture.release()
        estimator.close()
        followed_person.close_searchers()
    assert seen >= 60, seen  # of 75 frames
    # every 2 s from the first sighting
    assert len(looked_at) == 2 and looked_at[1] - looked_at[0] >= 2000, looked_at
    assert not estimator.after_result()  # each kept frame is looked at once

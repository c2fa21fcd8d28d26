"""A busy station's cameras analyse the same instants, in rounds (server/station_instants.py)."""

from __future__ import annotations

import asyncio

import pytest

from komi_rtc.server.station_instants import SharedInstants

INTERVAL = 1 / 15


def frames(newest: int, count: int = 8) -> list[tuple[float, int]]:
    """A camera's last frames as (capture time, frame number); frame n captured at n/15 s."""
    return [(n * INTERVAL, n) for n in range(newest - count + 1, newest + 1)]


def test_a_server_that_keeps_up_analyses_each_cameras_newest_frame():
    instants = SharedInstants()
    newest = {"a": 10 * INTERVAL, "b": 12 * INTERVAL}
    assert instants.choose("a", frames(10), newest, INTERVAL, False, 1.0) == 10
    assert instants.choose("b", frames(12), newest, INTERVAL, False, 1.0) == 12


def test_a_busy_round_takes_the_newest_instant_every_camera_has():
    instants = SharedInstants()
    newest = {"a": 20 * INTERVAL, "b": 18 * INTERVAL, "c": 19 * INTERVAL}
    # a gets a worker first: b has received frames up to 18 only, so the round is frame 18
    assert instants.choose("a", frames(20), newest, INTERVAL, True, 1.0) == 18
    newest = {"a": 22 * INTERVAL, "b": 21 * INTERVAL, "c": 22 * INTERVAL}
    # the others get their workers later, with newer frames: they still take frame 18
    assert instants.choose("c", frames(22), newest, INTERVAL, True, 1.0) == 18
    assert instants.choose("b", frames(21), newest, INTERVAL, True, 1.0) == 18
    assert instants.rounds == 1 and instants.rounds_complete == 1
    # the next round starts from what all of them have now
    assert (
        instants.choose(
            "b",
            frames(24),
            {"a": 23 * INTERVAL, "b": 24 * INTERVAL, "c": 23 * INTERVAL},
            INTERVAL,
            True,
            1.0,
        )
        == 23
    )


def test_a_camera_waits_for_its_frame_of_the_instant_and_never_goes_back():
    instants = SharedInstants()
    newest = {"a": 30 * INTERVAL, "b": 30 * INTERVAL}
    assert instants.choose("a", frames(30), newest, INTERVAL, True, 1.0) == 30
    # b's frame 30 is still being decoded: its worker waits for its next frame
    assert instants.choose("b", frames(29), newest, INTERVAL, True, 1.0) is None
    # its buffer skipped frame 30 (a dropped frame): it sits the round out (a frame of
    # another instant would pair with nothing), and the next round goes on from 31
    later = [(29 * INTERVAL, 29), (31 * INTERVAL, 31)]
    assert instants.choose("b", later, newest, INTERVAL, True, 1.0) is None
    assert instants.rounds_complete == 1
    newest = {"a": 31 * INTERVAL, "b": 31 * INTERVAL}
    assert instants.choose("b", later, newest, INTERVAL, True, 1.0) == 31


def test_a_stalled_camera_is_not_waited_for():
    instants = SharedInstants()
    newest = {"a": 40 * INTERVAL, "b": 40 * INTERVAL, "gone": -10.0}
    assert instants.choose("a", frames(40), newest, INTERVAL, True, 1.0) == 40
    assert instants.choose("b", frames(40), newest, INTERVAL, True, 1.0) == 40
    assert instants.rounds_complete == 1
    # the stalled camera, when a frame comes at last, analyses it outside the round
    assert instants.choose("gone", [(-10.0, -150)], newest, INTERVAL, True, 1.0) == -150


async def test_a_camera_done_with_a_round_waits_for_the_others_then_goes_on():
    instants = SharedInstants()
    newest = {"a": 50 * INTERVAL, "b": 50 * INTERVAL}
    instants.choose("a", frames(50), newest, INTERVAL, True, 5.0)
    waiting = asyncio.create_task(instants.wait_turn("a"))
    await asyncio.sleep(0)  # let it start waiting (the round is not over: it must block)
    assert not waiting.done()
    await instants.wait_turn("b")  # b has not analysed the round: it never waits
    instants.choose("b", frames(51), {"a": 51 * INTERVAL, "b": 51 * INTERVAL}, INTERVAL, True, 5.0)
    await asyncio.wait_for(waiting, 1.0)


async def test_a_round_waits_at_most_its_time_and_a_leaving_camera_ends_it():
    instants = SharedInstants()
    newest = {"a": 60 * INTERVAL, "b": 60 * INTERVAL, "c": 60 * INTERVAL}
    instants.choose("a", frames(60), newest, INTERVAL, True, 0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await instants.wait_turn("a")  # b and c never come: a goes on after 0.05 s
    assert 0.03 <= loop.time() - started < 1.0
    instants.choose("a", frames(62), newest | {"a": 62 * INTERVAL}, INTERVAL, True, 10.0)
    waiting = asyncio.create_task(instants.wait_turn("a"))
    await asyncio.sleep(0)
    instants.forget("b")
    assert not waiting.done()
    instants.forget("c")
    await asyncio.wait_for(waiting, 1.0)


@pytest.mark.parametrize("busy", [True, False])
def test_never_a_frame_older_than_one_already_analysed(busy):
    instants = SharedInstants()
    assert instants.choose("a", frames(70), {"a": 70 * INTERVAL}, INTERVAL, busy, 1.0) == 70
    # a later round whose instant every camera has is older than what a analysed
    newest = {"a": 71 * INTERVAL, "b": 65 * INTERVAL}
    assert instants.choose("a", frames(71), newest, INTERVAL, busy, 1.0) == 71

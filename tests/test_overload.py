"""Overload is visible: rates in every result and in /stats, one log line when it starts."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from auth import AUTH_HEADERS
from contract_client import person_jpeg_base64

from komi_rtc.server.analysis_rate import AnalysisRate


def _stream(rate: AnalysisRate, start: float, seconds: float, fps: float, analysed_every: int):
    """Feed `fps` frames a second for `seconds`, analysing every n-th; returns the
    transitions and the time after the last frame."""
    transitions = []
    frames = int(seconds * fps)
    for i in range(frames):
        now = start + i / fps
        rate.frame_received(now)
        if i % analysed_every == 0:
            transition = rate.frame_analysed(now + 0.02)
            if transition:
                transitions.append((round(now, 2), transition))
    return transitions, start + frames / fps


def test_keeping_up_is_not_overload():
    rate = AnalysisRate()
    transitions, _ = _stream(rate, 100.0, 10, 15, 1)
    assert transitions == []
    assert 14 <= rate.received_fps <= 15.5 and 14 <= rate.analysed_fps <= 15.5


def test_overload_is_reported_once_and_recovery_once():
    rate = AnalysisRate()
    _, now = _stream(rate, 100.0, 3, 15, 1)
    transitions, now = _stream(rate, now, 10, 15, 3)  # a third of the frames analysed
    assert [t for _, t in transitions] == ["overloaded"]
    assert rate.overloaded and 4 <= rate.analysed_fps <= 6
    transitions, now = _stream(rate, now, 10, 15, 1)
    assert [t for _, t in transitions] == ["recovered"]
    assert not rate.overloaded


def test_a_cap_is_not_overload():
    rate = AnalysisRate(cap_fps=5)
    transitions, _ = _stream(rate, 100.0, 10, 15, 3)  # 5 of 15 fps, as the cap asks
    assert transitions == [] and not rate.overloaded
    rate = AnalysisRate(cap_fps=5)
    transitions, _ = _stream(rate, 100.0, 10, 15, 6)  # 2.5 fps: below the cap
    assert [t for _, t in transitions] == ["overloaded"]


def test_nothing_is_judged_in_the_first_seconds():
    rate = AnalysisRate()
    transitions, _ = _stream(rate, 100.0, 1.5, 15, 5)
    assert transitions == [] and not rate.overloaded


async def test_a_camera_sending_faster_than_analysis_is_reported_busy(server, caplog):
    """A legacy client floods JPEGs as fast as it can: far more than one worker analyses."""
    caplog.set_level(logging.INFO, logger="komi_rtc.server.analysis_rate")
    jpeg = person_jpeg_base64(3)
    messages: list[dict] = []
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.ws_connect(f"{server.url}/ws/camera?camera_id=busy_cam") as ws:

            async def read() -> None:
                async for message in ws:
                    if message.type == aiohttp.WSMsgType.TEXT:
                        messages.append(message.json())

            reader = asyncio.ensure_future(read())

            async def stats() -> dict:
                async with http.get(f"{server.url}/stats") as response:
                    return (await response.json())["cameras"]["busy_cam"]

            try:
                busy_since = None
                deadline = asyncio.get_running_loop().time() + 30
                i = 0
                while asyncio.get_running_loop().time() < deadline:  # as fast as the loop goes
                    i += 1
                    await ws.send_json({"type": "frame", "timestamp": i, "image_data": jpeg})
                    if i % 50 == 0 and busy_since is None and (await stats())["overloaded"]:
                        busy_since = i
                    if busy_since is not None and i >= busy_since + 100:
                        break
                assert busy_since is not None, "never reported busy"
                camera = await stats()
                print(f"busy after {busy_since} frames: {camera}")
                assert camera["received_fps"] > camera["analysed_fps"] > 0
            finally:
                await ws.close()
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
    results = [m for m in messages if m.get("type") == "frame_processed"]
    timing = results[-1]["timing"]
    assert timing["overloaded"] is True
    assert timing["received_fps"] > timing["analysed_fps"] > 0
    busy_lines = [r for r in caplog.records if "server busy" in r.getMessage()]
    assert len(busy_lines) == 1, [r.getMessage() for r in busy_lines]
    assert "[busy_cam]" in busy_lines[0].getMessage()

"""The Python camera peer: results, exact latency, recording, reconnection."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
import time

from auth import ADMIN_TOKEN, AUTH_HEADERS
from harness import free_port, wait_for

from komi_rtc.camera.peer import CameraPeer, CameraSpec, parse_camera_list
from komi_rtc.media.video_sources import open_source


async def _median_latency(url: str, results: int = 25) -> float:
    peer = CameraPeer(
        url, "cam_latency", open_source("demo", 640, 480, 10), fps=10, token=ADMIN_TOKEN
    )
    task = asyncio.create_task(peer.run())
    try:
        await wait_for(
            lambda: peer.status.latency.count >= results,
            timeout=30,
            what=lambda: f"{results} latencies ({peer.status.state})",
        )
        return peer.status.latency.percentile(50) or 0.0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await peer.close()


async def test_latency_figure_includes_an_injected_server_delay(start_server):
    """A 250 ms delay added on the server shows up as +250 ms in the camera's figure."""
    plain = await start_server()
    baseline = await _median_latency(plain.url)
    await plain.server.close()
    delayed = await start_server(inject_delay_ms=250)
    with_delay = await _median_latency(delayed.url)
    await delayed.server.close()
    print(f"latency p50: {baseline:.0f} ms plain, {with_delay:.0f} ms with 250 ms injected")
    assert 0 < baseline < 400
    assert 200 <= with_delay - baseline <= 300


async def test_camera_peer_records_and_reconnects_after_a_server_restart(
    restartable_server, tmp_path
):
    server = restartable_server
    record_path = tmp_path / "session.jsonl"
    record = open(record_path, "w", encoding="utf-8")
    peer = CameraPeer(
        server.url,
        "cam_restart",
        open_source("demo", 640, 480, 15),
        fps=15,
        record=record,
        token=ADMIN_TOKEN,
    )
    task = asyncio.create_task(peer.run())
    try:
        await _wait_results(peer, 5)
        await server.stop()
        results_before = peer.status.results
        await server.start()
        await _wait_results(peer, results_before + 5, timeout=30)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await peer.close()
        record.close()
    lines = record_path.read_text().splitlines()
    assert len(lines) >= 10
    message = json.loads(lines[-1])
    assert message["type"] == "frame_processed" and message["camera_id"] == "cam_restart"


async def _wait_results(peer: CameraPeer, count: int, timeout: float = 15) -> None:
    await wait_for(
        lambda: peer.status.results >= count,
        timeout,
        what=lambda: f"{count} results, {peer.status.results} so far ({peer.status.state})",
    )


def test_camera_list_parsing():
    assert parse_camera_list("camera_12345:0,camera_67890:1") == [
        CameraSpec("camera_12345", "0"),
        CameraSpec("camera_67890", "1"),
    ]
    # a station per camera; a demo's own colons and a path's "@" stay in the source
    assert parse_camera_list("side:demo:squat:side_left@gym1,f:clips/me@home.mp4@gym1") == [
        CameraSpec("side", "demo:squat:side_left", "gym1"),
        CameraSpec("f", "clips/me@home.mp4", "gym1"),
    ]
    import pytest

    for bad in ("camera_1", "camera_1:0@", "camera_1:@gym1", "camera_1:0@-gym"):
        with pytest.raises(ValueError):
            parse_camera_list(bad)


async def test_analysis_fps_cap_analyses_fewer_frames(start_server):
    """--analysis-fps 3 with a 10 fps camera: most frames are skipped by design, none queue."""
    import aiohttp

    running = await start_server(analysis_fps=3.0)
    peer = CameraPeer(
        running.url, "cam_capped", open_source("demo", 640, 480, 10), fps=10, token=ADMIN_TOKEN
    )
    task = asyncio.create_task(peer.run())
    try:
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:

            async def forty_frames_received() -> dict | None:
                async with http.get(f"{running.url}/stats") as response:
                    stats = (await response.json())["cameras"].get("cam_capped")
                return stats if stats and stats["frames_received"] >= 40 else None

            stats = await wait_for(forty_frames_received, timeout=20, what="40 frames received")
        assert stats["frames_analysed"] <= 0.5 * stats["frames_received"]
        assert stats["frames_skipped"] >= 0.4 * stats["frames_received"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await peer.close()
        await running.server.close()


def test_video_file_and_image_sources_loop(tmp_path):
    import cv2
    import numpy as np
    from contract_client import person_frame

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for i in range(5):
        writer.write(cv2.cvtColor(person_frame(i, 320, 240)[0], cv2.COLOR_RGB2BGR))
    writer.release()
    source = open_source(str(path), 640, 480, 10)
    frames = [source.read() for _ in range(12)]  # more than the file holds: it loops
    source.close()
    assert all(f.shape == (480, 640, 3) for f in frames)
    image = tmp_path / "person.png"
    cv2.imwrite(str(image), cv2.cvtColor(person_frame(0)[0], cv2.COLOR_RGB2BGR))
    moving = open_source(str(image), 640, 480, 10)
    first, later = moving.read(), [moving.read() for _ in range(10)][-1]
    assert first.shape == (480, 640, 3) and not np.array_equal(first, later)
    import pytest

    from komi_rtc.media.video_sources import SourceError

    with pytest.raises(SourceError):
        open_source(str(tmp_path / "missing.mp4"), 640, 480, 10)


async def test_a_peer_whose_server_is_down_says_each_retry_once_with_its_real_delay():
    """Against a server that is down, the camera peer says each failed attempt once, with
    the delay it then waits (1, 2, 4, 8 s), and its status lines between them count down to
    that moment instead of repeating the delay."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "komi_rtc.camera",
        "--server",
        f"http://127.0.0.1:{free_port()}",  # nobody listens: connection refused
        "--source",
        "demo",
        "--camera-id",
        "cam_down",
        "--token",
        "unused-the-server-is-down",
        "--status-interval",
        "0.5",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    lines: list[tuple[float, str]] = []  # (when it arrived, the line)
    try:
        async with asyncio.timeout(60):
            while not any("retrying in 8 s" in line for _, line in lines):
                raw = await process.stdout.readline()
                assert raw, "the peer ended:\n" + "\n".join(line for _, line in lines)
                lines.append((time.monotonic(), raw.decode().rstrip()))
    finally:
        process.send_signal(signal.SIGINT)
        try:
            async with asyncio.timeout(20):
                await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    output = "\n".join(line for _, line in lines)
    retries = [(at, line) for at, line in lines if "retrying in" in line]
    delays = [int(d) for _, line in retries for d in re.findall(r"retrying in (\d+) s$", line)]
    assert delays == [1, 2, 4, 8], output
    for _, line in retries:
        assert line.startswith("[cam_down] cannot reach http://127.0.0.1:"), line
        assert "connection refused (is the server running?" in line, line
    # every other line is the first one or a status line, true to the countdown
    assert lines[0][1].startswith("[cam_down] streaming rendered person"), output
    countdown, announced_at, delay = 0, 0.0, 0
    for at, line in lines[1:]:
        if "retrying in" in line:
            announced_at, delay = at, int(line.rsplit(" ", 2)[1])
            continue
        if not line.startswith("[cam_down] not connected; next try in "):
            assert line == "[cam_down] not connected; trying again now", output
            continue
        left = int(line.rsplit(" ", 2)[1])
        assert left <= delay and abs(left - (delay - (at - announced_at))) <= 1.5, output
        countdown += 1
    assert countdown >= 4, output  # the 2 and 4 s waits have status lines (every 0.5 s)

"""A short run of the cluster scale-out benchmark: two nodes share the cameras offered to one,
and Redis carries heartbeats, not frames.

The figures themselves are judged from the full run (`python -m komi_rtc.bench --nodes 1,2`).
"""

from __future__ import annotations

import os
import subprocess
import sys

import psutil
import pytest
from harness import wait_for_blocking

from komi_rtc.bench.cluster import _Fleet, _Node, run_scaleout


@pytest.mark.bench
@pytest.mark.databases  # a Redis for the nodes
def test_two_node_cluster_spreads_cameras_and_keeps_redis_off_the_frame_path(tmp_path):
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    report = run_scaleout(nodes=2, cameras=2, fps=15.0, duration=4.0, warmup=2.0, workdir=tmp_path)

    assert set(report["per_node"]) == {"node_1", "node_2"}
    for node in report["per_node"].values():
        assert node["cameras"] == 1
        assert node["analysed_fps"] > 0
    assert report["moved_during_window"] == []
    assert report["total"]["analysed_fps"] > 0
    for camera in report["per_camera"].values():
        assert camera["analysed_fps"] > 0
        assert camera["latency_ms"]["p50"] <= camera["latency_ms"]["p95"]
    assert report["fairness"]["nodes"]["jain_index"] > 0.5
    redis = report["redis"]
    assert 0 < redis["commands_per_analysed_frame"] < 1
    # what Redis did is what the heartbeats send, whatever the frame rate
    assert redis["commands_per_s"] <= redis["heartbeat_commands_per_s"] * 1.2
    assert redis["commands_beyond_heartbeat_per_analysed_frame"] < 0.05
    # nothing it started is left running
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before


def test_pre_encoded_camera_loop_is_the_same_video_with_a_keyframe_every_second():
    """The load generator's VP8 encoded ahead: the nodes decode what a live peer would send."""
    import av
    import numpy as np

    from komi_rtc.bench.peer import PreEncodedLoop, ReplayedLoop
    from komi_rtc.media.video_sources import open_source

    fps = 15.0
    loop = ReplayedLoop(open_source("demo", 160, 120, fps), fps)
    encoded = PreEncodedLoop(loop, fps)
    assert len(encoded.packets) == len(loop.frames)

    decoder = av.CodecContext.create("libvpx", "r")
    keyframes = []
    errors = []
    for index, data in enumerate(encoded.packets * 2):  # twice: the loop restarts cleanly
        (frame,) = decoder.decode(av.Packet(data))
        if data[0] & 1 == 0:  # the VP8 frame tag's inverse keyframe bit (RFC 6386, 9.1)
            keyframes.append(index)
        source = loop.frames[index % len(loop.frames)].astype(np.float64)
        errors.append(np.abs(frame.to_ndarray(format="rgb24") - source).mean())
    assert keyframes[:3] == [0, 15, 30]
    assert len(encoded.packets) in keyframes
    assert max(errors) < 5  # mean absolute error in 0..255; two frames of the loop differ by ~9


def test_the_scaleout_ratio_sums_the_rounds_and_keeps_each_round():
    from komi_rtc.bench.cluster import scaleout_ratios

    def run(nodes: int, fps: float) -> dict:
        return {"nodes": nodes, "total": {"analysed_fps": fps}}

    ratios = scaleout_ratios([run(1, 45), run(2, 85), run(1, 47), run(2, 80)], rounds=2)
    assert ratios == {"2": {"analysed_fps_over_1_node": 1.79, "rounds": [1.89, 1.7]}}
    assert scaleout_ratios([run(1, 40)], rounds=1) == {}


def test_a_niced_camera_peer_runs_at_that_niceness(tmp_path):
    """`--peer-nice 19`: the peer process itself (nice execs it) yields the cores to nodes."""
    fleet = _Fleet(tmp_path, "token")
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    fleet.nodes.append(_Node("node_1", "http://127.0.0.1:9", idle, tmp_path / "node.log"))
    try:
        fleet.spawn_camera("cam_nice", 15.0, 5.0, (160, 120), nice=19)
        fleet.spawn_camera("cam_plain", 15.0, 5.0, (160, 120))
        niceness = {c.id: _peer_niceness(c.process.pid) for c in fleet.cameras}
    finally:
        idle.kill()  # the stand-in node: stop() would wait 15 s for it to obey SIGINT
        idle.wait()
        fleet.stop()
    assert niceness == {"cam_nice": 19, "cam_plain": os.nice(0)}


def _peer_niceness(pid: int) -> int:
    """Once `nice` has exec'd the peer (the same pid), its niceness. (`nice`'s own command
    line already names the peer, before it has set the niceness.)"""
    process = psutil.Process(pid)

    def peer_running() -> bool:
        return process.cmdline()[:1] == [sys.executable]

    wait_for_blocking(peer_running, 30, lambda: f"the peer: {process.cmdline()}", interval=0.01)
    return process.nice()

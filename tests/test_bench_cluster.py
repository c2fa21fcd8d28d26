"""A short run of the cluster scale-out benchmark: two nodes share the cameras offered to one,
and Redis carries heartbeats, not frames.

The figures themselves are judged from the full run (`python -m komi_rtc.bench --nodes 1,2`).
"""

from __future__ import annotations

import psutil

from komi_rtc.bench.cluster import run_scaleout


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

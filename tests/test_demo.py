"""The demo camera shows the product's point: a person whose reps are counted, and whose
history fills (issue 28)."""

from __future__ import annotations

import aiohttp
import pytest
from auth import AUTH_HEADERS
from harness import free_port

from komi_rtc.media.video_sources import SourceError, open_source


async def test_the_demo_camera_counts_squats_from_the_first_seconds(start_server):
    # a fixed port: the demo camera streams to the server's own address
    running = await start_server(port=free_port(), demo_camera=True)
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.ws_connect(f"{running.url}/ws/monitor") as ws:
            reps, feedback = 0, set()
            while reps < 2:  # ws.receive_json's timeout fails the test if they stop
                message = await ws.receive_json(timeout=30)
                if message["type"] != "status_update":
                    continue
                assert message["camera_id"] == "demo_camera"
                analysis = message.get("analysis")
                if analysis is None:
                    continue
                assert analysis["exercise"] == "squat" and analysis["view"] == "side"
                reps = analysis["reps"]
                feedback |= {f["code"] for f in analysis["feedback"]}
            assert "step_back" not in feedback and "turn_sideways" not in feedback
        # the demo person's history fills as the demo runs (its set, with those reps)
        async with http.get(f"{running.url}/people/demo/sets") as response:
            assert response.status == 200
            sets = (await response.json())["sets"]
        assert sets and sets[0]["camera_id"] == "demo_camera" and sets[0]["reps"] >= 1


def test_demo_sources_name_their_exercise_and_refuse_unknown_ones():
    source = open_source("demo:jumping_jack", 320, 240, 10)
    assert source.exercise == "jumping_jack" and source.catalog_view == "front"
    assert source.read().shape == (240, 320, 3)
    side = open_source("demo:bicep_curl:side_right", 320, 240, 10)
    assert side.catalog_view == "side"
    for bad in ("demo:moonwalk", "demo:squat:above"):
        with pytest.raises(SourceError, match=bad):
            open_source(bad, 320, 240, 10)


def test_each_cluster_node_streams_its_own_demo_camera():
    from komi_rtc.protocol import validate_camera_id
    from komi_rtc.server.demo_camera import demo_camera_id

    assert demo_camera_id(None) == "demo_camera"
    assert demo_camera_id("node1") == "demo_node1"
    assert demo_camera_id("node1") != demo_camera_id("node2")
    awkward = demo_camera_id("rack 3/node:1" + "x" * 80)
    assert validate_camera_id(awkward) == awkward

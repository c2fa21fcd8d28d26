"""Fuzzing data channels (issue 22): a monitor connection opening any number of channels,
with any labels, gets results on one `komi` channel only; every other channel is closed,
the message budget is that one channel's, and nothing stays subscribed once it leaves."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription
from contract_client import PersonTrack, connect_camera, post_offer
from harness import wait_for
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fuzz import SERVER_SETTINGS, _on_loop, _run_hypothesis

from komi_rtc.server.app_keys import REGISTRY

CHANNEL_SETS = 6  # each case is a real peer connection (about a second)
# (not beyond ASCII: aiortc itself, the client here, writes such a label's length wrong)
LABELS = st.sampled_from(["komi", "komi", "komi", "", "x", "komi ", "KOMI", "komi\x00"])


async def _monitor_with_channels(url: str, camera_id: str, labels: list[str]) -> Any:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    channels = [pc.createDataChannel(label) for label in labels]
    received: list[list[str]] = [[] for _ in channels]
    for i, channel in enumerate(channels):
        channel.on("message", lambda raw, i=i: received[i].append(json.loads(raw)["type"]))
    await pc.setLocalDescription(await pc.createOffer())
    body = {"sdp": pc.localDescription.sdp, "type": "offer", "role": "monitor"}
    status, answer = await post_offer(url, body | {"camera_id": camera_id})
    assert status == 200, answer
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
    return pc, channels, received


async def _judge(url: str, camera_id: str, labels: list[str], session: Any) -> None:
    pc, channels, received = await _monitor_with_channels(url, camera_id, labels)
    try:
        first = labels.index("komi") if "komi" in labels else None
        others = [c for i, c in enumerate(channels) if i != first]
        await wait_for(lambda: all(c.readyState == "closed" for c in others), timeout=15)
        if first is not None:
            await wait_for(lambda: received[first].count("frame_processed") >= 3, timeout=15)
            channels[first].send(json.dumps({"type": "ping", "t": 1}))  # answered there
            await wait_for(lambda: "pong" in received[first], timeout=10)
        assert session.monitor_count == (1 if first is not None else 0)
        # a refused channel is told why (when it opened in time) and gets nothing else
        refused = [r for i, r in enumerate(received) if i != first]
        assert all(r in ([], ["error"]) for r in refused), received
    finally:
        await pc.close()
    await wait_for(lambda: session.monitor_count == 0, timeout=10)


async def test_any_channels_a_monitor_opens_get_results_on_one_komi_channel_only(server):
    camera = await connect_camera(server.url, PersonTrack(), "cam_fuzz_channels")
    session = server.app[REGISTRY].get("cam_fuzz_channels")
    loop = asyncio.get_running_loop()
    try:
        await camera.next_message("frame_processed")

        @settings(SERVER_SETTINGS, max_examples=CHANNEL_SETS)
        @given(st.lists(LABELS, min_size=1, max_size=12))
        def open_channels(labels: list[str]) -> None:
            _on_loop(loop, _judge(server.url, "cam_fuzz_channels", labels, session), 60)

        await _run_hypothesis(open_channels)
        await camera.next_message("frame_processed")  # the camera still streams
    finally:
        await camera.close()

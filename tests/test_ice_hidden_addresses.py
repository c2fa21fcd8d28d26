"""Offers whose host addresses are hidden behind mDNS `.local` names, or that carry no
candidate at all, as browser pages without camera permission send them (Firefox's with
`a=end-of-candidates`): the answer carries the server's own candidates and ICE completes on
the addresses the peer's checks come from (peer-reflexive candidates).

Real aiortc peers over the machine's own addresses; the `.local` names are unresolvable and
aioice's multicast lookups of them are dropped before they leave the machine."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from contract_client import PersonTrack, connect_camera, connect_monitor, post_offer
from harness import MulticastDrop, wait_for

from komi_rtc.server.app_keys import REGISTRY

CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ .*$", re.MULTILINE)


def hide_addresses(sdp: str) -> str:
    """Every candidate's address replaced by a fresh mDNS name (as Firefox and Chromium
    do for a page without camera permission); `a=end-of-candidates` kept."""

    def hidden(match: re.Match[str]) -> str:
        line = match.group(0)
        return line.replace(f" {match.group(1)} ", f" {uuid.uuid4()}.local ", 1)

    rewritten = CANDIDATE.sub(hidden, sdp)
    assert rewritten.count(".local ") == len(CANDIDATE.findall(sdp)) > 0
    return rewritten


def drop_candidates(sdp: str) -> str:
    """No candidate at all, `a=end-of-candidates` kept (the harder case: aioice takes the
    end as final)."""
    without = re.sub(r"^a=candidate:.*\r\n", "", sdp, flags=re.MULTILINE)
    assert "a=candidate:" not in without and "a=end-of-candidates" in without
    return without


def answer_candidates(pc: RTCPeerConnection) -> list[str]:
    remote = pc.remoteDescription
    assert remote is not None
    return CANDIDATE.findall(remote.sdp)


@pytest.fixture
def no_multicast() -> Iterator[MulticastDrop]:
    with MulticastDrop() as rule:
        yield rule


@pytest.mark.parametrize("rewrite", [hide_addresses, drop_candidates], ids=["mdns", "none"])
async def test_camera_and_monitor_with_hidden_addresses_stream(
    server: Any, no_multicast: MulticastDrop, rewrite: Any
) -> None:
    track = PersonTrack()
    camera = await connect_camera(server.url, track, rewrite_offer=rewrite)
    monitor = None
    try:
        assert answer_candidates(camera.pc), "the camera's answer has no ICE candidate"
        result = await camera.next_message("frame_processed", timeout=30)
        assert result["pose_data"]["pose"], "the camera's frames were not analysed"
        monitor = await connect_monitor(server.url, camera.camera_id, rewrite_offer=rewrite)
        assert answer_candidates(monitor.pc), "the monitor's answer has no ICE candidate"
        await monitor.next_message("frame_processed", timeout=30)
        await wait_for(lambda: monitor.frame_count >= 5, 30, "the monitor's video playing")
        assert camera.pc.iceConnectionState == "completed"
        assert monitor.pc.iceConnectionState == "completed"
    finally:
        if monitor is not None:
            await monitor.close()
        await camera.close()
    if rewrite is hide_addresses:
        # aioice did ask for the names (and nothing of it left the machine)
        assert no_multicast.dropped() > 0


async def test_unresolvable_names_among_real_candidates_are_ignored(
    server: Any, no_multicast: MulticastDrop
) -> None:
    """An offer with a `.local` name no one answers for next to its real candidates: the
    name is dropped after its lookup, the real ones connect."""

    def add_hidden(sdp: str) -> str:
        first = CANDIDATE.search(sdp)
        assert first is not None
        hidden = first.group(0).replace(f" {first.group(1)} ", f" {uuid.uuid4()}.local ", 1)
        return sdp.replace(first.group(0), f"{hidden}\r\n{first.group(0)}", 1)

    camera = await connect_camera(server.url, PersonTrack(), rewrite_offer=add_hidden)
    try:
        await camera.next_message("frame_processed", timeout=30)
        assert camera.pc.iceConnectionState == "completed"
    finally:
        await camera.close()


async def test_monitor_offer_racing_a_closing_camera_answers_404(
    server: Any, no_multicast: MulticastDrop
) -> None:
    """The camera closes while its monitor's offer is negotiating (held a second by the
    lookup of its `.local` names): 404 naming the camera, never a 500."""
    camera = await connect_camera(server.url, PersonTrack())
    monitor_pc = RTCPeerConnection()
    try:
        await camera.next_message("frame_processed", timeout=30)
        session = server.app[REGISTRY].get(camera.camera_id)
        monitor_pc.addTransceiver("video", direction="recvonly")
        monitor_pc.createDataChannel("komi")
        await monitor_pc.setLocalDescription(await monitor_pc.createOffer())
        body = {
            "sdp": hide_addresses(monitor_pc.localDescription.sdp),
            "type": "offer",
            "role": "monitor",
            "camera_id": camera.camera_id,
        }
        offer = asyncio.ensure_future(post_offer(server.url, body))
        await wait_for(lambda: session.monitor_peers, 10, "the monitor negotiating")
        await session.close("the test closes it")
        status, answer = await offer
        assert status == 404, answer
        assert camera.camera_id in answer["error"] and "left" in answer["error"]
        # and an offer for it now, while it is gone, is a plain 404 too
        status, answer = await post_offer(server.url, body)
        assert status == 404, answer
    finally:
        await monitor_pc.close()
        await camera.close()


async def test_monitor_offer_while_the_camera_is_closing_answers_404(server: Any) -> None:
    """A camera still listed while its close runs (its monitors being told): a monitor
    offer then is refused at once, not negotiated for a camera that is going."""
    camera = await connect_camera(server.url, PersonTrack())
    monitor_pc = RTCPeerConnection()
    try:
        await camera.next_message("frame_processed", timeout=30)
        session = server.app[REGISTRY].get(camera.camera_id)
        monitor_pc.addTransceiver("video", direction="recvonly")
        monitor_pc.createDataChannel("komi")
        await monitor_pc.setLocalDescription(await monitor_pc.createOffer())
        body = {
            "sdp": monitor_pc.localDescription.sdp,
            "type": "offer",
            "role": "monitor",
            "camera_id": camera.camera_id,
        }
        release = asyncio.Event()

        async def slow_listener() -> None:
            await release.wait()  # holds the close half-way, the camera still listed

        session.add_close_listener(release, slow_listener)
        session.request_close("the test closes it")
        assert session.closing and server.app[REGISTRY].get(camera.camera_id) is session
        status, answer = await post_offer(server.url, body)
        release.set()
        assert status == 404, answer
        assert "left" in answer["error"]
        await asyncio.wait_for(session.closed.wait(), 10)
    finally:
        await monitor_pc.close()
        await camera.close()


async def test_answer_to_an_offer_without_candidates_completes_ice() -> None:
    """The adapter alone, two aiortc peers: the offerer's candidates removed, its end of
    candidates kept; the answerer still gathers and ICE completes (it failed at once
    before: aioice dropped the component, gathered nothing, and found no pair)."""
    from komi_rtc.media.aiortc_adapter import accept_offer

    offerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    answerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        offerer.createDataChannel("komi")
        await offerer.setLocalDescription(await offerer.createOffer())
        waiting = await accept_offer(answerer, drop_candidates(offerer.localDescription.sdp))
        assert waiting
        await answerer.setLocalDescription(await answerer.createAnswer())
        assert CANDIDATE.findall(answerer.localDescription.sdp)
        await offerer.setRemoteDescription(
            RTCSessionDescription(answerer.localDescription.sdp, "answer")
        )
        await wait_for(
            lambda: answerer.connectionState == "connected",
            15,
            lambda: f"ICE: {answerer.iceConnectionState}",
        )
    finally:
        await offerer.close()
        await answerer.close()


async def test_stock_aiortc_still_answers_an_ended_offer_without_candidates_with_none() -> None:
    """Why `accept_offer` exists: aiortc and aioice as pinned gather nothing for such an
    offer. When this fails, a release fixed it and the workaround can go."""
    offerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    answerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        offerer.createDataChannel("komi")
        await offerer.setLocalDescription(await offerer.createOffer())
        sdp = drop_candidates(offerer.localDescription.sdp)
        await answerer.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        await answerer.setLocalDescription(await answerer.createAnswer())
        assert CANDIDATE.findall(answerer.localDescription.sdp) == []
    finally:
        await offerer.close()
        await answerer.close()


async def test_camera_offer_whose_connection_the_server_closes_while_answering_answers_503(
    server: Any, no_multicast: MulticastDrop
) -> None:
    """The server stops (its signaling closes every connection still negotiating) while a
    camera's offer waits on the lookup of its `.local` names: 503 saying to offer again,
    not a 500 nor a 400 blaming the offer."""
    from komi_rtc.server.app_keys import SIGNALING

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTrack(PersonTrack())
        pc.createDataChannel("komi")
        await pc.setLocalDescription(await pc.createOffer())
        body = {
            "sdp": hide_addresses(pc.localDescription.sdp),
            "type": "offer",
            "role": "camera",
            "camera_id": "closed_under_it",
        }
        offer = asyncio.ensure_future(post_offer(server.url, body))
        await wait_for(
            lambda: "closed_under_it" in server.app[REGISTRY].reserved(),
            10,
            "the offer negotiating",
        )
        await server.app[SIGNALING].close()
        status, answer = await offer
        assert status == 503, answer
        assert "offer again" in answer["error"]
        assert "closed_under_it" not in server.app[REGISTRY].reserved()
    finally:
        await pc.close()

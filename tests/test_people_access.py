"""People's data has an owner, stations keep their cameras apart, and revocation reaches
every connection a token opened or made (issue 22; docs/protocol.md, "Access control").
Each test replays an attack of the attack run against a real server and real peers."""

from __future__ import annotations

import asyncio
import json
import logging
import socket

import pytest
from auth import ADMIN_TOKEN, call, mint_token
from contract_client import PersonTrack, connect_camera, connect_monitor, post_offer
from harness import wait_for

from komi_rtc.server.app_keys import REGISTRY, SIGNALING


async def _camera_with_person(url: str, camera_id: str, person: str, token: str = ADMIN_TOKEN):
    """A camera tied to `person` by its offer, with a running set."""
    peer = await connect_camera(url, PersonTrack(), camera_id, token, person=person)
    await peer.next_message("person_set")
    peer.send({"type": "set_exercise", "exercise": "squat"})
    await peer.next_message("exercise_set")
    return peer


async def _sets(url: str, person: str) -> list[dict]:
    status, body = await call(f"{url}/people/{person}/sets")
    assert status == 200, body
    assert isinstance(body, dict)
    return body["sets"]


async def test_a_camera_token_neither_ties_itself_to_a_stranger_nor_reads_her_history(server):
    anna = await _camera_with_person(server.url, "cam_a", "p1")
    await wait_for_sets(server.url, "p1", 1)
    spy_token = (await mint_token(server.url, role="camera", camera_id="cam_b"))["token"]
    # the offer naming her: refused before any peer exists
    spy_pc_status, body = await _offer_with_person(server.url, spy_token, "cam_b", "p1")
    assert spy_pc_status == 403 and "p1" in body["error"], body
    spy = await connect_camera(server.url, PersonTrack(), token=spy_token)
    try:
        assert spy.camera_id == "cam_b"
        await spy.next_message("frame_processed")  # its channel is open
        # a set_person on the channel: an error, nothing tied
        spy.send({"type": "set_person", "person": "p1"})
        error = await spy.next_message("error")
        assert "p1" in error["error"]
        assert server.app[REGISTRY].get("cam_b").person is None
        # nor by REST on its own camera
        status, body = await call(
            f"{server.url}/cameras/cam_b/person", "POST", spy_token, json={"person": "p1"}
        )
        assert status == 403, body
        # a set of the spy's own camera is never written into her history
        spy.send({"type": "set_exercise", "exercise": "squat"})
        await spy.next_message("exercise_set")
        # and no camera token reads history, not even of a person its camera is tied to
        for path in ("sets", "sets.csv", "recommendation", "progress"):
            status, body = await call(f"{server.url}/people/p1/{path}", token=spy_token)
            assert status == 403, (path, status, body)
        assert [s["camera_id"] for s in await _sets(server.url, "p1")] == ["cam_a"]
    finally:
        await spy.close()
        await anna.close()


async def wait_for_sets(url: str, person: str, count: int) -> list[dict]:
    found: list[dict] = []

    async def enough() -> bool:
        found[:] = await _sets(url, person)
        return len(found) >= count

    await wait_for(enough, interval=0.1, what=lambda: f"{count} sets of {person}: {found}")
    return found


async def _offer_with_person(url: str, token: str, camera_id: str, person: str):
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    pc.addTrack(PersonTrack())
    pc.createDataChannel("komi")
    try:
        await pc.setLocalDescription(await pc.createOffer())
        body = {
            "sdp": pc.localDescription.sdp,
            "type": "offer",
            "role": "camera",
            "camera_id": camera_id,
            "person": person,
        }
        return await post_offer(url, body, token)
    finally:
        await pc.close()


async def test_a_link_made_for_a_person_ties_its_camera_to_that_person_only(server):
    monitor = await mint_token(server.url, role="monitor", ttl_s=600)
    link = await mint_token(
        server.url, monitor["token"], role="camera", camera_id="cam_p2", person="p2"
    )
    camera = await connect_camera(server.url, PersonTrack(), token=link["token"])
    try:
        # tied by its token, with no person in the offer
        assert (await camera.next_message("person_set"))["person"] == "p2"
        camera.send({"type": "set_person", "person": "p3"})
        assert "p3" in (await camera.next_message("error"))["error"]
        camera.send({"type": "set_exercise", "exercise": "squat"})
        await camera.next_message("exercise_set")
        await wait_for_sets(server.url, "p2", 1)
        status, _ = await call(f"{server.url}/people/p2/sets", token=link["token"])
        assert status == 403
    finally:
        await camera.close()


async def test_a_person_token_reads_that_persons_history_only(server):
    anna = await _camera_with_person(server.url, "cam_a", "p1")
    bo = await _camera_with_person(server.url, "cam_b", "p2")
    try:
        await wait_for_sets(server.url, "p1", 1)
        await wait_for_sets(server.url, "p2", 1)
        token = (await mint_token(server.url, role="person", person="p1"))["token"]
        for path in ("sets", "sets.csv", "recommendation", "progress"):
            status, _ = await call(f"{server.url}/people/p1/{path}", token=token)
            assert status == 200, path
            status, _ = await call(f"{server.url}/people/p2/{path}", token=token)
            assert status == 403, path
        status, body = await call(f"{server.url}/people/p1/sets", token=token)
        assert [s["camera_id"] for s in body["sets"]] == ["cam_a"]  # type: ignore[index]
        for path in ("/people", "/cameras", "/stats", "/get-image/cam_a", "/monitor"):
            status, _ = await call(server.url + path, token=token)
            assert status == 403, path
        status, page = await call(f"{server.url}/history", token=token)
        assert status == 200 and "<html" in str(page).lower()
        status, me = await call(f"{server.url}/whoami", token=token)
        assert status == 200 and me == {  # what the history page opens
            "role": "person",
            "camera_id": None,
            "person": "p1",
            "station": None,
            "expires_at": me["expires_at"],  # type: ignore[index]
        }
        # a camera token still gets the history page's refusal
        camera = (await mint_token(server.url, role="camera"))["token"]
        status, _ = await call(f"{server.url}/history", token=camera)
        assert status == 403
        # only the admin and monitors mint, and a monitor no monitors
        monitor = (await mint_token(server.url, role="monitor"))["token"]
        status, _ = await call(f"{server.url}/tokens", "POST", token, json={"role": "camera"})
        assert status == 403
        status, _ = await call(f"{server.url}/tokens", "POST", camera, json={"role": "person"})
        assert status == 403
        status, _ = await call(f"{server.url}/tokens", "POST", monitor, json={"role": "monitor"})
        assert status == 403
    finally:
        await anna.close()
        await bo.close()


async def test_a_station_is_joined_only_with_its_link_or_by_a_monitor(server):
    monitor = (await mint_token(server.url, role="monitor", ttl_s=600))["token"]
    front = await connect_camera(server.url, PersonTrack(), "cam_front")
    try:
        status, body = await call(
            f"{server.url}/stations/st1", "POST", monitor, json={"cameras": ["cam_front"]}
        )
        assert status == 200, body
        await front.next_message("frame_processed")  # its channel is open
        front.send({"type": "set_exercise", "exercise": "squat", "station": "st1"})
        await front.next_message("station_exercise_set")
        # a pairing token for another camera: refused, so it reads nothing of st1
        spy_token = (await mint_token(server.url, monitor, role="camera"))["token"]
        status, body = await _offer_in_station(server.url, spy_token, "cam_spy", "st1")
        assert status == 403 and "st1" in body["error"], body
        # the station's join link is made for st1 (and st1 only)
        status, joined = await call(f"{server.url}/stations/st1/join", token=monitor)
        assert status == 200 and joined["token_id"]  # type: ignore[index]
        join_token = _query_token(joined["url"])  # type: ignore[index]
        status, body = await _offer_in_station(server.url, join_token, "cam_side", "st2")
        assert status == 403, body
        side = await connect_camera(
            server.url, PersonTrack(), "cam_side", join_token, station="st1"
        )
        try:
            await side.next_message("station_processed")
            # it acts on its own camera only: the station's exercise stays
            side.send({"type": "set_exercise", "exercise": "push_up", "station": "st1"})
            assert "station" in (await side.next_message("error"))["error"]
            station = server.app[SIGNALING].stations.get("st1")
            assert station.exercise == "squat"
            assert server.app[REGISTRY].get("cam_front").exercise == "squat"
            assert station.camera_ids == ["cam_front", "cam_side"]
        finally:
            await side.close()
        # leaving frees its place: no id stays planted for a later camera to join
        await wait_for(lambda: station.camera_ids == ["cam_front"], timeout=10)
        # four join links fill a station only while they stream
        assert station.listed == {"cam_front"}
    finally:
        await front.close()


async def _offer_in_station(url: str, token: str, camera_id: str, station: str):
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    pc.addTrack(PersonTrack())
    try:
        await pc.setLocalDescription(await pc.createOffer())
        body = {
            "sdp": pc.localDescription.sdp,
            "type": "offer",
            "role": "camera",
            "camera_id": camera_id,
            "station": station,
        }
        return await post_offer(url, body, token)
    finally:
        await pc.close()


def _query_token(url: str) -> str:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(url).query)["token"][0]


async def test_tokens_a_monitor_mints_are_listed_logged_and_revoked_with_it(server, caplog):
    caplog.set_level(logging.INFO, logger="komi_rtc")
    monitor = await mint_token(server.url, role="monitor", ttl_s=60)
    children = []
    for _ in range(3):
        status, joined = await call(f"{server.url}/stations/st1/join", token=monitor["token"])
        assert status == 200
        children.append((joined["token_id"], _query_token(joined["url"])))  # type: ignore[index]
    pairing = await mint_token(server.url, monitor["token"], role="camera", person="p1")
    children.append((pairing["token_id"], pairing["token"]))
    status, listing = await call(f"{server.url}/tokens")
    assert status == 200
    listed = {t["id"]: t for t in listing["tokens"]}  # type: ignore[index]
    text = json.dumps(listing)
    for token_id, token in children:
        entry = listed[token_id]
        assert entry["parent"] == monitor["token_id"]
        assert entry["expires_at"] <= monitor["expires_at"]  # never outlives its maker
        assert token not in text  # the token itself is never listed
        assert token_id in caplog.text  # and every one is logged by its id
        assert token not in caplog.text
    assert listed[children[0][0]]["station"] == "st1"
    assert listed[pairing["token_id"]]["person"] == "p1"
    # non-admins do not list
    status, _ = await call(f"{server.url}/tokens", token=monitor["token"])
    assert status == 403
    # a camera streaming with a child token is closed when the monitor's token is revoked
    camera = await connect_camera(server.url, PersonTrack(), "cam_child", children[-1][1])
    try:
        await camera.next_message("frame_processed")
        status, revoked = await call(f"{server.url}/tokens/{monitor['token_id']}", "DELETE")
        assert status == 200
        assert revoked["closed_connections"] == 1  # type: ignore[index]
        assert set(revoked["revoked_children"]) == {t for t, _ in children}  # type: ignore[index]
        await wait_for(lambda: "cam_child" not in server.app[REGISTRY].ids(), timeout=10)
        for _, token in children:
            status, _ = await call(f"{server.url}/whoami", token=token)
            assert status == 401
    finally:
        await camera.close()


async def test_revoking_a_token_closes_a_monitor_still_negotiating(start_server):
    # a STUN server that never answers holds every offer in ICE gathering (aioice: 5 s)
    stun = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stun.bind(("127.0.0.1", 0))
    # the camera's own offer waits 5 s for gathering too: it must not count as "no video"
    running = await start_server(ice_servers=(f"stun:127.0.0.1:{stun.getsockname()[1]}",))
    camera = None
    try:
        camera = await connect_camera(running.url, PersonTrack(), "cam_slow")
        monitor = await mint_token(running.url, role="monitor")
        signaling = running.app[SIGNALING]
        offer = asyncio.ensure_future(_monitor_offer(running.url, monitor["token"]))
        session = running.app[REGISTRY].get("cam_slow")
        await wait_for(lambda: len(session.monitor_peers) == 1, timeout=10)
        status, revoked = await call(f"{running.url}/tokens/{monitor['token_id']}", "DELETE")
        assert status == 200 and revoked["closed_connections"] == 1  # type: ignore[index]
        status, body = await offer
        assert status == 401, body
        assert len(session.monitor_peers) == 0
        assert signaling.stations is not None
    finally:
        if camera is not None:
            await camera.close()
        await running.server.close()
        stun.close()


async def _monitor_offer(url: str, token: str):
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    pc.createDataChannel("komi")
    try:
        await pc.setLocalDescription(await pc.createOffer())
        body = {
            "sdp": pc.localDescription.sdp,
            "type": "offer",
            "role": "monitor",
            "camera_id": "cam_slow",
        }
        return await post_offer(url, body, token)
    finally:
        await pc.close()


async def test_one_komi_channel_per_connection(server):
    from aiortc import RTCPeerConnection, RTCSessionDescription

    camera = await connect_camera(server.url, PersonTrack(), "cam_channels")
    session = server.app[REGISTRY].get("cam_channels")
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    channels = [pc.createDataChannel("komi") for _ in range(5)] + [pc.createDataChannel("x")]
    received = [0] * len(channels)
    for i, channel in enumerate(channels):
        channel.on("message", lambda raw, i=i: received.__setitem__(i, received[i] + 1))
    try:
        await pc.setLocalDescription(await pc.createOffer())
        status, answer = await post_offer(
            server.url,
            {
                "sdp": pc.localDescription.sdp,
                "type": "offer",
                "role": "monitor",
                "camera_id": "cam_channels",
            },
        )
        assert status == 200, answer
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        # every channel but the first is closed by the server; the first gets the results
        await wait_for(lambda: all(c.readyState == "closed" for c in channels[1:]), timeout=15)
        await wait_for(lambda: received[0] >= 5, timeout=15)
        assert session.monitor_count == 1
    finally:
        await pc.close()
    await wait_for(lambda: session.monitor_count == 0, timeout=10)  # nothing left subscribed
    # the camera's own peer likewise keeps one channel
    extra = camera.pc.createDataChannel("komi")
    await wait_for(lambda: extra.readyState == "closed", timeout=15)
    await camera.next_message("frame_processed")  # its first channel still works
    await camera.close()


async def test_one_address_holds_at_most_its_share_of_camera_slots(start_server):
    running = await start_server(max_cameras=4, max_cameras_per_address=2)
    pairing = (await mint_token(running.url, role="camera"))["token"]
    cameras = [await connect_camera(running.url, PersonTrack(), token=pairing) for _ in range(2)]
    try:
        with pytest.raises(AssertionError, match="429"):
            await connect_camera(running.url, PersonTrack(), token=pairing)
    finally:
        for camera in cameras:
            await camera.close()
        await running.server.close()


async def test_a_monitor_that_never_connects_gives_its_place_back(start_server):
    from aiortc import RTCPeerConnection

    # the camera has the same time to connect: 3 s, as a loaded box needed more than 1
    running = await start_server(connect_timeout_s=3.0, max_monitors_per_camera=1)
    camera = await connect_camera(running.url, PersonTrack(), "cam_wait")
    await camera.next_message("frame_processed")  # connected: its own clock has stopped
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    try:
        await pc.setLocalDescription(await pc.createOffer())
        body = {
            "sdp": pc.localDescription.sdp,
            "type": "offer",
            "role": "monitor",
            "camera_id": "cam_wait",
        }
        status, _ = await post_offer(running.url, body)  # answered, never applied
        assert status == 200
        session = running.app[REGISTRY].get("cam_wait")
        assert len(session.monitor_peers) == 1
        await wait_for(lambda: len(session.monitor_peers) == 0, timeout=10)
        monitor = await connect_monitor(running.url, "cam_wait")  # the place is free again
        await monitor.next_message("frame_processed")
        await monitor.close()
    finally:
        await pc.close()
        await camera.close()
        await running.server.close()

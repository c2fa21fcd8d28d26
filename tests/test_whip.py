"""WHIP in, WHEP out, and H.264 cameras (issue 26): an H.264 or VP8 camera over WHIP is
a camera like any other, a WHEP player gets its video, and what no camera may do is refused
with a clear 4xx."""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
import pytest
from auth import AUTH_HEADERS, mint_token
from contract_client import PersonTrack, connect_camera, connect_monitor, post_offer
from harness import wait_for
from hypothesis import given, settings
from hypothesis import strategies as st
from whip_client import (
    ice_fragment,
    post_sdp,
    prefer_codec,
    whep_player,
    whip_camera,
    without_candidates,
)

from komi_rtc.protocol import KomiError
from komi_rtc.protocol.sdp_requests import parse_sdp_offer, parse_trickle_fragment
from komi_rtc.server.app_keys import REGISTRY

TRICKLE_LINES = [
    "a=ice-ufrag:abcd",
    "a=ice-pwd:0123456789abcdefghijkl",
    "m=audio 9 RTP/AVP 0",
    "a=mid:0",
    "a=candidate:1 1 udp 2130706431 192.0.2.1 5000 typ host",
    "a=candidate:1 0 udp 2130706431 192.0.2.1 5000 typ host",  # whip-web-client's component
    "a=candidate:2 1 tcp 1 192.0.2.1 99999 typ host",
    "a=candidate:3 1 udp x 192.0.2.1 9 typ host",
    "a=candidate:4 1 udp 1 192.0.2.1 9 host",
    "a=end-of-candidates",
]


async def _offer_sdp(codec: str = "video/H264") -> str:
    """A camera offer from aiortc that lists `codec` only."""
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    prefer_codec(pc.addTransceiver(PersonTrack(), direction="sendonly"), codec)
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


def _mean_grey(peer) -> float:
    """The newest frame a monitor or player decoded: the person is mid-grey on average."""
    frame = peer.frames[-1]
    assert (frame.width, frame.height) == (640, 480)
    return float(frame.to_ndarray(format="gray").mean())


async def _status_updates(url: str, camera_id: str, count: int) -> list[dict]:
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.ws_connect(f"{url}/ws/monitor") as ws:
            seen: list[dict] = []
            async with asyncio.timeout(20):
                while len(seen) < count:
                    message = await ws.receive_json()
                    if message.get("type") == "status_update" and message["camera_id"] == camera_id:
                        seen.append(message)
            return seen


async def test_an_h264_whip_camera_is_analysed_watched_as_sent_and_ended_by_delete(server, caplog):
    caplog.set_level(logging.INFO, logger="komi_rtc.server")
    camera = await whip_camera(server.url, "whip_h264", PersonTrack(fps=15), "video/H264")
    try:
        assert camera.status == 201
        assert camera.headers["Content-Type"].startswith("application/sdp")
        assert camera.location.startswith("/whip/whip_h264/")
        assert camera.headers["ETag"].startswith('"')
        assert camera.headers["Accept-Patch"] == "application/trickle-ice-sdpfrag"
        assert "H264" in camera.answer and "VP8" not in camera.answer
        updates = await _status_updates(server.url, "whip_h264", 3)  # analysed
        assert any(u["pose_data"]["pose"] for u in updates)
        session = server.app[REGISTRY].get("whip_h264")
        assert session.video_tap is not None and session.video_tap.codec == "video/H264"

        monitor = await connect_monitor(server.url, "whip_h264")  # VP8 first, as browsers
        try:
            await wait_for(lambda: monitor.frame_count >= 10, timeout=15)
            assert 40 < _mean_grey(monitor) < 200, "the person, not a black or blank frame"
            assert any(
                "connected (video forwarded) in H264" in r.getMessage() for r in caplog.records
            )
            await monitor.next_message("frame_processed")
        finally:
            await monitor.close()

        status, _, _ = await camera.request("DELETE")
        assert status == 200
        await wait_for(lambda: "whip_h264" not in server.app[REGISTRY].ids(), timeout=5)
        status, text, _ = await camera.request("DELETE")
        assert status == 404 and "error" in json.loads(text)
    finally:
        await camera.close()


async def test_a_vp8_whip_camera_with_a_komi_channel_gets_its_results_there(server):
    camera = await whip_camera(
        server.url, "whip_vp8", PersonTrack(fps=10), "video/VP8", data_channel=True
    )
    results: asyncio.Queue[dict] = asyncio.Queue()
    camera.channel.on("message", lambda raw: results.put_nowait(json.loads(raw)))
    try:
        async with asyncio.timeout(20):
            while (message := await results.get()).get("type") != "frame_processed":
                pass
        assert message["camera_id"] == "whip_vp8" and message["width"] == 640
    finally:
        await camera.close()


async def test_a_whep_player_gets_the_cameras_own_h264_and_delete_ends_only_it(server, caplog):
    caplog.set_level(logging.INFO, logger="komi_rtc.server")
    camera = await connect_camera(server.url, PersonTrack(fps=15), "whep_src")
    try:
        await camera.next_message("frame_processed")
        player = await whep_player(server.url, "whep_src")
        try:
            assert player.status == 201 and player.location.startswith("/whep/whep_src/")
            assert "m=audio" in player.answer and "a=inactive" in player.answer
            await wait_for(lambda: player.frame_count >= 10, timeout=15)
            assert 40 < _mean_grey(player) < 200
            assert any("connected (video forwarded)" in r.getMessage() for r in caplog.records)
            status, _, _ = await player.request("DELETE")
            assert status == 200
            session = server.app[REGISTRY].get("whep_src")
            await wait_for(lambda: not session.monitor_peers, timeout=5)
            await camera.next_message("frame_processed")  # the camera streams on
        finally:
            await player.close()
    finally:
        await camera.close()


async def test_a_player_without_h264_gets_an_h264_camera_re_encoded(server, caplog):
    caplog.set_level(logging.INFO, logger="komi_rtc.server")
    camera = await whip_camera(server.url, "h264_to_vp8", PersonTrack(fps=15), "video/H264")
    try:
        await _status_updates(server.url, "h264_to_vp8", 1)
        player = await whep_player(server.url, "h264_to_vp8", codec="video/VP8")
        try:
            await wait_for(lambda: player.frame_count >= 10, timeout=15)
            assert 40 < _mean_grey(player) < 200
            assert any(
                "connected (video re-encoded) in VP8" in r.getMessage() for r in caplog.records
            )
        finally:
            await player.close()
    finally:
        await camera.close()


async def test_trickled_candidates_arrive_by_patch(server):
    camera = await whip_camera(server.url, "whip_trickle", PersonTrack(fps=10), trickle=True)
    try:
        await _status_updates(server.url, "whip_trickle", 2)
        status, text, _ = await camera.request(
            "PATCH",
            "a=ice-ufrag:another\r\na=ice-pwd:anotheranotheranother1\r\n",
            **{"Content-Type": "application/trickle-ice-sdpfrag"},
        )
        assert status == 422 and "ICE restart" in json.loads(text)["error"]
        status, text, _ = await camera.request(
            "PATCH", "a=end-of-candidates\r\n", **{"Content-Type": "application/sdp"}
        )
        assert status == 415
        status, text, _ = await camera.request(
            "PATCH",
            "a=end-of-candidates\r\n",
            **{"Content-Type": "application/trickle-ice-sdpfrag", "If-Match": '"stale"'},
        )
        assert status == 412
    finally:
        await camera.close()


async def test_whip_checks_tokens_as_offers_do(server):
    sdp = await _offer_sdp()
    status, _, text = await post_sdp(f"{server.url}/whip/cam_a", sdp, token=None)
    assert status == 401 and "error" in json.loads(text)
    bound = await mint_token(server.url, role="camera", camera_id="cam_b")
    status, _, text = await post_sdp(f"{server.url}/whip/cam_a", sdp, token=bound["token"])
    assert status == 403 and "cam_a" in json.loads(text)["error"]
    status, _, text = await post_sdp(
        f"{server.url}/whip/cam_b?person=anna", sdp, token=bound["token"]
    )
    assert status == 403 and "anna" in json.loads(text)["error"]
    status, _, text = await post_sdp(
        f"{server.url}/whip/cam_b?station=gym", sdp, token=bound["token"]
    )
    assert status == 403 and "station" in json.loads(text)["error"]
    monitor = await mint_token(server.url, role="monitor")
    status, _, text = await post_sdp(f"{server.url}/whip/cam_b", sdp, token=monitor["token"])
    assert status == 403
    status, _, text = await post_sdp(f"{server.url}/whep/nobody", sdp, token=bound["token"])
    assert status == 403  # a camera token sees its own camera only
    status, _, text = await post_sdp(f"{server.url}/whep/nobody", sdp)
    assert status == 404 and "nobody" in json.loads(text)["error"]


async def test_a_person_token_ties_a_whip_camera_to_its_person(server):
    token = await mint_token(server.url, role="camera", camera_id="whip_anna", person="anna")
    camera = await whip_camera(
        server.url, "whip_anna", PersonTrack(fps=10), token=token["token"], query="?person=anna"
    )
    try:
        await wait_for(lambda: "whip_anna" in server.app[REGISTRY].ids(), timeout=5)
        assert server.app[REGISTRY].get("whip_anna").person == "anna"
    finally:
        await camera.close()


async def test_bad_whip_bodies_answer_a_clear_4xx(server):
    url = f"{server.url}/whip/cam_bad"
    sdp = await _offer_sdp()
    status, _, text = await post_sdp(url, sdp, content_type="application/json")
    assert status == 415 and "application/sdp" in json.loads(text)["error"]
    status, _, text = await post_sdp(url, "hello")
    assert status == 400 and "v=0" in json.loads(text)["error"]
    status, _, text = await post_sdp(url, sdp.replace("a=sendonly", "a=sendonly\r\n" * 2000))
    assert status == 400 and "lines" in json.loads(text)["error"]
    status, _, text = await post_sdp(f"{url}?colour=red", sdp)
    assert status == 400 and "colour" in json.loads(text)["error"]
    status, _, text = await post_sdp(f"{server.url}/whip/-bad", sdp)
    assert status == 400
    vp9 = sdp.replace("H264/90000", "VP9/90000")
    status, _, text = await post_sdp(url, vp9)
    error = json.loads(text)["error"]
    assert status == 400 and "VP9" in error and "VP8" in error and "H.264" in error, error
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.patch(f"{url}/nosuchsession", data="x") as response:
            assert response.status == 404
        async with http.delete(f"{server.url}/whep/cam_bad/nosuchsession") as response:
            assert response.status == 404


async def test_an_offer_without_a_codec_we_take_names_those_we_take(server):
    """Issue 26's report: aiortc's example page set to H264 got aiortc's own message."""
    sdp = (await _offer_sdp()).replace("H264/90000", "H265/90000")
    status, answer = await post_offer(server.url, {"sdp": sdp, "type": "offer"})
    assert status == 400
    assert "H265" in answer["error"] and "VP8" in answer["error"], answer
    assert "OperationError" not in answer["error"]


async def test_options_lists_the_ice_servers(start_server):
    running = await start_server(ice_servers=("stun:stun.example.net:3478",))
    try:
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
            async with http.options(f"{running.url}/whip/any_cam") as response:
                assert response.status == 204
                assert response.headers.getall("Link") == [
                    '<stun:stun.example.net:3478>; rel="ice-server"'
                ]
                assert "PATCH" in response.headers["Access-Control-Allow-Methods"]
                assert response.headers["Accept-Post"] == "application/sdp"
            async with http.options(f"{running.url}/whep/any_cam") as response:
                assert response.status == 204 and len(response.headers.getall("Link")) == 1
            async with aiohttp.ClientSession() as anonymous:
                async with anonymous.options(f"{running.url}/whip/any_cam") as response:
                    assert response.status == 401  # the ICE servers are for token holders
    finally:
        await running.server.close()


async def test_an_h264_camera_above_the_size_cap_is_refused_from_its_sps(start_server):
    running = await start_server(max_frame_side=320)
    try:
        camera = await whip_camera(running.url, "whip_big", PersonTrack(fps=10), data_channel=True)
        errors: asyncio.Queue[dict] = asyncio.Queue()
        camera.channel.on("message", lambda raw: errors.put_nowait(json.loads(raw)))
        try:
            async with asyncio.timeout(20):
                while (message := await errors.get()).get("type") != "error":
                    pass
            assert "640x480" in message["error"] and "limit" in message["error"]
            await wait_for(lambda: "whip_big" not in running.app[REGISTRY].ids(), timeout=10)
        finally:
            await camera.close()
    finally:
        await running.server.close()


@pytest.mark.parametrize("codec", ["video/H264", "video/VP8"])
async def test_offer_cameras_send_h264_or_vp8_as_they_prefer(server, codec):
    """`POST /offer` too: the camera's own order decides (aiortc offering one codec)."""
    from aiortc import RTCPeerConnection, RTCSessionDescription

    pc = RTCPeerConnection()
    prefer_codec(pc.addTransceiver(PersonTrack(fps=10), direction="sendonly"), codec)
    channel = pc.createDataChannel("komi")
    results: asyncio.Queue[dict] = asyncio.Queue()
    channel.on("message", lambda raw: results.put_nowait(json.loads(raw)))
    await pc.setLocalDescription(await pc.createOffer())
    status, answer = await post_offer(
        server.url, {"sdp": pc.localDescription.sdp, "camera_id": f"offer_{codec[6:]}"}
    )
    assert status == 200, answer
    assert codec[6:] in answer["sdp"]
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    try:
        async with asyncio.timeout(20):
            while (message := await results.get()).get("type") != "frame_processed":
                pass
        assert message["pose_data"]["pose"]
    finally:
        await pc.close()


def test_trickle_fragment_helpers_round_trip():
    offer = "v=0\r\na=ice-ufrag:abcd\r\na=ice-pwd:x\r\nm=video 9 X 0\r\na=mid:0\r\n"
    stripped, candidates = without_candidates(
        offer + "a=candidate:1 1 udp 2 127.0.0.1 5000 typ host\r\n"
    )
    assert "candidate" not in stripped and len(candidates) == 1
    fragment = ice_fragment(offer, candidates)
    assert "a=mid:0" in fragment and fragment.endswith("a=end-of-candidates\r\n")


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=3000) | st.text(max_size=3000).map(str.encode),
    st.sampled_from(["application/sdp", "application/trickle-ice-sdpfrag", "text/plain", ""]),
    st.dictionaries(st.sampled_from(["person", "station", "token", "x"]), st.text(max_size=70)),
)
def test_whip_bodies_are_parsed_or_refused_with_a_4xx(
    body: bytes, content_type: str, query: dict[str, str]
) -> None:
    """Whatever comes in a WHIP or WHEP request: a typed value or a KomiError (4xx)."""
    for parse in (
        lambda: parse_sdp_offer(body, content_type, "camera", "cam", query),
        lambda: parse_sdp_offer(body, content_type, "monitor", "cam", query),
        lambda: parse_trickle_fragment(body, content_type),
    ):
        try:
            parse()
        except KomiError as exc:
            assert 400 <= exc.status < 500 and str(exc)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(TRICKLE_LINES) | st.text(max_size=80), max_size=40))
def test_trickle_fragments_near_valid_are_parsed_or_refused(lines: list[str]) -> None:
    body = "\r\n".join(lines).encode()
    try:
        fragment = parse_trickle_fragment(body, "application/trickle-ice-sdpfrag")
    except KomiError as exc:
        assert exc.status == 400
        return
    for _, candidate in fragment.candidates:
        fields = candidate.split()
        assert len(fields) >= 8 and 0 <= int(fields[5]) <= 65535 and fields[1] != "0"

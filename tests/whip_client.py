"""A WHIP camera and a WHEP player written from RFC 9725 with aiortc and aiohttp, as an
outsider would (the browser, GStreamer and OBS-style clients are in test_whip_clients.py)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from auth import ADMIN_TOKEN


def prefer_codec(transceiver: Any, mime_type: str) -> None:
    """Offer only `mime_type` (and RTX) on a transceiver, as a hardware encoder would."""
    capabilities = RTCRtpSender.getCapabilities("video").codecs
    transceiver.setCodecPreferences(
        [c for c in capabilities if c.mimeType.lower() in (mime_type.lower(), "video/rtx")]
    )


@dataclass
class WhipSession:
    pc: RTCPeerConnection
    status: int
    headers: Any
    answer: str
    base_url: str
    token: str
    frames: list[av.VideoFrame] = field(default_factory=list)
    frame_count: int = 0
    reader: asyncio.Task[None] | None = None
    channel: Any = None  # the `komi` data channel, when the camera opened one

    @property
    def location(self) -> str:
        return self.headers["Location"]

    async def request(self, method: str, body: str | None = None, **headers: str) -> Any:
        async with aiohttp.ClientSession() as http:
            async with http.request(
                method,
                self.base_url + self.location,
                data=body,
                headers={"Authorization": f"Bearer {self.token}", **headers},
            ) as response:
                return response.status, await response.text(), response.headers

    async def close(self) -> None:
        await self.pc.close()
        if self.reader is not None:
            self.reader.cancel()
            await asyncio.gather(self.reader, return_exceptions=True)


async def post_sdp(
    url: str, sdp: str, token: str | None = ADMIN_TOKEN, content_type: str = "application/sdp"
) -> tuple[int, Any, str]:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=sdp.encode(), headers=headers) as response:
            return response.status, response.headers, await response.text()


def without_candidates(sdp: str) -> tuple[str, list[str]]:
    """The offer as a trickling client sends it first, and its candidate lines."""
    lines = sdp.splitlines()
    candidates = [line for line in lines if line.startswith("a=candidate:")]
    kept = [
        line
        for line in lines
        if not line.startswith("a=candidate:") and line != "a=end-of-candidates"
    ]
    return "\r\n".join(kept) + "\r\n", candidates


def ice_fragment(sdp: str, candidates: list[str], end: bool = True) -> str:
    """An `application/trickle-ice-sdpfrag` body (RFC 8840) for the offer's first section."""
    ufrag = re.search(r"a=ice-ufrag:(\S+)", sdp)
    password = re.search(r"a=ice-pwd:(\S+)", sdp)
    mid = re.search(r"a=mid:(\S+)", sdp)
    assert ufrag and password and mid
    lines = [f"a=ice-ufrag:{ufrag[1]}", f"a=ice-pwd:{password[1]}"]
    lines += ["m=video 9 UDP/TLS/RTP/SAVPF 0", f"a=mid:{mid[1]}", *candidates]
    if end:
        lines.append("a=end-of-candidates")
    return "\r\n".join(lines) + "\r\n"


async def whip_camera(
    base_url: str,
    camera_id: str,
    track: MediaStreamTrack,
    codec: str = "video/H264",
    token: str = ADMIN_TOKEN,
    query: str = "",
    data_channel: bool = False,
    trickle: bool = False,
) -> WhipSession:
    """A camera that POSTs its offer to `/whip/{camera_id}`; raises AssertionError unless
    the answer is 201. With `trickle`, the candidates follow in a PATCH."""
    pc = RTCPeerConnection()
    transceiver = pc.addTransceiver(track, direction="sendonly")
    prefer_codec(transceiver, codec)
    channel = pc.createDataChannel("komi") if data_channel else None
    await pc.setLocalDescription(await pc.createOffer())
    offer, candidates = pc.localDescription.sdp, []
    if trickle:
        offer, candidates = without_candidates(offer)
    status, headers, text = await post_sdp(f"{base_url}/whip/{camera_id}{query}", offer, token)
    if status != 201:
        await pc.close()
        raise AssertionError(f"WHIP offer refused: {status} {text}")
    await pc.setRemoteDescription(RTCSessionDescription(text, "answer"))
    session = WhipSession(pc, status, headers, text, base_url, token, channel=channel)
    if trickle:
        patched = await session.request(
            "PATCH",
            ice_fragment(pc.localDescription.sdp, candidates),
            **{"Content-Type": "application/trickle-ice-sdpfrag", "If-Match": headers["ETag"]},
        )
        assert patched[0] == 204, patched
    return session


async def whep_player(
    base_url: str, camera_id: str, token: str = ADMIN_TOKEN, codec: str | None = None
) -> WhipSession:
    """A player that POSTs a recvonly video and audio offer to `/whep/{camera_id}` and
    keeps the frames it decodes; with `codec`, it takes that video codec only."""
    pc = RTCPeerConnection()
    video = pc.addTransceiver("video", direction="recvonly")
    if codec is not None:
        prefer_codec(video, codec)
    pc.addTransceiver("audio", direction="recvonly")
    session: WhipSession | None = None

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if track.kind != "video":
            return

        async def read() -> None:
            try:
                while True:
                    frame = await track.recv()
                    if session is not None:
                        session.frames[:] = session.frames[-4:] + [frame]
                        session.frame_count += 1
            except Exception:
                return

        reader = asyncio.ensure_future(read())
        if session is not None:
            session.reader = reader

    await pc.setLocalDescription(await pc.createOffer())
    status, headers, text = await post_sdp(
        f"{base_url}/whep/{camera_id}", pc.localDescription.sdp, token
    )
    if status != 201:
        await pc.close()
        raise AssertionError(f"WHEP offer refused: {status} {text}")
    session = WhipSession(pc, status, headers, text, base_url, token)
    await pc.setRemoteDescription(RTCSessionDescription(text, "answer"))
    return session

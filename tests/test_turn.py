"""TURN: credentials the server mints per token (the REST API scheme coturn checks), and a
camera behind NAT whose only path to the server is coturn's relay (nat_lab.py)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from auth import call, mint_token
from browser import CHROMIUM, chromium_args, page_link, tile_is_live
from harness import free_port, wait_for
from nat_lab import TURNSERVER, Coturn, NatLab, host_addresses, namespaces_forbidden

from komi_rtc.camera.ice_config import ConfigRefused, fetch_rtc_configuration
from komi_rtc.protocol import InvalidRequest
from komi_rtc.protocol.rest import ClientConfig, IceServer
from komi_rtc.server.effective_config import parse_args
from komi_rtc.server.turn_credentials import TurnCredentials, turn_password

SECRET = "komi-test-turn-secret-0123456789"
TURN_URL = "turn:turn.clinic.example:3478"


def test_minted_credentials_follow_the_turn_rest_api_scheme():
    minted = TurnCredentials((TURN_URL,), SECRET, ttl_s=600).mint("tok:en id", now=1_000_000)
    assert minted.username == "1000600:tok_en_id"  # expiry, then who (":" would split it)
    expected = hmac.new(SECRET.encode(), b"1000600:tok_en_id", hashlib.sha1).digest()
    assert minted.credential == base64.b64encode(expected).decode()
    assert minted.to_wire() == {
        "urls": TURN_URL,
        "username": minted.username,
        "credential": minted.credential,
    }
    capped = TurnCredentials((TURN_URL,), SECRET, ttl_s=600).mint("x", 1_000_000, 1_000_100)
    assert capped.username.startswith("1000100:")  # never past the token's own expiry
    assert SECRET not in repr(TurnCredentials((TURN_URL,), SECRET))


def test_client_config_round_trips_and_refuses_other_shapes():
    config = ClientConfig(
        (IceServer(("stun:stun.example:3478",)), IceServer((TURN_URL,), "1:a", "c")), "komi"
    )
    assert ClientConfig.from_wire(config.to_wire()) == config
    for bad in (
        [],
        {"ice_servers": {}},
        {"ice_servers": [{"urls": "http://x"}]},
        {"ice_servers": [{"urls": []}]},
        {"ice_servers": [{"urls": TURN_URL, "credential": 5}]},
    ):
        with pytest.raises(InvalidRequest):
            ClientConfig.from_wire(bad)


def test_turn_options_read_the_secret_from_a_file_or_the_environment(tmp_path, capsys):
    secret_file = tmp_path / "turn_secret"
    secret_file.write_text(SECRET + "\n")
    config = parse_args(["--turn-url", TURN_URL, "--turn-secret-file", str(secret_file)], {})
    assert (config.turn_urls, config.turn_secret) == ((TURN_URL,), SECRET)
    config = parse_args(["--turn-url", TURN_URL, "--turn-ttl", "2"], {"KOMI_TURN_SECRET": SECRET})
    assert (config.turn_secret, config.turn_ttl_s) == (SECRET, 7200)
    assert SECRET not in repr(config)
    refused = [
        (["--turn-url", TURN_URL], {}, "needs $KOMI_TURN_SECRET"),
        (["--turn-url", "http://turn.example"], {"KOMI_TURN_SECRET": SECRET}, "turn:HOST"),
        ([], {"KOMI_TURN_SECRET": SECRET}, "without --turn-url"),
        (["--turn-url", TURN_URL], {"KOMI_TURN_SECRET": "short"}, "at least 16"),
        (
            ["--turn-url", TURN_URL, "--turn-secret-file", str(secret_file)],
            {"KOMI_TURN_SECRET": SECRET},
            "both",
        ),
    ]
    for argv, environ, said in refused:
        with pytest.raises(SystemExit):
            parse_args(argv, environ)
        assert said in capsys.readouterr().err
    assert SECRET not in capsys.readouterr().err


async def test_config_json_gives_turn_credentials_only_to_a_valid_token(start_server):
    server = await start_server(
        turn_urls=(TURN_URL,), turn_secret=SECRET, ice_servers=("stun:stun.example:3478",)
    )
    status, answer = await call(f"{server.url}/config.json", token="not-a-token")
    assert status == 401 and SECRET not in str(answer)
    camera = await mint_token(server.url, role="camera", camera_id="turn_camera", ttl_s=300)
    status, answer = await call(f"{server.url}/config.json", token=camera["token"])
    assert status == 200
    stun, turn = answer["ice_servers"]
    assert stun == {"urls": "stun:stun.example:3478"}
    expiry, who = turn["username"].split(":")
    assert who == camera["token_id"]
    assert int(expiry) <= camera["expires_at"] and int(expiry) > time.time() + 200
    assert turn["credential"] == turn_password(SECRET, turn["username"])
    assert SECRET not in str(answer)
    async with aiohttp.ClientSession() as http:  # a credential: no cache keeps it
        bearer = {"Authorization": f"Bearer {camera['token']}"}
        async with http.get(f"{server.url}/config.json", headers=bearer) as response:
            assert response.headers["Cache-Control"] == "no-store"


async def test_camera_peer_takes_its_ice_servers_from_the_server(start_server):
    server = await start_server(turn_urls=(TURN_URL,), turn_secret=SECRET)
    camera = await mint_token(server.url, role="camera", camera_id="peer_turn", ttl_s=300)
    bearer = {"Authorization": f"Bearer {camera['token']}"}
    async with aiohttp.ClientSession() as http:
        configuration = await fetch_rtc_configuration(http, server.url, bearer, ssl=False)
        (turn,) = configuration.iceServers
        assert turn.urls == [TURN_URL] and turn.username.endswith(camera["token_id"])
        assert turn.credential == turn_password(SECRET, turn.username)
        with pytest.raises(ConfigRefused) as refused:
            await fetch_rtc_configuration(http, server.url, {}, ssl=False)
        assert refused.value.status == 401
        # a server from before /config.json: no ICE servers, as before
        older = await fetch_rtc_configuration(http, f"{server.url}/no-such-prefix", bearer, False)
        assert older.iceServers is None or older.iceServers == []


async def test_whip_clients_get_the_turn_server_in_link_headers(start_server):
    server = await start_server(turn_urls=(TURN_URL,), turn_secret=SECRET)
    camera = await mint_token(server.url, role="camera", camera_id="whip_turn", ttl_s=300)
    async with aiohttp.ClientSession() as http:
        async with http.options(
            f"{server.url}/whip/whip_turn", headers={"Authorization": f"Bearer {camera['token']}"}
        ) as response:
            assert response.status == 204
            links = response.headers.getall("Link")
    (link,) = [link for link in links if link.startswith(f"<{TURN_URL}>")]
    fields = dict(re.findall(r'; ([a-z-]+)="([^"]*)"', link))
    assert fields["username"].endswith(f":{camera['token_id']}")
    assert fields["credential"] == turn_password(SECRET, fields["username"])
    assert fields["credential-type"] == "password"


async def test_coturn_takes_minted_credentials_until_they_expire(tmp_path):
    """The scheme end to end with coturn itself (on loopback, no namespace needed): what
    the server mints allocates; the same minted an hour ago with a 10 minute TTL, or with
    another secret, does not."""
    assert shutil.which(TURNSERVER), "coturn is not installed: scripts/setup.sh --test does it"
    from aioice.stun import TransactionFailed
    from aioice.turn import create_turn_endpoint

    coturn = Coturn(tmp_path, "127.0.0.1", free_port(), SECRET, peers=[])
    try:
        coturn.wait_listening()
        minting = TurnCredentials((f"turn:127.0.0.1:{coturn.address[1]}",), SECRET, ttl_s=600)

        async def allocates(server: IceServer) -> bool:
            try:
                transport, _ = await asyncio.wait_for(
                    create_turn_endpoint(
                        asyncio.DatagramProtocol, coturn.address, server.username,
                        server.credential,
                    ),
                    timeout=20,
                )  # fmt: skip
            except TransactionFailed as refused:  # coturn's 401
                assert "401" in str(refused), refused
                return False
            transport.close()
            return True

        now = time.time()
        assert await allocates(minting.mint("fresh", now))
        assert not await allocates(minting.mint("stale", now - 3600))
        other = TurnCredentials(minting.urls, "another-secret-0123456789", ttl_s=600)
        assert not await allocates(other.mint("forged", now))
        assert "username=<" in coturn.log_text() and ":fresh>" in coturn.log_text()
    finally:
        coturn.stop()


def _frames_analysed(stats: Any, camera_id: str) -> int:
    if not isinstance(stats, dict):
        return 0
    return int(stats.get("cameras", {}).get(camera_id, {}).get("frames_analysed", 0))


@pytest.fixture
def lab() -> Any:
    """A camera network behind NAT (nat_lab.py), removed after the test; skipped, with the
    reason printed, only where the platform forbids network namespaces."""
    reason = namespaces_forbidden()
    if reason:
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    made = NatLab(server_port=free_port()).open()
    yield made
    made.close()


def _start_camera(lab: NatLab, token: str, log: Path) -> subprocess.Popen[bytes]:
    """`python -m komi_rtc.camera` inside the camera's network, as a person runs it there."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            lab.in_camera(
                sys.executable, "-m", "komi_rtc.camera",
                "--server", f"http://{lab.host_ip}:{lab.server_port}",
                "--token", token, "--source", "demo", "--fps", "10",
            ),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip


def _stop(camera: subprocess.Popen[bytes]) -> None:
    if camera.poll() is None:
        camera.send_signal(signal.SIGINT)  # closes its peer: coturn ends the allocation
        try:
            camera.wait(30)
        except subprocess.TimeoutExpired:
            camera.kill()
            camera.wait()


async def test_without_turn_a_camera_behind_nat_never_connects(lab, server_process, tmp_path):
    """The control: the lab really leaves the relay as the only path."""
    server = server_process("--host", "0.0.0.0", "--connect-timeout", "3", port=lab.server_port)
    token = await mint_token(server.url, role="camera", camera_id="nat_camera", ttl_s=600)
    camera = _start_camera(lab, token["token"], tmp_path / "camera.log")
    try:
        gave_up = "[nat_camera] camera closing (not connected within 3 s): 0 frames received"
        await wait_for(
            lambda: gave_up in server.log_text(),
            timeout=60,
            what=lambda: f"the server giving up on the camera\n{server.log_text()[-3000:]}",
            interval=0.5,
        )
    finally:
        _stop(camera)


class Relay:
    """coturn and a KOMI server minting credentials for it, on the host end of `lab`."""

    def __init__(self, lab: NatLab, coturn: Coturn, server: Any, secret: str) -> None:
        self.lab, self.coturn, self.server, self.secret = lab, coturn, server, secret

    def relayed_bytes(self, token_id: str, to_client: bool = False) -> int:
        """The most bytes coturn received from (`to_client`: sent to) a client presenting
        credentials minted for `token_id`, in one allocation, from its line for each ended
        allocation: "usage: realm=<...>, username=<expiry:who>, rp=, rb=, sp=, sb="
        (packets and bytes received from and sent to the client)."""
        usage = re.findall(
            r": usage: realm=<[^>]*>, username=<\d+:([^>]*)>, rp=\d+, rb=(\d+), sp=\d+, sb=(\d+)",
            self.coturn.log_text(),
        )
        return max(
            (int(sb if to_client else rb) for who, rb, sb in usage if who == token_id), default=0
        )

    async def wait_relayed(
        self, token_id: str, at_least: int = 50_000, to_client: bool = False
    ) -> int:
        """Until an ended allocation of `token_id`'s relayed `at_least` bytes, video: ICE's
        checks and TURN's own messages are a few hundred bytes (332 in an allocation that
        carried none), 30 frames of VP8 at 640 x 480 were 100-190 kB here; the bytes."""
        await wait_for(
            lambda: self.relayed_bytes(token_id, to_client) > at_least,
            timeout=30,
            what=lambda: f"coturn relaying the video\n{self.coturn.log_text()[-4000:]}",
            interval=0.5,
        )
        log = self.coturn.log_text()
        # the camera reached coturn from the router's address (masqueraded), never its own
        assert f"remote {self.lab.router_wan_ip}:" in log and self.lab.camera_ip not in log
        assert self.secret not in self.server.log_text()
        assert f"TURN: turn:{self.lab.host_ip}:{self.lab.turn_port}" in self.server.log_text()
        return self.relayed_bytes(token_id, to_client)

    async def wait_analysed(self, camera_id: str, log: Path, frames: int = 30) -> None:
        async def analysed() -> bool:
            _, stats = await call(f"{self.server.url}/stats")
            return _frames_analysed(stats, camera_id) >= frames

        await wait_for(
            analysed,
            timeout=90,
            what=lambda: (
                f"{frames} frames of {camera_id} analysed\n"
                f"{log.read_text(errors='replace')[-3000:] if log.exists() else ''}\n"
                f"{self.coturn.log_text()[-3000:]}"
            ),
            interval=0.5,
        )


@pytest.fixture
def transport() -> str:
    """How peers reach coturn (`?transport=` of `--turn-url`); a test may parametrize it."""
    return "udp"


@pytest.fixture
async def relay(
    lab: NatLab, server_process: Any, tmp_path: Path, transport: str
) -> AsyncIterator[Relay]:
    """coturn (use-auth-secret) listening on the host's end of the lab, and the server
    started with `--turn-url` and `--turn-secret-file` for it; coturn stopped after."""
    assert shutil.which(TURNSERVER), "coturn is not installed: scripts/setup.sh --test does it"
    secret = secrets.token_hex(24)
    secret_file = tmp_path / "turn_secret"
    secret_file.write_text(secret)
    coturn = Coturn(tmp_path, lab.host_ip, lab.turn_port, secret, host_addresses())
    try:
        coturn.wait_listening()
        server = server_process(
            "--host", "0.0.0.0",
            "--turn-url", f"turn:{lab.host_ip}:{lab.turn_port}?transport={transport}",
            "--turn-secret-file", str(secret_file),
            port=lab.server_port,
        )  # fmt: skip
        yield Relay(lab, coturn, server, secret)
    finally:
        coturn.stop()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_a_camera_behind_nat_streams_only_through_coturns_relay(relay, tmp_path, transport):
    token = await mint_token(relay.server.url, role="camera", camera_id="nat_camera", ttl_s=600)
    log = tmp_path / "camera.log"
    camera = _start_camera(relay.lab, token["token"], log)
    try:
        await relay.wait_analysed("nat_camera", log)
    finally:
        _stop(camera)  # closes its peer: coturn ends the allocation and logs its usage
    relayed = await relay.wait_relayed(token["token_id"])
    if transport == "tcp":  # the allocation's own connection, not UDP beside it
        assert f"TCP socket closed remotely {relay.lab.router_wan_ip}:" in relay.coturn.log_text()
    print(f"coturn relayed {relayed} bytes from the Python camera behind NAT over {transport}")


@pytest.mark.browser
@pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason="Chromium is not installed (scripts/test.sh installs it)",
)
async def test_camera_and_monitor_pages_behind_nat_stream_through_the_relay(
    relay, tmp_path, person_y4m, artifacts_dir
):
    """Chromium itself runs in the camera's network: Playwright starts it through a wrapper
    that enters the namespace, and drives it over a pipe (no network between them). A
    monitor page behind the same NAT then plays the camera, through the relay too."""
    from playwright.async_api import async_playwright

    lab = relay.lab
    wrapper = tmp_path / "chromium-in-camera-network"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {lab.camera} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    origin = f"http://{lab.host_ip}:{lab.server_port}"
    token = await mint_token(relay.server.url, role="camera", camera_id="nat_page", ttl_s=600)
    watcher = await mint_token(relay.server.url, role="monitor", ttl_s=600)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(wrapper),
            headless=True,
            # the server's LAN address over plain http: a phone would use --https; here
            # the camera API is let through for this one origin
            args=[
                *chromium_args(person_y4m),
                f"--unsafely-treat-insecure-origin-as-secure={origin}",
            ],
        )
        try:
            page = await browser.new_page(viewport={"width": 480, "height": 900})
            page.on("console", lambda m: m.type == "error" and print("camera page:", m.text))
            await page.goto(page_link(origin, "/camera", token["token"], autostart="1"))
            await page.wait_for_function(
                "window.komiCamera && window.komiCamera.results >= 10", timeout=60000
            )
            await relay.wait_analysed("nat_page", tmp_path / "none.log")
            await page.screenshot(path=os.path.join(artifacts_dir, "camera_page_behind_nat.png"))
            # a trainer at home: the monitor page behind the same NAT plays the camera
            monitor = await browser.new_page(viewport={"width": 1280, "height": 800})
            await monitor.goto(page_link(origin, "/monitor", watcher["token"]))
            await tile_is_live(monitor, "nat_page")
            await monitor.wait_for_function(  # a few seconds of video, well over 50 kB
                "window.komiMonitor.tiles['nat_page'].videoTime > 4", timeout=30000
            )
            await monitor.goto("about:blank")  # its peer closes: coturn logs its usage
            await monitor.close()
            await page.locator("#disconnect").click()
            await page.wait_for_function("window.komiCamera.state !== 'connected'", timeout=10000)
        finally:
            await browser.close()  # a page still streaming ends its allocation with it
    relayed = await relay.wait_relayed(token["token_id"])
    watched = await relay.wait_relayed(watcher["token_id"], to_client=True)
    print(
        f"coturn relayed {relayed} bytes from the camera page behind NAT "
        f"and {watched} bytes to the monitor page behind it"
    )

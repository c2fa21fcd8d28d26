"""Input rules from issue 22's attack run: ids that are path segments or spreadsheet
formulas, CSV cells a spreadsheet would run, Host headers that only look like an address,
and tokens quoted in the log lines of requests aiohttp could not parse."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import re
import urllib.request
from typing import Any

import aiohttp
import pytest
from auth import ADMIN_TOKEN, AUTH_HEADERS, mint_token
from contract_client import PersonTrack, connect_camera, post_offer
from harness import wait_for

from komi_rtc.history.store import HistoryStore, SetHandle
from komi_rtc.protocol import InvalidRequest, validate_camera_id, validate_person_id
from komi_rtc.server import cli
from komi_rtc.server.access import host_allowed
from komi_rtc.server.app_keys import HISTORY
from komi_rtc.server.endpoints.people import validate_person
from komi_rtc.server.log_safety import SafeLogFilter
from komi_rtc.server.stations import validate_station_id

# ---------------------------------------------------------------- ids

BAD_IDS = [".", "..", "-1-1", "-cam", "--help", "cam\n", "../x", ""]
GOOD_IDS = ["cam-1", "a.b", "...", ".x", "x-", "camera_12345", "A" * 64]
VALIDATORS = {
    "camera": validate_camera_id,
    "person (protocol)": validate_person_id,
    "person (server)": validate_person,
    "station": validate_station_id,
}


@pytest.mark.parametrize("validate", VALIDATORS.values(), ids=VALIDATORS.keys())
def test_ids_that_name_a_directory_or_start_with_a_dash_are_refused(validate):
    for bad in BAD_IDS:
        with pytest.raises(InvalidRequest, match="not starting with '-'"):
            validate(bad)
    for good in GOOD_IDS:
        assert validate(good) == good


async def test_the_server_refuses_dot_and_dash_ids_everywhere_it_takes_one(server):
    camera = await connect_camera(server.url, PersonTrack(fps=5), camera_id="cam_rules")
    try:
        await camera.next_message("frame_processed")
        for body in (
            {"camera_id": "-1-1"},
            {"camera_id": ".."},
            {"person": ".."},
            {"person": "-1-1"},
            {"station": "."},
            {"station": "-s"},
        ):
            status, answer = await post_offer(server.url, {"sdp": "v=0\r\n", **body})
            assert status == 400, (body, answer)
            assert "not starting with '-'" in answer["error"], (body, answer)
        async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
            for person in ("..", "-1-1", "."):
                async with http.post(
                    f"{server.url}/cameras/cam_rules/person", json={"person": person}
                ) as response:
                    assert response.status == 400, person
                    assert "not starting with '-'" in (await response.json())["error"]
            for path in (
                "/people/-1-1/sets",
                "/people/-1-1/sets.csv",
                "/people/-x/progress",
                "/get-image/-1-1",
                "/latest_image/-cam",
            ):
                async with http.get(server.url + path) as response:
                    assert response.status == 400, path
            async with http.post(f"{server.url}/stations/-s", json={"cameras": ["a"]}) as r:
                assert r.status == 400
            async with http.post(f"{server.url}/stations/s1", json={"cameras": ["-a"]}) as r:
                assert r.status == 400
        camera.send({"type": "set_person", "person": ".."})
        error = await camera.next_message("error")
        assert "not starting with '-'" in error["error"]
        assert camera.pc.connectionState == "connected"
    finally:
        await camera.close()


# ---------------------------------------------------------------- CSV


FORMULAS = {
    "camera_id": '=HYPERLINK("http://evil.example","x")',
    "exercise": "@SUM(1+1)",
    "profile": "+1+1",
    "errors": "-2+3",  # the first of the rep's errors starts the cell
}


async def test_csv_cells_a_spreadsheet_would_run_are_quoted_and_numbers_stay_numbers(server):
    """A set recorded before ids had rules (or with a catalog entry of that shape): its
    text cells that begin with = + - @ (or a tab or CR) get a leading quote; the negative
    angle stays a number."""
    await wait_for(lambda: HISTORY in server.app)
    history = server.app[HISTORY]
    handle = SetHandle()
    history.write(
        history.store.start_set,
        handle,
        "alice",
        FORMULAS["exercise"],
        FORMULAS["profile"],
        "reps",
        FORMULAS["camera_id"],
        100.0,
    )
    rep = {
        "index": 1,
        "score": 87.5,
        "rom_deg": 95.0,
        "peak_angle_deg": -12.5,
        "duration_s": 2.0,
        "good": False,
        "errors": [FORMULAS["errors"], "\tknees_in"],
    }
    history.write(history.store.add_rep, handle, "alice", rep, 103.0)
    await history.flush()
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        async with http.get(f"{server.url}/people/alice/sets.csv") as response:
            assert response.status == 200
            text = await response.text()
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert row["camera_id"] == "'" + FORMULAS["camera_id"]
    assert row["exercise"] == "'" + FORMULAS["exercise"]
    assert row["profile"] == "'" + FORMULAS["profile"]
    assert row["errors"] == "'" + FORMULAS["errors"] + ";\tknees_in"
    assert row["person"] == "alice"
    assert row["peak_angle_deg"] == "-12.5" and float(row["score"]) == 87.5
    for line in text.splitlines()[1:]:
        for cell in next(csv.reader([line])):
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), line
            assert not cell.startswith("-") or re.fullmatch(r"-[0-9.e-]+", cell), line


def test_every_formula_start_is_quoted_in_every_text_column(tmp_path):
    store = HistoryStore(f"sqlite:///{tmp_path / 'csv.sqlite3'}")
    store.prepare(0.0)
    try:
        for i, start in enumerate(["=", "+", "-", "@", "\t", "\r"]):
            handle = SetHandle()
            text = f"{start}cmd|' /C calc'!A0"
            store.start_set(handle, "bob", text, text, "reps", text, 100.0 + i)
            store.add_rep(handle, "bob", {"index": 1, "score": -1.0, "errors": [text]}, 101.0)
        rows = list(csv.DictReader(io.StringIO(store.csv("bob"))))
    finally:
        store.close()
    assert len(rows) == 6
    for row in rows:
        for column in ("exercise", "profile", "camera_id", "errors"):
            assert row[column].startswith("'") and row[column][1:].endswith("!A0"), row
        assert row["score"] == "-1.0"


# ---------------------------------------------------------------- Host

HOSTS = {
    "[::1]": True,
    "[::1]:8000": True,
    "[::ffff:127.0.0.1]:80": True,
    "127.0.0.1": True,
    "127.0.0.1:8000": True,
    "localhost:8000": True,
    "LOCALHOST": True,
    "[::1].evil.com": False,
    "[::1].evil.com:8000": False,
    "[::1]x": False,
    "[::1]:80:80": False,
    "[::1]:": False,
    "[::1]:http": False,
    "[::1": False,
    "[127.0.0.1]": False,
    "[fe80::1%eth0]": False,
    "[::1%.evil.com]": False,
    "127.0.0.1.evil.com": False,
    "127.0.0.1:80:80": False,
    "127.0.0.1:99999": False,
    "localhost.evil.com": False,
    "localhost:": False,
    "evil.com:80@127.0.0.1": False,
    "evil.com": False,
    "": False,
}


@pytest.mark.parametrize("host, allowed", HOSTS.items(), ids=[repr(h) for h in HOSTS])
def test_only_a_well_formed_host_naming_this_server_is_allowed(host, allowed):
    assert host_allowed(host, ()) is allowed


async def test_a_host_that_only_begins_like_an_ipv6_address_is_refused(server):
    port = server.url.rsplit(":", 1)[1]
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as http:
        for host in ("[::1].evil.com", f"[::1].evil.com:{port}", f"[::1]x:{port}"):
            async with http.get(f"{server.url}/cameras", headers={"Host": host}) as response:
                assert response.status == 403, host
                assert "not a name of this server" in (await response.json())["error"]
        async with http.get(f"{server.url}/cameras", headers={"Host": f"[::1]:{port}"}) as r:
            assert r.status == 200


# ---------------------------------------------------------------- tokens in the log


def malformed_requests(jwt: str) -> dict[str, bytes]:
    """Requests aiohttp refuses before any handler runs; its log line quotes the raw line."""
    host = "Host: 127.0.0.1\r\n"
    requests = {
        "control character": f"GET /cameras?token={ADMIN_TOKEN}&x=\x01 HTTP/1.1\r\n{host}\r\n",
        "HTTP/1.2": f"GET /cameras?token={ADMIN_TOKEN} HTTP/1.2\r\n{host}\r\n",
        "a JWT in the query": f"GET /cameras?token={jwt} HTTP/1.2\r\n{host}\r\n",
        "a JWT in the path": f"GET /get-image/{jwt} HTTP/1.2\r\n{host}\r\n",
        "the admin token in the path": f"GET /{ADMIN_TOKEN} HTTP/9.9\r\n{host}\r\n",
        "invalid method": f"G\x01T /cameras?token={ADMIN_TOKEN} HTTP/1.1\r\n{host}\r\n",
        "method with a bracket": f"GE(T /cameras?token={ADMIN_TOKEN} HTTP/1.1\r\n{host}\r\n",
        "overlong": f"GET /cameras?token={ADMIN_TOKEN}&pad={'a' * 100_000} HTTP/1.1\r\n{host}\r\n",
        "Authorization with a control character": f"GET /cameras HTTP/1.1\r\n{host}"
        f"Authorization: Bearer {ADMIN_TOKEN}\x01\r\n\r\n",
        "Authorization with a space before its colon": f"GET /cameras HTTP/1.1\r\n{host}"
        f"Authorization : Bearer {ADMIN_TOKEN}\r\n\r\n",
        "a bad header holding the admin token": f"GET /cameras HTTP/1.1\r\n{host}"
        f"X-Note\x01: {ADMIN_TOKEN}\r\n\r\n",
        "a bad header holding a JWT": f"GET /cameras HTTP/1.1\r\n{host}X-Note : {jwt}\r\n\r\n",
    }
    return {name: text.encode("latin-1") for name, text in requests.items()}


async def send_raw(url: str, raw: bytes) -> bytes:
    """One request written as it is; the status line of the answer."""
    host, port = url.split("//")[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(raw)
        try:
            await writer.drain()
        except ConnectionError:  # refused before the whole line was read
            pass
        return await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()


def leaks(text: str, jwt: str) -> list[str]:
    """Secrets that made it into `text`: either token, any JWT, any Bearer credential."""
    found = [secret for secret in (ADMIN_TOKEN, jwt) if secret in text]
    found += re.findall(r"eyJ[\w-]{4,}", text)
    found += re.findall(r"(?i)bearer(?:\s|\\t|\\x09)+(?!<redacted>)\S+", text)
    return found


def _records_text(caplog: pytest.LogCaptureFixture) -> str:
    lines = []
    for record in caplog.records:
        lines.append(record.getMessage())
        if record.exc_text:
            lines.append(record.exc_text)
    return "\n".join(lines) + "\n" + caplog.text


@pytest.mark.parametrize("debug", [False, True], ids=["default logging", "--debug"])
async def test_no_token_reaches_the_log_from_a_request_aiohttp_cannot_parse(server, caplog, debug):
    """The filter installed the way the CLI installs it (on the root logger's handlers,
    which here include the one capturing the log), at the CLI's default level and at
    --debug, where aiohttp also logs a bad method and every request's line."""
    noisy = {name: logging.getLogger(name).level for name in ("aioice", "aiortc", "alembic")}
    noisy["aiohttp.access"] = logging.getLogger("aiohttp.access").level
    caplog.set_level(logging.DEBUG if debug else logging.INFO)
    try:
        cli.configure_logging("debug" if debug else "info")
        cli.keep_admin_token_out_of_logs(server.app)
        jwt = (await mint_token(server.url, role="monitor"))["token"]
        requests = malformed_requests(jwt)
        for name, raw in requests.items():
            head = await send_raw(server.url, raw)
            assert re.match(rb"HTTP/1\.[01] 4\d\d ", head), (name, head)
        # a good request with the token in its query: --debug logs its line (access log)
        head = await send_raw(
            server.url, f"GET /cameras?token={ADMIN_TOKEN} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        )
        assert head.startswith(b"HTTP/1.1 403"), head  # "x" is no name of this server
        refused = [r for r in caplog.records if "unparseable HTTP request" in r.getMessage()]
        # at the default level aiohttp logs a bad method on a new connection at DEBUG only
        assert len(refused) >= len(requests) - (0 if debug else 2), _records_text(caplog)
        if debug:
            await wait_for(
                lambda: any(
                    r.name == "aiohttp.access" and "/cameras?token=" in r.getMessage()
                    for r in caplog.records
                )
            )
        text = _records_text(caplog)
        assert "token=<redacted>" in text and "Authorization: <redacted>" in text, text
        assert not leaks(text, jwt), (leaks(text, jwt), text)
    finally:
        for name, level in noisy.items():
            logging.getLogger(name).setLevel(level)
        for handler in logging.getLogger().handlers:  # pytest's own outlive this test
            for installed in [f for f in handler.filters if isinstance(f, SafeLogFilter)]:
                handler.removeFilter(installed)


def _http(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={**AUTH_HEADERS, "Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def test_the_real_server_s_log_holds_no_token_from_requests_it_cannot_parse(
    server_process, tmp_path
):
    """`python -m komi_rtc.server --debug` as a person starts it; its log is its stderr."""
    server = server_process(
        *("--workers", "1", "--state-dir", str(tmp_path), "--debug"),
        log=tmp_path / "stdout.log",
        stderr_log=tmp_path / "stderr.log",
    )
    base = server.url
    jwt = _http(base + "/tokens", "POST", {"role": "monitor"})[1]["token"]

    async def send_all() -> None:
        for name, raw in malformed_requests(jwt).items():
            head = await send_raw(base, raw)
            assert re.match(rb"HTTP/1\.[01] 4\d\d ", head), (name, head)
        await send_raw(base, f"GET /cameras?token={ADMIN_TOKEN} HTTP/1.1\r\n\r\n".encode())

    asyncio.run(send_all())
    assert _http(base + "/healthz")[0] == 200
    server.stop()
    log = server.log_text()
    refused = [line for line in log.splitlines() if "unparseable HTTP request" in line]
    assert len(refused) >= len(malformed_requests(jwt)), log
    assert any("token=<redacted>" in line for line in refused), log
    assert any("Authorization: <redacted>" in line for line in refused), log
    assert any("/cameras?token=<redacted> HTTP/1.1" in line for line in log.splitlines()), log
    assert not leaks(log, jwt), leaks(log, jwt)
    assert "Traceback" not in log, log

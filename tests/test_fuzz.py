"""Fuzzing the server's input parsing: any malformed input gets a clear error, never a crash.

The parsers in `komi_rtc.protocol.requests` either return a value the server can use (and
send back: error texts and echoed fields must survive the wire encoder) or raise a
`KomiError`; nothing else. Through a real server, mutated SDP offers, control messages and
legacy frames answer 200/4xx with a JSON error, never 500, and log no traceback.
Hypothesis runs derandomized and without an example database, so CI sees the same cases
every run.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import logging
import re
import time
from collections import Counter
from typing import Any

import aiohttp
import pytest
from aiortc import RTCPeerConnection
from auth import ADMIN_TOKEN, AUTH_HEADERS
from contract_client import PersonTrack, connect_camera, person_jpeg_base64
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_sdp_limits import second_application_section

from komi_rtc.protocol import (
    KomiError,
    parse_control_message,
    parse_legacy_frame,
    parse_offer,
    validate_camera_id,
)
from komi_rtc.protocol.messages import ErrorMessage, Pong, encode
from komi_rtc.protocol.requests import (
    _CAMERA_ID,
    CONTROL_TYPES,
    MAX_APPLICATION_SECTIONS,
    MAX_CANDIDATES,
    MAX_CANDIDATES_PER_SECTION,
    MAX_CODECS_PER_SECTION,
    MAX_FEEDBACK_LINES,
    MAX_MEDIA_SECTIONS,
    MAX_SDP_CHARS,
    MAX_SDP_LINES,
    ROLES,
)

PARSER_CASES = 2000
PARSER_SETTINGS = settings(
    max_examples=PARSER_CASES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ---------------------------------------------------------------- strategies

# Text as a hostile peer sends it: any code point, lone surrogates and control characters
# included (hypothesis leaves surrogates out of text() by default).
ANY_CHARACTER = st.characters(codec=None, exclude_categories=())
HOSTILE_TEXT = st.one_of(
    st.text(ANY_CHARACTER, max_size=40),
    st.text(st.characters(min_codepoint=0, max_codepoint=0x1F), max_size=10),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3),
    st.integers(1, 200_000).map(lambda n: "x" * n),
    st.sampled_from(["", " ", "\x00", "camera_1", "offer", "frame", "ping", "set_exercise"]),
)
HOSTILE_NUMBER = st.one_of(
    st.integers(),
    st.integers(min_value=2**62, max_value=2**200),
    st.integers(min_value=-(2**200), max_value=-(2**62)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1e308, -1e308, 2**63, 2**64, -(2**63) - 1, 10**4000 // 10**3990]),
)
JSON_SCALARS = st.one_of(st.none(), st.booleans(), HOSTILE_NUMBER, HOSTILE_TEXT)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(HOSTILE_TEXT, children, max_size=4),
    ),
    max_leaves=12,
)


@st.composite
def deeply_nested(draw: st.DrawFn) -> Any:
    """Lists or objects nested past what recursive parsers and encoders handle."""
    depth = draw(st.sampled_from([100, 300, 1_000, 5_000, 30_000]))
    leaf = draw(JSON_SCALARS)
    if draw(st.booleans()):
        return ("[" * depth) + json.dumps(leaf) + ("]" * depth)
    return ('{"a":' * depth) + json.dumps(leaf) + ("}" * depth)


def _json_text(value: Any, ensure_ascii: bool) -> str:
    """JSON as a peer may write it (NaN and Infinity included, as browsers do not)."""
    return json.dumps(value, ensure_ascii=ensure_ascii)


def json_texts(values: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    return st.builds(_json_text, values, st.booleans())


@st.composite
def mutated_text(draw: st.DrawFn, base: st.SearchStrategy[str]) -> str:
    """A text with bytes cut, repeated or replaced: JSON broken in the middle."""
    text = draw(base)
    for _ in range(draw(st.integers(0, 3))):
        if not text:
            break
        i = draw(st.integers(0, len(text) - 1))
        action = draw(st.sampled_from(["cut", "truncate", "insert", "repeat"]))
        if action == "cut":
            j = draw(st.integers(i, min(len(text), i + 8)))
            text = text[:i] + text[j:]
        elif action == "truncate":
            text = text[:i]
        elif action == "insert":
            text = text[:i] + draw(st.text(ANY_CHARACTER, max_size=4)) + text[i:]
        else:
            text = text[:i] + text[i:] * 2
    return text


@st.composite
def mutated_object(
    draw: st.DrawFn, bases: st.SearchStrategy[dict[str, Any]], hostile: st.SearchStrategy[Any]
) -> dict[str, Any]:
    """A valid object with fields deleted, replaced by hostile values, or added."""
    result = dict(draw(bases))
    for key in list(result):
        action = draw(st.sampled_from(["keep", "keep", "delete", "replace"]))
        if action == "delete":
            del result[key]
        elif action == "replace":
            result[key] = draw(hostile)
    result.update(draw(st.dictionaries(HOSTILE_TEXT, JSON_VALUES, max_size=2)))
    return result


MINIMAL_SDP = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
VALID_OFFER = {
    "sdp": MINIMAL_SDP,
    "type": "offer",
    "role": "camera",
    "camera_id": "camera_12345",
    "token": "t",
}
VALID_JPEG = base64.b64encode(b"\xff\xd8\xff\xe0" + b"\x00" * 16 + b"\xff\xd9").decode()
HOSTILE_FIELD = st.one_of(
    JSON_VALUES,
    HOSTILE_NUMBER,
    st.sampled_from(["v=0", " v=0\r\n", "monitor", "camera", "answer", "../etc", "a" * 65]),
    st.builds(lambda s: "v=0\r\n" + s, HOSTILE_TEXT),
    st.builds(lambda s: "data:image/jpeg;base64," + s, HOSTILE_TEXT),
    st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()),
)
NEAR_VALID_OFFERS = mutated_object(st.just(VALID_OFFER), HOSTILE_FIELD)

# Inputs that once crashed or silenced a part of the server, run on every run.
DEEP_JSON = "[" * 5000 + "]" * 5000  # RecursionError inside json.loads
KNOWN_BAD_CONTROL_MESSAGES = [
    '{"type": "ping", "t": 18446744073709551616}',  # the encoder cannot echo it
    '{"type": "ping", "t": ' + "[" * 300 + "]" * 300 + "}",  # nor this
    '{"type": "\\ud800"}',  # an escaped lone surrogate in the error text
    '{"type": "ping", "t": NaN}',
    '{"type": "ping", "t": 1e400}',
    DEEP_JSON,
]
KNOWN_BAD_LEGACY_MESSAGES = [
    '{"type": "frame", "timestamp": 1e400, "image_data": "\\ud800"}',
    '{"type": "frame", "timestamp": ' + "[" * 3000 + "]" * 3000 + "}",
    DEEP_JSON,
]
KNOWN_BAD_OFFER_BODIES = [
    DEEP_JSON.encode(),
    b'{"sdp": "v=0\\r\\n", "type": "offer", "token": "\\ud800"}',  # token in the body only
    b'{"sdp": "v=0\\r\\n\\ud800", "type": "offer"}',
]


def with_examples(examples: list[Any]) -> Any:
    """Decorate a hypothesis test with each of `examples` as an explicit case."""

    def decorate(test: Any) -> Any:
        for value in reversed(examples):
            test = example(*value)(test) if isinstance(value, tuple) else example(value)(test)
        return test

    return decorate


# ---------------------------------------------------------------- properties


def _check_error(exc: KomiError) -> None:
    """The server sends every parser error to the peer: it must encode, and say something."""
    message = str(exc)
    assert message
    assert len(message) < 1000
    encode(ErrorMessage(message))
    json.dumps({"error": message})


def _check_offer_body(body: bytes) -> None:
    try:
        offer = parse_offer(body)
    except KomiError as exc:
        _check_error(exc)
        return
    assert isinstance(offer.sdp, str) and offer.sdp.lstrip().startswith("v=0")
    offer.sdp.encode("utf-8")  # aiortc and the answer need real text
    assert offer.role in ROLES
    assert offer.camera_id is None or _CAMERA_ID.match(offer.camera_id)
    assert offer.role == "camera" or offer.camera_id is not None


def _check_control_message(raw: str | bytes) -> None:
    try:
        message = parse_control_message(raw)
    except KomiError as exc:
        _check_error(exc)
        return
    assert message.type in CONTROL_TYPES
    assert message.fields["type"] == message.type
    if message.type == "ping":  # "t" is echoed back as sent
        encode(Pong(message.fields.get("t"), 0.0))


def _check_legacy_frame(raw: str) -> None:
    try:
        frame = parse_legacy_frame(raw)
    except KomiError as exc:
        _check_error(exc)
        return
    assert isinstance(frame.jpeg, bytes)


@PARSER_SETTINGS
@with_examples(KNOWN_BAD_OFFER_BODIES)
@given(st.one_of(st.binary(max_size=300), st.binary(min_size=1, max_size=300_000)))
def test_offer_of_arbitrary_bytes_is_parsed_or_refused(body: bytes) -> None:
    _check_offer_body(body)


@PARSER_SETTINGS
@given(
    st.one_of(
        json_texts(JSON_VALUES),
        deeply_nested(),
        mutated_text(json_texts(NEAR_VALID_OFFERS)),
    ),
    st.sampled_from(["utf-8", "utf-16", "utf-32", "latin-1"]),
)
def test_offer_of_arbitrary_json_is_parsed_or_refused(text: str, encoding: str) -> None:
    errors = "surrogatepass" if encoding.startswith("utf") else "replace"
    _check_offer_body(text.encode(encoding, errors=errors))


@PARSER_SETTINGS
@given(json_texts(NEAR_VALID_OFFERS))
def test_near_valid_offer_is_parsed_or_refused(text: str) -> None:
    _check_offer_body(text.encode("utf-8", errors="surrogatepass"))


@PARSER_SETTINGS
@given(st.one_of(JSON_VALUES, HOSTILE_TEXT))
def test_camera_id_is_valid_or_refused(value: Any) -> None:
    try:
        camera_id = validate_camera_id(value)
    except KomiError as exc:
        _check_error(exc)
        return
    assert camera_id == value and _CAMERA_ID.match(camera_id)


CONTROL_BASES = st.sampled_from(
    [
        {"type": "ping", "t": 1616161616.234},
        {"type": "set_exercise", "exercise": "squat", "profile": "standard"},
        {"type": "set_exercise", "exercise": None},
    ]
)
NEAR_VALID_CONTROLS = json_texts(mutated_object(CONTROL_BASES, HOSTILE_FIELD))


CONTROL_TEXTS = st.one_of(
    st.text(ANY_CHARACTER, max_size=200),
    json_texts(JSON_VALUES),
    deeply_nested(),
    NEAR_VALID_CONTROLS,
    mutated_text(NEAR_VALID_CONTROLS),
)


@PARSER_SETTINGS
@with_examples(KNOWN_BAD_CONTROL_MESSAGES)
@given(st.one_of(CONTROL_TEXTS, st.binary(max_size=100)))
def test_control_message_is_parsed_or_refused(raw: str | bytes) -> None:
    _check_control_message(raw)


IMAGE_DATA = st.one_of(
    st.just(VALID_JPEG),
    st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode()),
    st.just("data:image/jpeg;base64," + VALID_JPEG),
    mutated_text(st.just(VALID_JPEG)),
    HOSTILE_TEXT,
    JSON_VALUES,
)
FRAMES = st.fixed_dictionaries(
    {
        "type": st.just("frame"),
        "timestamp": st.one_of(HOSTILE_NUMBER, JSON_VALUES),
        "image_data": IMAGE_DATA,
    }
)
NEAR_VALID_FRAMES = json_texts(st.one_of(FRAMES, mutated_object(FRAMES, HOSTILE_FIELD)))


LEGACY_TEXTS = st.one_of(
    st.text(ANY_CHARACTER, max_size=200),
    json_texts(JSON_VALUES),
    deeply_nested(),
    NEAR_VALID_FRAMES,
    mutated_text(NEAR_VALID_FRAMES),
)


@PARSER_SETTINGS
@with_examples(KNOWN_BAD_LEGACY_MESSAGES)
@given(LEGACY_TEXTS)
def test_legacy_frame_is_parsed_or_refused(raw: str) -> None:
    _check_legacy_frame(raw)


# ---------------------------------------------------------------- through a real server

# aiortc, in the server's thread, draws from `random` (ICE, SSRCs) while hypothesis's thread
# generates: hypothesis sees the global state move and blames the strategy. No strategy in
# this file uses `random`.
pytestmark = pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")

SERVER_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
SDP_CASES = 1000
CHANNEL_CASES = 300
BODY_CASES = 150


def _on_loop(loop: asyncio.AbstractEventLoop, coroutine: Any, timeout: float = 30.0) -> Any:
    """Run a coroutine on the server's loop from hypothesis's thread and wait for it."""
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout)


async def _run_hypothesis(test: Any) -> None:
    """Hypothesis drives the cases from a thread, so the event loop keeps serving the
    server (and its peer connections) between and during cases."""
    await asyncio.to_thread(test)


def _assert_no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    gc.collect()  # "Task exception was never retrieved" is logged when the task is freed
    tracebacks = [
        record
        for record in caplog.records
        if record.levelno >= logging.ERROR and (record.exc_info or record.exc_text)
    ]
    assert not tracebacks, "\n".join(
        f"{r.name}: {r.getMessage()}\n{caplog.handler.formatter.formatException(r.exc_info)}"
        if r.exc_info
        else f"{r.name}: {r.getMessage()}"
        for r in tracebacks[:5]
    )


async def _fuzz_server(start_server: Any) -> Any:
    """A real server whose limits do not hide the parsing under test: many cameras, and
    control messages faster than a person sends them.

    Every camera offer answered 200 is a camera that never connects (the fuzzer does no
    ICE): it keeps its place until `connect_timeout_s` (10 s) closes it, and 1000 mutated
    offers make a few hundred of them. With the default 16 cameras per address, the closing
    real offer (`_check_server_still_serves`) answered 429 whenever more than 16 had been
    answered in the run's last 10 s: how many depends on how fast the machine is, hence a
    failure now and then, and every time beside two busy loops. The stall timeout stays at
    its default: it counts only once a camera is connected, so it never shortened the
    fuzzer's cameras, while at 1 s a busy machine made the test's own camera miss a second
    of frames and be closed (monitor offers then found no camera)."""
    return await start_server(
        max_cameras=0,
        max_cameras_per_address=0,
        max_connections_per_address=0,
        max_messages_per_s=0,
        max_monitors_per_camera=0,
    )


async def _base_offer_sdp() -> str:
    """A real camera offer, as aiortc writes it: one sendonly video and the `komi` channel."""
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="sendonly")
    pc.createDataChannel("komi")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


async def _post_offer(
    http: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, str, Any]:
    async with http.post(
        f"{url}/offer", data=body, headers={"Content-Type": "application/json", **headers}
    ) as response:
        text = await response.text()
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        return response.status, text, answer


def _check_offer_answer(status: int, text: str, answer: Any) -> None:
    assert status < 500, f"{status}: {text[:500]}"
    if status == 200:
        assert isinstance(answer, dict), text[:500]
        assert answer["type"] == "answer"
        assert answer["sdp"].startswith("v=0")
        assert _CAMERA_ID.match(answer["camera_id"])
    else:
        assert 400 <= status < 500, f"{status}: {text[:500]}"
        assert isinstance(answer, dict) and isinstance(answer.get("error"), str), text[:500]
        assert answer["error"]


async def _check_server_still_serves(url: str, http: aiohttp.ClientSession) -> None:
    """A real camera offer still gets an answer, and the camera list still answers."""
    sdp = await _base_offer_sdp()
    body = json.dumps({"sdp": sdp, "type": "offer", "role": "camera", "token": ADMIN_TOKEN})
    status, text, answer = await _post_offer(http, url, body.encode(), AUTH_HEADERS)
    assert status == 200, f"{status}: {text[:500]}"
    assert answer["sdp"].startswith("v=0")
    async with http.get(f"{url}/cameras", headers=AUTH_HEADERS) as response:
        assert response.status == 200
        assert isinstance((await response.json())["cameras"], list)


SDP_NUMBERS = st.one_of(
    st.integers(-5, 70_000),
    st.sampled_from([-1, 0, 2**31, 2**32, 2**63, 2**64, 10**30]),
)
SDP_WORDS = st.one_of(
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20),
    st.text(ANY_CHARACTER, max_size=12),
    st.sampled_from(
        [
            "",
            " ",
            "VP8/90000",
            "H264/90000",
            "opus/48000/2",
            "UDP/TLS/RTP/SAVPF",
            "UDP/DTLS/SCTP",
            "webrtc-datachannel",
            "actpass",
            "active",
            "passive",
            "sha-256",
            "0",
            "-",
            "IN IP4 0.0.0.0",
            "IN IP6 ::1",
            "x" * 5000,
        ]
    ),
)
SDP_TEMPLATES = [
    "m=video {n} {w} {n}",
    "m=application {n} UDP/DTLS/SCTP webrtc-datachannel",
    "m={w} {n} {w} {w}",
    "a=rtpmap:{n} {w}",
    "a=rtpmap:{n} VP8/{n}",
    "a=fmtp:{n} {w}",
    "a=fmtp:{n} apt={n}",
    "a=rtcp-fb:{n} {w}",
    "a=ssrc:{n} cname:{w}",
    "a=ssrc-group:FID {n} {n}",
    "a=ssrc-group:{w} {w}",
    "a=candidate:{w} {n} udp {n} {w} {n} typ host",
    "a=candidate:{w}",
    "a=fingerprint:sha-256 {w}",
    "a=fingerprint:{w} {w}",
    "a=setup:{w}",
    "a=mid:{w}",
    "a=group:BUNDLE {w} {w}",
    "a=extmap:{n} {w}",
    "a=sctp-port:{n}",
    "a=sctpmap:{n} {w} {n}",
    "a=max-message-size:{n}",
    "a=ice-ufrag:{w}",
    "a=ice-pwd:{w}",
    "a=msid:{w} {w}",
    "a=rtcp:{n} IN IP4 {w}",
    "a=rtcp-mux",
    "a={w}",
    "c=IN IP4 {w}",
    "c={w}",
    "b=AS:{n}",
    "o={w} {n} {n} IN IP4 {w}",
    "t={n} {n}",
    "{w}",
]


@st.composite
def sdp_line(draw: st.DrawFn) -> str:
    template = draw(st.sampled_from(SDP_TEMPLATES))
    while "{n}" in template or "{w}" in template:
        if "{n}" in template:
            template = template.replace("{n}", str(draw(SDP_NUMBERS)), 1)
        else:
            template = template.replace("{w}", draw(SDP_WORDS), 1)
    return template


@st.composite
def mutated_sdp(draw: st.DrawFn, base: str) -> str:
    """A real offer with lines dropped, repeated, swapped, garbled, replaced or added."""
    lines = base.split("\r\n")
    if lines[-1] == "":
        lines.pop()
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(1, len(lines) - 1)) if len(lines) > 1 else 0
        action = draw(
            st.sampled_from(
                ["drop", "repeat", "swap", "garble", "value", "number", "add", "add", "bare"]
            )
        )
        if action == "drop" and len(lines) > 1:
            del lines[i]
        elif action == "repeat":
            lines.insert(i, lines[i])
        elif action == "swap":
            j = draw(st.integers(1, len(lines) - 1)) if len(lines) > 1 else 0
            lines[i], lines[j] = lines[j], lines[i]
        elif action == "garble":
            line = lines[i]
            k = draw(st.integers(0, len(line)))
            cut = draw(st.integers(0, 6))
            lines[i] = line[:k] + draw(st.text(ANY_CHARACTER, max_size=6)) + line[k + cut :]
        elif action == "value":
            line = lines[i]
            split = max(line.find(":"), line.find("="))
            lines[i] = line[: split + 1] + draw(SDP_WORDS)
        elif action == "number":
            lines[i] = re.sub(r"\d+", lambda _: str(draw(SDP_NUMBERS)), lines[i])
        elif action == "add":
            lines.insert(i, draw(sdp_line()))
        else:
            lines[i] = lines[i].split(":")[0].split("=")[0]
    sdp = "\r\n".join(lines) + "\r\n"
    ending = draw(st.sampled_from(["crlf", "crlf", "crlf", "lf", "truncate"]))
    if ending == "lf":
        sdp = sdp.replace("\r\n", "\n")
    elif ending == "truncate":
        sdp = sdp[: draw(st.integers(3, len(sdp)))]
    return sdp


def test_offer_with_mutated_sdp_is_parsed_or_refused() -> None:
    base = asyncio.run(_base_offer_sdp())

    @PARSER_SETTINGS
    @given(mutated_sdp(base), st.sampled_from(["camera", "monitor"]))
    def parse_mutated_offer(sdp: str, role: str) -> None:
        body = {"sdp": sdp, "type": "offer", "role": role, "camera_id": "camera_1"}
        _check_offer_body(json.dumps(body).encode())

    parse_mutated_offer()


async def test_mutated_sdp_offers_answer_200_or_a_json_4xx_and_the_server_stays_up(
    start_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Camera offers, and monitor offers for a camera that streams."""
    caplog.set_level(logging.WARNING)
    server = await _fuzz_server(start_server)
    loop = asyncio.get_running_loop()
    base = await _base_offer_sdp()
    camera = await connect_camera(server.url, PersonTrack(fps=5))
    statuses: Counter[tuple[str, int]] = Counter()
    try:
        await camera.next_message("frame_processed")
        async with aiohttp.ClientSession() as http:

            @settings(SERVER_SETTINGS, max_examples=SDP_CASES)
            @example(base.replace("a=mid:0", "a=mid:5", 1), "camera")  # BUNDLE names no one
            @example(base.replace("a=sendonly\r\n", ""), "monitor")  # no direction
            @example(second_application_section(base), "camera")  # once a 500 (issue 22)
            @given(mutated_sdp(base), st.sampled_from(["camera", "camera", "monitor"]))
            def post_mutated_offer(sdp: str, role: str) -> None:
                body = {"sdp": sdp, "type": "offer", "role": role, "token": ADMIN_TOKEN}
                if role == "monitor":
                    body["camera_id"] = camera.camera_id
                raw = json.dumps(body).encode()
                status, text, answer = _on_loop(
                    loop, _post_offer(http, server.url, raw, AUTH_HEADERS)
                )
                statuses[role, status] += 1
                _check_offer_answer(status, text, answer)

            await _run_hypothesis(post_mutated_offer)
            await _check_server_still_serves(server.url, http)
        await camera.next_message("frame_processed")  # still analysed
    finally:
        await camera.close()
    await server.server.close()
    assert sum(statuses.values()) >= SDP_CASES
    for role in ("camera", "monitor"):  # both negotiated and refused, each role
        assert statuses[role, 200] and statuses[role, 400], statuses
    _assert_no_tracebacks(caplog)


# Floods (issue 22): one offer with thousands of candidates held the server's event loop
# for 27 s. Each flood is a run of one kind of line in one section, or copies of a section,
# around each limit and far beyond it, sometimes split by the other line breaks aiortc
# splits on, sometimes mutated as above.
FLOOD_CASES = 200
FLOOD_COUNTS = st.sampled_from([2, 31, 32, 33, 63, 64, 65, 255, 256, 257, 1000, 1025, 12_000])
FLOOD_LINES = {
    "candidate": lambda i: f"a=candidate:f{i} 1 udp 2130706431 127.0.0.1 {20000 + i} typ host",
    "mdns candidate": lambda i: f"a=candidate:m{i} 1 udp 2130706431 {i}.local 9 typ host",
    "rtpmap": lambda i: f"a=rtpmap:{96 + i % 32} VP8/90000",
    "rtcp-fb": lambda i: "a=rtcp-fb:* nack",
    "ssrc": lambda i: f"a=ssrc:{1000 + i} cname:x",
    "filler": lambda i: f"a=x-filler:{i}",
}
FLOOD_KINDS = [*FLOOD_LINES, "video sections", "audio sections", "application sections"]


@st.composite
def flooded_sdp(draw: st.DrawFn, base: str) -> str:
    lines = base.split("\r\n")
    if lines[-1] == "":
        lines.pop()
    starts = [i for i, line in enumerate(lines) if line.startswith("m=")]
    kind = draw(st.sampled_from(FLOOD_KINDS))
    count = draw(FLOOD_COUNTS)
    separator = draw(st.sampled_from(["\r\n", "\r\n", "\x85", "\x0b", "\u2028"]))
    if kind in FLOOD_LINES:
        where = draw(st.sampled_from(starts)) + 1
        flood = separator.join(FLOOD_LINES[kind](i) for i in range(count))
        lines.insert(where, flood)
    else:
        source = "m=application" if kind == "application sections" else "m=video"
        start = next(i for i in starts if lines[i].startswith(source))
        end = next((i for i in starts if i > start), len(lines))
        section = lines[start:end]
        if kind == "audio sections":
            section = [line.replace("m=video", "m=audio", 1) for line in section]
        copies = []
        for i in range(min(count, 300)):  # 300 video sections: 600 kB, under the body limit
            mid = f"x{i}"
            copies += [f"a=mid:{mid}" if line.startswith("a=mid:") else line for line in section]
            if draw(st.booleans()):
                lines = [
                    line + f" {mid}" if line.startswith("a=group:") else line for line in lines
                ]
        lines += copies
    sdp = "\r\n".join(lines) + "\r\n"
    if draw(st.integers(0, 3)) == 0:
        sdp = draw(mutated_sdp(sdp))
    return sdp


def _assert_within_the_limits(sdp: str) -> None:
    """What an accepted offer holds, counted apart from the check under test."""
    assert len(sdp) <= MAX_SDP_CHARS
    lines = sdp.splitlines()
    assert len(lines) <= MAX_SDP_LINES
    sections: list[list[str]] = []
    for line in lines:
        if line.startswith("m="):
            sections.append([])
        if sections:
            sections[-1].append(line)
    assert len(sections) <= MAX_MEDIA_SECTIONS
    assert sum(s[0].startswith("m=application") for s in sections) <= MAX_APPLICATION_SECTIONS
    per_section = [sum(line.startswith("a=candidate") for line in s) for s in sections]
    assert max(per_section, default=0) <= MAX_CANDIDATES_PER_SECTION
    assert sum(per_section) <= MAX_CANDIDATES
    for section in sections:
        assert sum(line.startswith("a=rtpmap") for line in section) <= MAX_CODECS_PER_SECTION
    assert sum(line.startswith("a=rtcp-fb") for line in lines) <= MAX_FEEDBACK_LINES


def test_a_flooded_offer_is_refused_quickly_or_within_the_limits() -> None:
    base = asyncio.run(_base_offer_sdp())

    @settings(PARSER_SETTINGS, max_examples=PARSER_CASES // 4)
    @given(flooded_sdp(base), st.sampled_from(["camera", "monitor"]))
    def parse_flooded_offer(sdp: str, role: str) -> None:
        body = json.dumps({"sdp": sdp, "type": "offer", "role": role, "camera_id": "c1"})
        started = time.perf_counter()
        _check_offer_body(body.encode())
        assert time.perf_counter() - started < 0.5  # bounded whatever the SDP
        try:
            parse_offer(body.encode())
        except KomiError:
            return
        _assert_within_the_limits(sdp)

    parse_flooded_offer()


async def test_sdp_floods_answer_200_or_a_json_4xx_and_the_server_stays_responsive(
    start_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Each flood is answered (never 500), and /healthz answers right after it: no offer
    holds the event loop."""
    caplog.set_level(logging.WARNING)
    server = await _fuzz_server(start_server)
    loop = asyncio.get_running_loop()
    base = await _base_offer_sdp()
    camera = await connect_camera(server.url, PersonTrack(fps=5))
    statuses: Counter[int] = Counter()
    slowest = {"offer": 0.0, "healthz": 0.0}
    try:
        await camera.next_message("frame_processed")
        async with aiohttp.ClientSession() as http:

            async def timed(request: Any) -> tuple[Any, float]:
                started = time.perf_counter()
                result = await request
                return result, time.perf_counter() - started

            async def healthz() -> int:
                async with http.get(f"{server.url}/healthz") as response:
                    return response.status

            @settings(SERVER_SETTINGS, max_examples=FLOOD_CASES)
            @example(second_application_section(base), "camera")
            @given(flooded_sdp(base), st.sampled_from(["camera", "camera", "monitor"]))
            def post_flooded_offer(sdp: str, role: str) -> None:
                body = {"sdp": sdp, "type": "offer", "role": role, "token": ADMIN_TOKEN}
                if role == "monitor":
                    body["camera_id"] = camera.camera_id
                raw = json.dumps(body).encode()
                (status, text, answer), offer_s = _on_loop(
                    loop, timed(_post_offer(http, server.url, raw, AUTH_HEADERS))
                )
                statuses[status] += 1
                _check_offer_answer(status, text, answer)
                health, healthz_s = _on_loop(loop, timed(healthz()))
                assert health == 200
                slowest["offer"] = max(slowest["offer"], offer_s)
                slowest["healthz"] = max(slowest["healthz"], healthz_s)

            await _run_hypothesis(post_flooded_offer)
            await _check_server_still_serves(server.url, http)
        await camera.next_message("frame_processed")  # still analysed
        assert camera.pc.connectionState == "connected"
    finally:
        await camera.close()
    await server.server.close()
    print(f"\nflood cases: {dict(statuses)}; slowest: {slowest}")
    assert sum(statuses.values()) >= FLOOD_CASES
    assert statuses[200] and statuses[400], statuses
    assert slowest["healthz"] < 0.5 and slowest["offer"] < 2.0, slowest
    _assert_no_tracebacks(caplog)


OFFER_BODIES = st.one_of(
    st.binary(max_size=300),
    json_texts(JSON_VALUES).map(lambda text: text.encode("utf-8", "surrogatepass")),
    deeply_nested().map(str.encode),
    json_texts(NEAR_VALID_OFFERS).map(lambda text: text.encode("utf-8", "surrogatepass")),
)


async def test_offer_bodies_answer_a_json_4xx_never_500(
    start_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Any body, with the token in the header or only in the body (where the server reads
    it before the offer is parsed)."""
    caplog.set_level(logging.WARNING)
    server = await _fuzz_server(start_server)
    loop = asyncio.get_running_loop()
    statuses: Counter[int] = Counter()
    async with aiohttp.ClientSession() as http:

        @settings(SERVER_SETTINGS, max_examples=BODY_CASES)
        @with_examples([(body, False) for body in KNOWN_BAD_OFFER_BODIES])
        @given(OFFER_BODIES, st.booleans())
        def post_body(body: bytes, token_in_header: bool) -> None:
            headers = AUTH_HEADERS if token_in_header else {}
            status, text, answer = _on_loop(loop, _post_offer(http, server.url, body, headers))
            statuses[status] += 1
            _check_offer_answer(status, text, answer)

        await _run_hypothesis(post_body)
        await _check_server_still_serves(server.url, http)
    await server.server.close()
    assert sum(statuses.values()) >= BODY_CASES
    _assert_no_tracebacks(caplog)


def _sendable(message: str | bytes) -> str | bytes:
    """What a peer can put on a channel: UTF-8 text (lone surrogates replaced; escaped ones
    such as `"\\ud800"` inside JSON stay), at most 200 kB."""
    if isinstance(message, bytes):
        return message[:200_000]
    return message.encode("utf-8", "replace").decode("utf-8")[:200_000]


class _Replies:
    """Reads a peer's replies up to a barrier: a `ping` whose `t` is unique, answered in
    order after everything sent before it."""

    def __init__(self, receive: Any) -> None:
        self._receive = receive
        self._barrier = 0

    def barrier(self) -> dict[str, Any]:
        self._barrier += 1
        return {"type": "ping", "t": f"barrier-{self._barrier}"}

    async def until_barrier(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        wanted = f"barrier-{self._barrier}"
        replies: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout):
            while True:
                message = await self._receive()
                assert isinstance(message, dict) and isinstance(message.get("type"), str)
                if message["type"] == "pong" and message.get("t") == wanted:
                    return replies
                if message["type"] == "error":
                    assert isinstance(message.get("error"), str) and message["error"]
                if message["type"] != "frame_processed":
                    replies.append(message)


def _expected_control_reply(message: str | bytes) -> str:
    """'error' when the parser refuses the message; else the reply type, or '' for none."""
    try:
        parsed = parse_control_message(message)
    except KomiError:
        return "error"
    return "pong" if parsed.type == "ping" else ""


async def test_control_messages_on_the_data_channel_get_a_reply_or_an_error(
    start_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    server = await _fuzz_server(start_server)
    loop = asyncio.get_running_loop()
    camera = await connect_camera(server.url, PersonTrack(fps=5))
    replies = _Replies(camera.messages.get)
    cases = 0
    try:
        await camera.next_message("frame_processed")  # the channel is open

        @settings(SERVER_SETTINGS, max_examples=CHANNEL_CASES)
        @with_examples(KNOWN_BAD_CONTROL_MESSAGES)
        @given(st.one_of(CONTROL_TEXTS, st.binary(max_size=100)))
        def send_control_message(raw: str | bytes) -> None:
            nonlocal cases
            message = _sendable(raw)

            async def exchange() -> list[dict[str, Any]]:
                camera.channel.send(message)
                camera.send(replies.barrier())
                return await replies.until_barrier()

            got = [reply["type"] for reply in _on_loop(loop, exchange())]
            expected = _expected_control_reply(message)
            assert not expected or expected in got, (message, got)
            if expected != "error":
                assert "error" not in got or "exercise" in str(message), (message, got)
            cases += 1

        await _run_hypothesis(send_control_message)
        assert camera.pc.connectionState == "connected"
        camera.send({"type": "ping", "t": 42})
        assert (await camera.next_message("pong"))["t"] == 42
        await camera.next_message("frame_processed")  # still analysed
    finally:
        await camera.close()
    async with aiohttp.ClientSession() as http:
        await _check_server_still_serves(server.url, http)
    await server.server.close()
    assert cases >= CHANNEL_CASES
    _assert_no_tracebacks(caplog)


LEGACY_CAMERA_MESSAGES = st.one_of(LEGACY_TEXTS, CONTROL_TEXTS, st.binary(max_size=100))


async def test_legacy_camera_messages_get_errors_and_the_camera_keeps_working(
    start_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    server = await _fuzz_server(start_server)
    loop = asyncio.get_running_loop()
    cases = 0
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{server.url}/ws/camera", headers=AUTH_HEADERS) as ws:
            hello = await ws.receive_json(timeout=10)
            assert hello["type"] == "connection_successful"
            replies = _Replies(lambda: ws.receive_json())

            @settings(SERVER_SETTINGS, max_examples=CHANNEL_CASES)
            @with_examples(KNOWN_BAD_LEGACY_MESSAGES + KNOWN_BAD_CONTROL_MESSAGES)
            @given(LEGACY_CAMERA_MESSAGES)
            def send_legacy_message(raw: str | bytes) -> None:
                nonlocal cases
                message = _sendable(raw)

                async def exchange() -> list[dict[str, Any]]:
                    if isinstance(message, bytes):
                        await ws.send_bytes(message)
                    else:
                        await ws.send_str(message)
                    await ws.send_json(replies.barrier())
                    return await replies.until_barrier()

                _on_loop(loop, exchange())
                cases += 1

            await _run_hypothesis(send_legacy_message)
            assert not ws.closed
            await ws.send_json(
                {"type": "frame", "timestamp": 2.0, "image_data": person_jpeg_base64(1)}
            )
            async with asyncio.timeout(15):
                while (await ws.receive_json())["type"] != "frame_processed":
                    pass
        await _check_server_still_serves(server.url, http)
    await server.server.close()
    assert cases >= CHANNEL_CASES
    _assert_no_tracebacks(caplog)

"""What peers send: every request body and channel message validated into a typed value.

Everything that crosses the network inward is validated here; the rest of the package
trusts its types. See docs/protocol.md for the contract as users read it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from .errors import InvalidRequest

DATA_CHANNEL_LABEL = "komi"
ROLES = ("camera", "monitor")
# Camera, person and station ids end up in URLs, file names, logs and CSV files: not "." or
# ".." (a path segment naming a directory), not starting with "-" (an option on a command
# line, a formula in a spreadsheet: "-1-1"). `\Z`, not `$`, which also matches before a
# final newline.
_CAMERA_ID = re.compile(r"^(?!-)(?!\.\.?\Z)[A-Za-z0-9_.\-]{1,64}\Z")
_ID_RULE = (
    "1 to 64 characters of letters, digits, '_', '-' or '.', "
    "not starting with '-' and not '.' or '..'"
)
MAX_CONTROL_MESSAGE_BYTES = 64 * 1024
MAX_JSON_DEPTH = 32
_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON value")


def load_json(text: str | bytes) -> Any:
    """JSON that every part of the server can use and send back (the wire encoder is
    orjson): raises ValueError for malformed JSON, NaN or Infinity (written or as 1e400),
    lone surrogates (`"\\ud800"`), integers beyond 64 bits, or nesting deeper than
    MAX_JSON_DEPTH.
    Deep nesting raises RecursionError inside `json.loads`; it is reported as ValueError."""
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    pending: list[tuple[Any, int]] = [(data, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            if not value.isascii() and _SURROGATE.search(value):  # isascii() is O(1)
                raise ValueError("a string holds a lone surrogate (not Unicode text)")
        elif isinstance(value, int) and not isinstance(value, bool):
            if not _INT64_MIN <= value <= _UINT64_MAX:
                raise ValueError("an integer does not fit in 64 bits")
        elif isinstance(value, float):
            if not math.isfinite(value):  # 1e400 parses as inf
                raise ValueError("a number is too large")
        elif isinstance(value, (list, dict)):
            if depth >= MAX_JSON_DEPTH:
                raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
            if isinstance(value, dict):
                pending.extend((key, depth) for key in value)
                value = value.values()
            pending.extend((item, depth + 1) for item in value)
    return data


def excerpt(value: str) -> str:
    """Peer text quoted in an error message and a log line: short, and on one line."""
    value = value[:64]
    return value if value.isprintable() else ascii(value)


def validate_camera_id(value: object) -> str:
    """Camera ids end up in URLs and logs: see `_CAMERA_ID`."""
    if not isinstance(value, str) or not _CAMERA_ID.match(value):
        raise InvalidRequest(f"camera_id must be {_ID_RULE}")
    return value


def validate_person_id(value: object) -> str:
    """Person ids follow the camera-id rules (they end up in URLs, file names and logs)."""
    if not isinstance(value, str) or not _CAMERA_ID.match(value):
        raise InvalidRequest(f"'person' must be {_ID_RULE}")
    return value


@dataclass(frozen=True)
class Offer:
    """A validated `POST /offer` body."""

    sdp: str
    role: str
    camera_id: str | None
    person: str | None = None  # a camera tied to this person from the start
    station: str | None = None  # a camera joining this station
    clock: str | None = None  # cameras naming one clock share it (one process, one host)

    def to_wire(self) -> dict[str, Any]:
        """The body a client posts (the camera peer, the benchmarks): optional fields left
        out; the token goes in the Authorization header."""
        body: dict[str, Any] = {"sdp": self.sdp, "type": "offer", "role": self.role}
        for name in ("camera_id", "person", "station", "clock"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        return body


def parse_offer(body: bytes) -> Offer:
    """Validate an offer body; raises InvalidRequest with a message a person can act on."""
    try:
        data = load_json(body)
    except ValueError as exc:  # UnicodeDecodeError included
        raise InvalidRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest("body must be a JSON object")
    sdp = data.get("sdp")
    if not isinstance(sdp, str) or not sdp.strip():
        raise InvalidRequest("'sdp' must be a non-empty string")
    if data.get("type", "offer") != "offer":
        raise InvalidRequest("'type' must be 'offer'")
    if not sdp.lstrip().startswith("v=0"):
        raise InvalidRequest("'sdp' is not an SDP description (it must start with 'v=0')")
    check_sdp(sdp)
    role = data.get("role", "camera")
    if role not in ROLES:
        raise InvalidRequest("'role' must be 'camera' or 'monitor'")
    camera_id = data.get("camera_id")
    if camera_id is not None:
        camera_id = validate_camera_id(camera_id)
    elif role == "monitor":
        raise InvalidRequest("a monitor must name the 'camera_id' it watches")
    person = data.get("person")
    if person is not None:
        if role != "camera":
            raise InvalidRequest("only a camera offer names a 'person'")
        person = validate_person_id(person)
    station = data.get("station")
    if station is not None:
        if role != "camera":
            raise InvalidRequest("only a camera offer names a 'station'")
        station = validate_station_id(station)
    clock = data.get("clock")
    if clock is not None:
        if role != "camera":
            raise InvalidRequest("only a camera offer names a 'clock'")
        if not isinstance(clock, str) or not _CAMERA_ID.match(clock):
            raise InvalidRequest(f"'clock' must be {_ID_RULE}")
    return Offer(
        sdp=sdp, role=role, camera_id=camera_id, person=person, station=station, clock=clock
    )


def validate_station_id(value: object) -> str:
    if not isinstance(value, str) or not _CAMERA_ID.match(value):
        raise InvalidRequest(f"'station' must be {_ID_RULE}")
    return value


_MEDIA_KINDS = ("audio", "video", "application")
_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")

# What one offer may make the server do. aiortc parses the offer and aioice pairs each ICE
# candidate in the event loop, and aioice scans its whole pair list for every candidate: the
# time grows with the square of their number (1,000 candidates: 0.2 s, 12,000: 27 s during
# which no other client is served; issue 22). A browser's camera offer (video, the `komi`
# channel, its candidates) is 5 to 15 kB and 100 to 300 lines.
MAX_SDP_CHARS = 64 * 1024  # characters (bytes, for the ASCII a browser writes)
MAX_SDP_LINES = 1024  # a browser's video section, one line per codec attribute: under 200
MAX_MEDIA_SECTIONS = 4  # m= lines: a camera or monitor needs video and one application
MAX_APPLICATION_SECTIONS = 1  # one SCTP association carries the `komi` data channel
# a=candidate lines: browsers send under 20 per section (host or mDNS, IPv4 and IPv6, UDP
# and TCP, server-reflexive, a TURN server's relays); aiortc pairs each one with every
# local candidate.
MAX_CANDIDATES_PER_SECTION = 32
MAX_CANDIDATES = 64  # in the whole offer
# aiortc matches each a=rtcp-fb line against every codec (a=rtpmap) of its section: time
# grows with their product (500 x 500 lines: 0.4 s). A browser's video section has under 50
# codecs and 100 feedback lines.
MAX_CODECS_PER_SECTION = 64  # a=rtpmap lines
MAX_FEEDBACK_LINES = 256  # a=rtcp-fb lines in the whole offer


def check_sdp(sdp: str) -> None:
    """Refuse an offer beyond the limits above (MAX_SDP_CHARS ...), checked before aiortc
    sees it, and what aiortc (1.x) accepts but then fails on, later and with no clear
    answer:

    - an m= section neither audio nor video is answered as a data channel, and one that is
      not "application" either has none: createAnswer raises AttributeError;
    - a second m=application section is answered with the first one's mid: ValueError
      ("Media sections in answer do not match offer") in setLocalDescription;
    - an audio or video section without its own direction attribute gets no direction
      (not the default sendrecv): createAnswer raises ValueError;
    - every bundled section moves onto the transport of the first mid the BUNDLE group
      names; a BUNDLE mid that no section has (or two sections with one mid) leaves
      sections without a transport: AttributeError in createAnswer, close or a task;
    - an ICE candidate port beyond 0 to 65535 makes each connectivity check raise
      OverflowError in the event loop.
    The rest of the SDP is left to aiortc, which refuses it when it cannot parse it.
    Lines are split as aiortc splits them (`str.splitlines`)."""
    if len(sdp) > MAX_SDP_CHARS:
        raise InvalidRequest(
            f"invalid SDP offer: {len(sdp)} characters, more than the {MAX_SDP_CHARS} accepted"
        )
    lines = sdp.splitlines()
    if len(lines) > MAX_SDP_LINES:
        raise InvalidRequest(
            f"invalid SDP offer: {len(lines)} lines, more than the {MAX_SDP_LINES} accepted"
        )
    kinds: dict[str, str] = {}
    bundles: list[list[str]] = []
    sections: list[tuple[str, list[str]]] = []  # (kind, attribute names)
    for line in lines:
        if line.startswith("m="):
            kind = line[2:].split(" ", 1)[0]
            if kind not in _MEDIA_KINDS:
                raise InvalidRequest(
                    f"invalid SDP offer: m={excerpt(kind)} is not audio, video or application"
                )
            sections.append((kind, []))
        elif line.startswith("a=") and sections:
            kind, names = sections[-1]
            name, _, value = line[2:].partition(":")
            if name == "mid":
                if "mid" in names or value in kinds:
                    raise InvalidRequest(f"invalid SDP offer: a=mid:{excerpt(value)} is not unique")
                kinds[value] = kind
            elif name == "candidate":
                _check_candidate_port(value.split())
            names.append(name)
        elif line.startswith("a=group:"):
            semantic, *mids = line[len("a=group:") :].split() or [""]
            if semantic == "BUNDLE":
                bundles.append(mids)
    _check_sections(sections)
    for kind, names in sections:
        if kind != "application" and not any(name in _DIRECTIONS for name in names):
            raise InvalidRequest(
                f"invalid SDP offer: an m={kind} section has no direction "
                "(a=sendrecv, a=sendonly, a=recvonly or a=inactive)"
            )
    for mids in bundles:
        for mid in mids:
            if mid not in kinds:
                raise InvalidRequest(
                    f"invalid SDP offer: a=group:BUNDLE names mid {excerpt(mid)}, "
                    "which no m= section has"
                )


def _check_sections(sections: list[tuple[str, list[str]]]) -> None:
    """The media-section, candidate and codec limits; `sections` holds each m= section's
    kind and attribute names (aiortc ignores attributes before the first m= line)."""
    if len(sections) > MAX_MEDIA_SECTIONS:
        raise InvalidRequest(
            f"invalid SDP offer: {len(sections)} media sections (m= lines), more than the "
            f"{MAX_MEDIA_SECTIONS} accepted"
        )
    applications = sum(kind == "application" for kind, _ in sections)
    if applications > MAX_APPLICATION_SECTIONS:
        raise InvalidRequest(
            f"invalid SDP offer: {applications} m=application sections; one carries the "
            f"'{DATA_CHANNEL_LABEL}' data channel, at most {MAX_APPLICATION_SECTIONS} accepted"
        )
    candidates = feedback = 0
    for index, (kind, names) in enumerate(sections):
        count = names.count("candidate")
        if count > MAX_CANDIDATES_PER_SECTION:
            raise InvalidRequest(
                f"invalid SDP offer: {count} ICE candidates (a=candidate lines) in media "
                f"section {index} (m={kind}), more than the {MAX_CANDIDATES_PER_SECTION} "
                "accepted per section"
            )
        candidates += count
        codecs = names.count("rtpmap")
        if codecs > MAX_CODECS_PER_SECTION:
            raise InvalidRequest(
                f"invalid SDP offer: {codecs} codecs (a=rtpmap lines) in media section "
                f"{index} (m={kind}), more than the {MAX_CODECS_PER_SECTION} accepted"
            )
        feedback += names.count("rtcp-fb")
    if candidates > MAX_CANDIDATES:
        raise InvalidRequest(
            f"invalid SDP offer: {candidates} ICE candidates (a=candidate lines), more than "
            f"the {MAX_CANDIDATES} accepted in one offer"
        )
    if feedback > MAX_FEEDBACK_LINES:
        raise InvalidRequest(
            f"invalid SDP offer: {feedback} a=rtcp-fb lines, more than the "
            f"{MAX_FEEDBACK_LINES} accepted in one offer"
        )


def _check_candidate_port(fields: list[str]) -> None:
    """`foundation component transport priority address port typ type ...` (RFC 8839);
    a port that is not a number is left to aiortc's parser, which refuses it."""
    try:
        port = int(fields[5])
    except (IndexError, ValueError):
        return
    if not 0 <= port <= 65535:
        raise InvalidRequest(
            f"invalid SDP offer: ICE candidate port {excerpt(fields[5])} is not 0 to 65535"
        )


@dataclass(frozen=True)
class ControlMessage:
    """A validated message a peer sent on the `komi` channel."""

    type: str
    fields: dict[str, Any]


CONTROL_TYPES = ("set_exercise", "set_person", "ping")


def parse_control_message(raw: str | bytes) -> ControlMessage:
    """Validate a data-channel message from a peer; raises InvalidRequest."""
    if isinstance(raw, bytes):
        raise InvalidRequest("messages on the 'komi' channel must be JSON text, not binary")
    if len(raw) > MAX_CONTROL_MESSAGE_BYTES:
        raise InvalidRequest("message too large")
    try:
        data = load_json(raw)
    except ValueError as exc:
        raise InvalidRequest(f"message is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise InvalidRequest("message must be a JSON object with a string 'type'")
    if data["type"] not in CONTROL_TYPES:
        raise InvalidRequest(f"unknown message type: {excerpt(data['type'])}")
    if data["type"] == "set_person":
        if "person" not in data:
            raise InvalidRequest("'person' is required (an id, or null to untie)")
        if data["person"] is not None:
            validate_person_id(data["person"])
    return ControlMessage(type=data["type"], fields=data)


@dataclass(frozen=True)
class LegacyFrame:
    """A frame of the original KOMI `/ws/camera` protocol: JPEG bytes, not yet decoded."""

    jpeg: bytes
    timestamp: float | None = None  # capture time in the camera's clock (unix seconds)


def parse_legacy_frame(raw: str) -> LegacyFrame:
    """Validate `{"type": "frame", "timestamp", "image_data"}`; raises InvalidRequest."""
    try:
        data = load_json(raw)
    except ValueError as exc:
        raise InvalidRequest(f"message is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest("message must be a JSON object")
    if data.get("type") != "frame":
        raise InvalidRequest(f"unknown message type: {excerpt(str(data.get('type')))}")
    image_data = data.get("image_data")
    if not isinstance(image_data, str) or not image_data:
        raise InvalidRequest("'image_data' must be a base64 JPEG string")
    if image_data.startswith("data:"):
        image_data = image_data.partition(",")[2]
    try:
        jpeg = base64.b64decode(image_data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("'image_data' is not valid base64") from None
    stamp = data.get("timestamp")
    timestamp = (
        float(stamp) if isinstance(stamp, (int, float)) and not isinstance(stamp, bool) else None
    )
    return LegacyFrame(jpeg=jpeg, timestamp=timestamp)

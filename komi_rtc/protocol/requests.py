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
_CAMERA_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
MAX_CONTROL_MESSAGE_BYTES = 64 * 1024
MAX_JSON_DEPTH = 32
_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON value")


def _load_json(text: str | bytes) -> Any:
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


def _excerpt(value: str) -> str:
    """Peer text quoted in an error message and a log line: short, and on one line."""
    value = value[:64]
    return value if value.isprintable() else ascii(value)


def validate_camera_id(value: object) -> str:
    """Camera ids end up in URLs and logs: 1 to 64 of letters, digits, '_', '-', '.'."""
    if not isinstance(value, str) or not _CAMERA_ID.match(value):
        raise InvalidRequest(
            "camera_id must be 1 to 64 characters of letters, digits, '_', '-' or '.'"
        )
    return value


@dataclass(frozen=True)
class Offer:
    """A validated `POST /offer` body."""

    sdp: str
    role: str
    camera_id: str | None


def parse_offer(body: bytes) -> Offer:
    """Validate an offer body; raises InvalidRequest with a message a person can act on."""
    try:
        data = _load_json(body)
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
    _check_bundle(sdp)
    role = data.get("role", "camera")
    if role not in ROLES:
        raise InvalidRequest("'role' must be 'camera' or 'monitor'")
    camera_id = data.get("camera_id")
    if camera_id is not None:
        camera_id = validate_camera_id(camera_id)
    elif role == "monitor":
        raise InvalidRequest("a monitor must name the 'camera_id' it watches")
    return Offer(sdp=sdp, role=role, camera_id=camera_id)


_MEDIA_KINDS = ("audio", "video", "application")


def _check_bundle(sdp: str) -> None:
    """Refuse an offer whose `a=group:BUNDLE` names a mid no usable m= section has.

    aiortc moves every bundled section onto the transport of the first mid the group names;
    when no section has that mid it fails later with AttributeError (in createAnswer,
    close, or a background task), not with a clear refusal. The rest of the SDP is left
    to aiortc. Lines are split as aiortc splits them (`str.splitlines`)."""
    kinds: dict[str, str] = {}
    bundles: list[list[str]] = []
    kind: str | None = None  # None: still in the session part
    section_mid: str | None = None
    for line in sdp.splitlines():
        if line.startswith("m="):
            kind, section_mid = line[2:].split(" ", 1)[0], None
        elif line.startswith("a=mid:") and kind is not None:
            mid = line[len("a=mid:") :]
            if section_mid is not None or mid in kinds:
                raise InvalidRequest(f"invalid SDP offer: a=mid:{_excerpt(mid)} is not unique")
            kinds[mid] = section_mid = kind
        elif line.startswith("a=group:BUNDLE") and kind is None:
            bundles.append(line[len("a=group:") :].split()[1:])
    for mids in bundles:
        for mid in mids:
            if mid not in kinds:
                raise InvalidRequest(
                    f"invalid SDP offer: a=group:BUNDLE names mid {_excerpt(mid)}, "
                    "which no m= section has"
                )
        if mids and kinds[mids[0]] not in _MEDIA_KINDS:
            raise InvalidRequest(
                f"invalid SDP offer: the first BUNDLE mid {_excerpt(mids[0])} is a "
                f"{_excerpt(kinds[mids[0]])} section, not audio, video or application"
            )


@dataclass(frozen=True)
class ControlMessage:
    """A validated message a peer sent on the `komi` channel."""

    type: str
    fields: dict[str, Any]


CONTROL_TYPES = ("set_exercise", "ping")


def parse_control_message(raw: str | bytes) -> ControlMessage:
    """Validate a data-channel message from a peer; raises InvalidRequest."""
    if isinstance(raw, bytes):
        raise InvalidRequest("messages on the 'komi' channel must be JSON text, not binary")
    if len(raw) > MAX_CONTROL_MESSAGE_BYTES:
        raise InvalidRequest("message too large")
    try:
        data = _load_json(raw)
    except ValueError as exc:
        raise InvalidRequest(f"message is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise InvalidRequest("message must be a JSON object with a string 'type'")
    if data["type"] not in CONTROL_TYPES:
        raise InvalidRequest(f"unknown message type: {_excerpt(data['type'])}")
    return ControlMessage(type=data["type"], fields=data)


@dataclass(frozen=True)
class LegacyFrame:
    """A frame of the original KOMI `/ws/camera` protocol: JPEG bytes, not yet decoded."""

    jpeg: bytes


def parse_legacy_frame(raw: str) -> LegacyFrame:
    """Validate `{"type": "frame", "timestamp", "image_data"}`; raises InvalidRequest."""
    try:
        data = _load_json(raw)
    except ValueError as exc:
        raise InvalidRequest(f"message is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest("message must be a JSON object")
    if data.get("type") != "frame":
        raise InvalidRequest(f"unknown message type: {_excerpt(str(data.get('type')))}")
    image_data = data.get("image_data")
    if not isinstance(image_data, str) or not image_data:
        raise InvalidRequest("'image_data' must be a base64 JPEG string")
    if image_data.startswith("data:"):
        image_data = image_data.partition(",")[2]
    try:
        jpeg = base64.b64decode(image_data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("'image_data' is not valid base64") from None
    return LegacyFrame(jpeg=jpeg)

"""What peers send: every request body and channel message validated into a typed value.

Everything that crosses the network inward is validated here; the rest of the package
trusts its types. See docs/protocol.md for the contract as users read it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from .errors import InvalidRequest

DATA_CHANNEL_LABEL = "komi"
ROLES = ("camera", "monitor")
_CAMERA_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
MAX_CONTROL_MESSAGE_BYTES = 64 * 1024


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
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
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
    role = data.get("role", "camera")
    if role not in ROLES:
        raise InvalidRequest("'role' must be 'camera' or 'monitor'")
    camera_id = data.get("camera_id")
    if camera_id is not None:
        camera_id = validate_camera_id(camera_id)
    elif role == "monitor":
        raise InvalidRequest("a monitor must name the 'camera_id' it watches")
    return Offer(sdp=sdp, role=role, camera_id=camera_id)


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
        data = json.loads(raw)
    except ValueError:
        raise InvalidRequest("message is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise InvalidRequest("message must be a JSON object with a string 'type'")
    if data["type"] not in CONTROL_TYPES:
        raise InvalidRequest(f"unknown message type: {data['type'][:64]}")
    return ControlMessage(type=data["type"], fields=data)


@dataclass(frozen=True)
class LegacyFrame:
    """A frame of the original KOMI `/ws/camera` protocol: JPEG bytes, not yet decoded."""

    jpeg: bytes


def parse_legacy_frame(raw: str) -> LegacyFrame:
    """Validate `{"type": "frame", "timestamp", "image_data"}`; raises InvalidRequest."""
    try:
        data = json.loads(raw)
    except ValueError:
        raise InvalidRequest("message is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequest("message must be a JSON object")
    if data.get("type") != "frame":
        raise InvalidRequest(f"unknown message type: {str(data.get('type'))[:64]}")
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

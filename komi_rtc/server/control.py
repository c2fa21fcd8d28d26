"""Control messages peers send on the `komi` channel (or `/ws/camera`): validated, applied."""

from __future__ import annotations

import logging
import time
from typing import Any

from ..protocol import DATA_CHANNEL_LABEL, InvalidRequest, parse_control_message
from ..protocol.messages import ErrorMessage, Pong, WireMessage, encode
from .access import Forbidden, Grant
from .camera_session import CameraSession

logger = logging.getLogger(__name__)


def handle_control_message(
    session: CameraSession, raw: str | bytes, grant: Grant
) -> WireMessage | None:
    """Apply one message with the rights of the sender's token; return the reply for its
    sender, if any. Bad or forbidden input changes nothing."""
    try:
        message = parse_control_message(raw)
        if message.type == "ping":
            return Pong(message.fields.get("t"), time.time())
        if message.type == "set_exercise":
            station_id = message.fields.get("station")
            if station_id is not None:
                if not grant.may_watch_all():  # it would end the other cameras' sets
                    raise Forbidden(
                        f"a {grant.describe()} sets only its own camera's exercise, not "
                        "its station's (a monitor sets the station's)"
                    )
                station = session.station
                if station is None or station.id != station_id:
                    raise InvalidRequest(f"this camera is not in station {str(station_id)[:64]!r}")
                station.set_exercise(message.fields, "control message")
                return None
            session.set_exercise(message.fields, "control message")  # everyone learns it
            return None
        if message.type == "set_person":
            person = message.fields["person"]
            if not grant.may_tie(person):
                raise Forbidden(
                    f"a {grant.describe()} may not tie its camera to {person}: ask for a "
                    "camera link made for that person"
                )
            session.set_person(person, "control message")
            return None
    except (InvalidRequest, Forbidden) as exc:
        logger.warning("[%s] control message refused: %s", session.camera_id, exc)
        return ErrorMessage(str(exc))
    return None


def accept_one_channel(channel: Any, bound: list[Any], label: str) -> bool:
    """A peer gets one `komi` data channel (docs/protocol.md): another label, or a second
    `komi` (each would get its own copy of every result, and its own message budget), is
    told why and closed. `bound` holds the channel already accepted, if any."""
    if channel.label == DATA_CHANNEL_LABEL and not bound:
        return True
    why = (
        f"only one {DATA_CHANNEL_LABEL!r} data channel per connection"
        if channel.label == DATA_CHANNEL_LABEL
        else f"only the {DATA_CHANNEL_LABEL!r} data channel is served"
    )
    logger.warning("%s: data channel %r refused: %s", label, str(channel.label)[:64], why)
    try:
        if channel.readyState == "open":
            channel.send(encode(ErrorMessage(why)))
    finally:
        channel.close()
    return False

"""Control messages peers send on the `komi` channel (or `/ws/camera`): validated, applied."""

from __future__ import annotations

import logging
import time

from ..protocol import InvalidRequest, parse_control_message
from ..protocol.messages import ErrorMessage, Pong, WireMessage
from .camera_session import CameraSession

logger = logging.getLogger(__name__)


def handle_control_message(session: CameraSession, raw: str | bytes) -> WireMessage | None:
    """Apply one message; return the reply for its sender, if any. Bad input changes nothing."""
    try:
        message = parse_control_message(raw)
        if message.type == "ping":
            return Pong(message.fields.get("t"), time.time())
        if message.type == "set_exercise":
            station_id = message.fields.get("station")
            if station_id is not None:
                station = session.station
                if station is None or station.id != station_id:
                    raise InvalidRequest(f"this camera is not in station {str(station_id)[:64]!r}")
                station.set_exercise(message.fields, "control message")
                return None
            session.set_exercise(message.fields, "control message")  # everyone learns it
            return None
        if message.type == "set_person":
            session.set_person(message.fields["person"], "control message")
            return None
    except InvalidRequest as exc:
        logger.warning("[%s] bad control message: %s", session.camera_id, exc)
        return ErrorMessage(str(exc))
    return None

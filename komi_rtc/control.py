"""Control messages peers send on the `komi` channel (or `/ws/camera`): validated, applied."""

from __future__ import annotations

import json
import logging
import time

from .camera_session import CameraSession
from .protocol import InvalidRequest, error_message, parse_control_message

logger = logging.getLogger(__name__)


def handle_control_message(session: CameraSession, raw: str | bytes) -> str | None:
    """Apply one message; return the reply to send, if any. Bad input changes nothing."""
    try:
        message = parse_control_message(raw)
        if message.type == "ping":
            return json.dumps(
                {"type": "pong", "t": message.fields.get("t"), "server_time": time.time()}
            )
        if message.type == "set_exercise":
            reply = session.analysis.apply_set_exercise(message.fields)
            logger.info("[%s] exercise set to %s", session.camera_id, reply["exercise"])
            session.broadcast(reply)  # the camera and its monitors all learn it
            return None
    except InvalidRequest as exc:
        logger.warning("[%s] bad control message: %s", session.camera_id, exc)
        return error_message(str(exc))
    return None

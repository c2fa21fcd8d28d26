"""Errors a peer can cause: each maps to one HTTP status and a JSON `{"error": ...}` body
(in the server's middleware) or an `error` message on a channel."""

from __future__ import annotations


class KomiError(Exception):
    """Base of the errors that map to a clear answer to a peer (HTTP status + JSON)."""

    status = 400


class InvalidRequest(KomiError):
    """Malformed JSON, SDP, role, camera id or message."""


class UnknownCamera(KomiError):
    status = 404

    def __init__(self, camera_id: str) -> None:
        super().__init__(f"unknown camera: {camera_id}")
        self.camera_id = camera_id


class CameraLeft(UnknownCamera):
    """A monitor's camera closed before the monitor's offer was answered (404, as for a
    camera that was never there: it is gone either way)."""

    def __init__(self, camera_id: str) -> None:
        KomiError.__init__(self, f"camera {camera_id} left while the monitor was connecting")
        self.camera_id = camera_id


class NegotiationInterrupted(KomiError):
    """The server closed an offer's peer connection while answering it (shutting down, or
    a deadline): 503, the client may offer again."""

    status = 503


class DuplicateCamera(KomiError):
    status = 409

    def __init__(self, camera_id: str) -> None:
        super().__init__(f"camera id already streaming: {camera_id}")
        self.camera_id = camera_id


class UnsupportedMediaType(KomiError):
    """A body in a format the endpoint does not read (WHIP takes `application/sdp`)."""

    status = 415

"""The wire contract, the lowest layer: keypoints, errors, what peers send, what we send.

Every other part of the package may import from here; this package imports nothing of
KOMI's own.
"""

from .errors import (
    CameraLeft,
    DuplicateCamera,
    InvalidRequest,
    KomiError,
    NegotiationInterrupted,
    UnknownCamera,
)
from .keypoints import KEYPOINT_INDEX, KEYPOINT_NAMES
from .requests import (
    DATA_CHANNEL_LABEL,
    ControlMessage,
    LegacyFrame,
    Offer,
    load_json,
    parse_control_message,
    parse_legacy_frame,
    parse_offer,
    validate_camera_id,
    validate_person_id,
)

__all__ = [
    "DATA_CHANNEL_LABEL",
    "KEYPOINT_INDEX",
    "KEYPOINT_NAMES",
    "CameraLeft",
    "ControlMessage",
    "DuplicateCamera",
    "InvalidRequest",
    "KomiError",
    "LegacyFrame",
    "NegotiationInterrupted",
    "Offer",
    "UnknownCamera",
    "load_json",
    "parse_control_message",
    "parse_legacy_frame",
    "parse_offer",
    "validate_camera_id",
    "validate_person_id",
]

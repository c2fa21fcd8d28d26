"""What the server sends: every outgoing wire message as a typed value, with one encoder.

Each message is a frozen dataclass whose `to_wire()` gives the JSON object of the contract
(docs/protocol.md); `encode()` turns any of them into the text sent on a data channel or a
WebSocket. Optional fields are left out, not sent as null, so clients that test for a key
see what they always saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import orjson

Json = dict[str, Any]


class WireMessage(Protocol):
    def to_wire(self) -> Json: ...


def encode(message: WireMessage) -> str:
    """JSON text of a message; numpy scalars and arrays are allowed inside payloads."""
    return orjson.dumps(message.to_wire(), option=orjson.OPT_SERIALIZE_NUMPY).decode()


@dataclass(frozen=True)
class FrameTiming:
    """How long a frame took: `receive` in unix seconds, durations in milliseconds."""

    receive: float
    inference_ms: float
    server_ms: float
    received_fps: float
    analysed_fps: float
    overloaded: bool

    def to_wire(self) -> Json:
        return {
            "receive": self.receive,
            "inference_ms": round(self.inference_ms, 2),
            "server_ms": round(self.server_ms, 2),
            "received_fps": round(self.received_fps, 1),
            "analysed_fps": round(self.analysed_fps, 1),
            "overloaded": self.overloaded,
        }


@dataclass(frozen=True)
class PoseTracking:
    """How a frame's keypoints were found: `source` "model" (BlazePose ran on this frame) or
    "flow" (optical flow carried them from the last model frame, `frames_since_model` ago);
    `person`: which person the camera follows, a number that changes only when it follows
    someone else (None: a model that does not tell people apart)."""

    source: str
    frames_since_model: int
    person: int | None = None

    def to_wire(self) -> Json:
        wire: Json = {"source": self.source, "frames_since_model": self.frames_since_model}
        if self.person is not None:
            wire["person"] = self.person
        return wire


@dataclass(frozen=True)
class FrameProcessed:
    """One analysed frame. `poses`: each person's `{"keypoints": [...]}` as on the wire;
    `client_id`: set for cameras of the original KOMI protocol, whose clients read it."""

    camera_id: str
    frame_pts: int
    timestamp: float
    width: int
    height: int
    poses: list[Json]
    timing: FrameTiming | None = None
    analysis: Json | None = None
    client_id: str | None = None
    tracking: PoseTracking | None = None

    @cached_property
    def pose_data(self) -> Json:
        """Built once per frame: the channel message, `/latest_image` and `status_update`
        all carry this same object."""
        return {"pose": self.poses, "timestamp": self.timestamp}

    def to_wire(self) -> Json:
        wire: Json = {"type": "frame_processed", "camera_id": self.camera_id}
        if self.client_id is not None:
            wire["client_id"] = self.client_id
        wire.update(
            frame_pts=self.frame_pts,
            timestamp=self.timestamp,
            width=self.width,
            height=self.height,
            pose_data=self.pose_data,
        )
        if self.timing is not None:
            wire["timing"] = self.timing.to_wire()
        if self.tracking is not None:
            wire["tracking"] = self.tracking.to_wire()
        if self.analysis is not None:
            wire["analysis"] = self.analysis
        return wire


@dataclass(frozen=True)
class RepCompleted:
    """Sent once per repetition; `rep` holds its score, range of motion, tempo and errors."""

    camera_id: str
    exercise: str
    rep: Json
    station_id: str | None = None  # a station's rep: counted once for all its cameras

    def to_wire(self) -> Json:
        wire: Json = {
            "type": "rep_completed",
            "exercise": self.exercise,
            "rep": self.rep,
            "camera_id": self.camera_id,
        }
        if self.station_id is not None:
            wire["station_id"] = self.station_id
        return wire


@dataclass(frozen=True)
class StationExerciseSet:
    """A station's exercise changed: it is now counted once for all its cameras."""

    station_id: str
    exercise: str | None
    profile: str | None
    cameras: list[str]

    def to_wire(self) -> Json:
        return {
            "type": "station_exercise_set",
            "station_id": self.station_id,
            "exercise": self.exercise,
            "profile": self.profile,
            "cameras": self.cameras,
        }


@dataclass(frozen=True)
class StationProcessed:
    """One group of a station's frames, paired by capture time and analysed as one."""

    station_id: str
    timestamp: float
    frames: dict[str, int]  # camera_id -> frame_pts
    sync_error_ms: float
    analysis: Json | None
    pose3d: list[Json] | None = None
    captured: dict[str, float] | None = None  # camera_id -> capture time, server clock
    mirrored: list[str] | None = None  # views whose left/right labels the 3-D pose swapped

    def to_wire(self) -> Json:
        wire: Json = {
            "type": "station_processed",
            "station_id": self.station_id,
            "timestamp": self.timestamp,
            "frames": self.frames,
            "sync_error_ms": self.sync_error_ms,
            "analysis": self.analysis,
        }
        if self.pose3d is not None:
            wire["pose3d"] = self.pose3d
        if self.captured is not None:
            wire["captured"] = self.captured
        if self.mirrored:
            wire["mirrored"] = self.mirrored
        return wire


@dataclass(frozen=True)
class ExerciseSet:
    """The camera's exercise changed (from its page, a monitor or REST): everyone learns it."""

    camera_id: str
    exercise: str | None
    profile: str | None

    def to_wire(self) -> Json:
        return {
            "type": "exercise_set",
            "camera_id": self.camera_id,
            "exercise": self.exercise,
            "profile": self.profile,
        }


@dataclass(frozen=True)
class PersonSet:
    """The camera is now tied to `person` (None: to nobody): everyone learns it."""

    camera_id: str
    person: str | None

    def to_wire(self) -> Json:
        return {"type": "person_set", "camera_id": self.camera_id, "person": self.person}


@dataclass(frozen=True)
class PersonBest:
    """The tied person's best earlier set of the camera's exercise (None: no earlier set),
    for the camera page to show beside the live count."""

    camera_id: str
    person: str
    exercise: str
    best: Json | None

    def to_wire(self) -> Json:
        return {
            "type": "person_best",
            "camera_id": self.camera_id,
            "person": self.person,
            "exercise": self.exercise,
            "best": self.best,
        }


@dataclass(frozen=True)
class StatusUpdate:
    """`/ws/monitor`'s per-frame summary of a camera (the original KOMI monitor message)."""

    camera_id: str
    timestamp: float
    pose_data: Json
    analysis: Json | None = None

    def to_wire(self) -> Json:
        wire: Json = {
            "type": "status_update",
            "camera_id": self.camera_id,
            "timestamp": self.timestamp,
            "has_new_image": True,
            "pose_data": self.pose_data,
        }
        if self.analysis is not None:
            wire["analysis"] = self.analysis
        return wire


@dataclass(frozen=True)
class CamerasList:
    cameras: list[str]

    def to_wire(self) -> Json:
        return {"type": "cameras_list", "cameras": self.cameras}


@dataclass(frozen=True)
class VideoTiming:
    """How a monitor's RTP timestamps relate to `frame_pts` (rtp = pts + offset, mod 2^32)."""

    camera_id: str
    rtp_timestamp_offset: int
    clock_rate: int

    def to_wire(self) -> Json:
        return {
            "type": "video_timing",
            "camera_id": self.camera_id,
            "rtp_timestamp_offset": self.rtp_timestamp_offset,
            "clock_rate": self.clock_rate,
        }


@dataclass(frozen=True)
class CameraDisconnected:
    camera_id: str

    def to_wire(self) -> Json:
        return {"type": "camera_disconnected", "camera_id": self.camera_id}


@dataclass(frozen=True)
class Pong:
    """Answer to `ping`: `t` echoed as sent, `server_time` in unix seconds."""

    t: Any
    server_time: float

    def to_wire(self) -> Json:
        return {"type": "pong", "t": self.t, "server_time": self.server_time}


@dataclass(frozen=True)
class ConnectionSuccessful:
    """First message on `/ws/camera`, as the original KOMI service sent it."""

    camera_id: str

    def to_wire(self) -> Json:
        return {
            "type": "connection_successful",
            "camera_id": self.camera_id,
            "client_id": self.camera_id,
            "message": f"Connected as {self.camera_id}; send frames",
        }


@dataclass(frozen=True)
class ErrorMessage:
    """A channel's answer to bad input; the same text goes in an HTTP error body."""

    error: str

    def to_wire(self) -> Json:
        return {"type": "error", "error": self.error}


@dataclass(frozen=True)
class OfferAnswer:
    """`POST /offer`'s 200 body."""

    sdp: str
    type: str
    camera_id: str
    nodes: list[str] | None = None  # a cluster's live nodes, for a camera whose node dies

    def to_wire(self) -> Json:
        wire: Json = {"sdp": self.sdp, "type": self.type, "camera_id": self.camera_id}
        if self.nodes is not None:
            wire["nodes"] = self.nodes
        return wire


@dataclass(frozen=True)
class ErrorBody:
    """Every HTTP error body: `{"error": "<what is wrong>"}`."""

    error: str

    def to_wire(self) -> Json:
        return {"error": self.error}

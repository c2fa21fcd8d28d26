"""What the nodes of a cluster tell each other: each node's record (its heartbeat) and the
pub/sub events, as typed values with one JSON shape each.

A node seals what it writes into Redis (`server/cluster/signing.py` adds `at` and `mac`);
here are only the shapes: `to_wire()` gives the JSON object that is sealed, `from_wire()`
reads one back and raises ValueError when a field is missing or of the wrong type (whoever
can write to Redis can write anything; a sealed value comes from a node, but its version may
differ). Fields this version does not know are ignored, so nodes of two versions read each
other's records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from .messages import StatusUpdate

Json = dict[str, Any]


def _text(data: Json, key: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string")
    return value


def _number(data: Json, key: str, default: float = 0.0) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key!r} must be a number")
    return float(value)


def _flag(data: Json, key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{key!r} must be true or false")
    return value


def _texts(data: Json, key: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{key!r} must be a list of strings")
    return tuple(value)


@dataclass(frozen=True)
class NodeInfo:
    """A node as its heartbeat describes it. Rates in frames a second: `capacity_fps`, what
    its pose workers analyse; `demand_fps`, what its cameras send (capped by the analysis
    rate). `stations`: each of its stations' summary (`GET /stations`, with `id` and
    `cameras`)."""

    id: str
    url: str
    capacity_fps: float = 0.0
    demand_fps: float = 0.0
    cameras: tuple[str, ...] = ()
    stations: tuple[Json, ...] = ()
    draining: bool = False
    workers: int = 0
    measured: bool = False  # capacity from inference timed here (else a default guess)
    full: bool = False  # at its --max-cameras
    recorded_cameras: int = 0  # cameras its demand counts (pub/sub may have told of more)

    @property
    def spare_fps(self) -> float:
        return self.capacity_fps - self.demand_fps

    def to_wire(self) -> Json:
        return {
            "id": self.id,
            "url": self.url,
            "capacity_fps": round(self.capacity_fps, 1),
            "demand_fps": round(self.demand_fps, 1),
            "spare_fps": round(self.spare_fps, 1),
            "cameras": list(self.cameras),
            "stations": list(self.stations),
            "draining": self.draining,
            "workers": self.workers,
            "measured": self.measured,
            "full": self.full,
        }

    @classmethod
    def from_wire(cls, data: Json) -> NodeInfo:
        cameras = _texts(data, "cameras")
        stations = data.get("stations", [])
        if not isinstance(stations, list) or not all(
            isinstance(s, dict) and isinstance(s.get("id"), str) for s in stations
        ):
            raise ValueError("'stations' must be a list of objects with an 'id'")
        workers = data.get("workers", 0)
        if isinstance(workers, bool) or not isinstance(workers, int):
            raise ValueError("'workers' must be an integer")
        return cls(
            id=_text(data, "id"),
            url=_text(data, "url"),
            capacity_fps=_number(data, "capacity_fps"),
            demand_fps=_number(data, "demand_fps"),
            cameras=cameras,
            stations=tuple(stations),
            draining=_flag(data, "draining"),
            workers=workers,
            measured=_flag(data, "measured"),
            full=_flag(data, "full"),
            recorded_cameras=len(cameras),
        )


# ------------------------------------------------------------ pub/sub events
# Each carries `node`, the node that published it (its seal covers it).


@dataclass(frozen=True)
class CamerasChanged:
    """A node's cameras, at once when they change (its record shows them a beat later)."""

    type: ClassVar[str] = "cameras"
    node: str
    url: str
    cameras: tuple[str, ...]

    def to_wire(self) -> Json:
        return {
            "type": self.type,
            "node": self.node,
            "url": self.url,
            "cameras": list(self.cameras),
        }

    @classmethod
    def from_wire(cls, data: Json) -> CamerasChanged:
        return cls(_text(data, "node"), _text(data, "url", ""), _texts(data, "cameras"))


@dataclass(frozen=True)
class CameraEvent:
    """A rep or an exercise change of a camera on `node`: `text` is the `/ws/monitor`
    message as that node sent it to its own watchers (other nodes pass it on as it is)."""

    type: ClassVar[str] = "event"
    node: str
    camera_id: str
    text: str

    def to_wire(self) -> Json:
        return {
            "type": self.type,
            "node": self.node,
            "camera_id": self.camera_id,
            "text": self.text,
        }

    @classmethod
    def from_wire(cls, data: Json) -> CameraEvent:
        return cls(_text(data, "node"), _text(data, "camera_id", ""), _text(data, "text", ""))


@dataclass(frozen=True)
class NodeLeft:
    """A node stopped on purpose (its record and claims are gone already)."""

    type: ClassVar[str] = "leave"
    node: str

    def to_wire(self) -> Json:
        return {"type": self.type, "node": self.node}

    @classmethod
    def from_wire(cls, data: Json) -> NodeLeft:
        return cls(_text(data, "node"))


@dataclass(frozen=True)
class NodeDraining:
    """A node takes no more cameras (SIGTERM): it is moving its own off."""

    type: ClassVar[str] = "node"
    node: str
    draining: bool

    def to_wire(self) -> Json:
        return {"type": self.type, "node": self.node, "draining": self.draining}

    @classmethod
    def from_wire(cls, data: Json) -> NodeDraining:
        return cls(_text(data, "node"), _flag(data, "draining"))


@dataclass(frozen=True)
class TokenRevoked:
    """Every node refuses this token from now on; `expires_at` in unix seconds (after
    that, the token is refused anyway)."""

    type: ClassVar[str] = "revoked"
    node: str
    token_id: str
    expires_at: float

    def to_wire(self) -> Json:
        return {
            "type": self.type,
            "node": self.node,
            "token_id": self.token_id,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_wire(cls, data: Json) -> TokenRevoked:
        return cls(_text(data, "node"), _text(data, "token_id"), _number(data, "expires_at"))


ClusterEvent = CamerasChanged | CameraEvent | NodeLeft | NodeDraining | TokenRevoked

_EVENTS: dict[str, Callable[[Json], ClusterEvent]] = {
    CamerasChanged.type: CamerasChanged.from_wire,
    CameraEvent.type: CameraEvent.from_wire,
    NodeLeft.type: NodeLeft.from_wire,
    NodeDraining.type: NodeDraining.from_wire,
    TokenRevoked.type: TokenRevoked.from_wire,
}


def event_from_wire(data: Json) -> ClusterEvent | None:
    """The event a (sealed) JSON object is; None for a type this version does not know (a
    newer node's: ignored); ValueError when a known type lacks a field."""
    decode = _EVENTS.get(_text(data, "type"))
    return None if decode is None else decode(data)


def relayed_status_update(text: str) -> StatusUpdate | None:
    """What another node's `/ws/monitor?scope=node` socket sent, if it is a status update
    (a status relay passes on only those: the camera lists and events travel through Redis);
    None for any other message, and for one that is not a well-formed status update."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("type") != "status_update":
        return None
    camera_id, timestamp = data.get("camera_id"), data.get("timestamp")
    pose_data, analysis = data.get("pose_data"), data.get("analysis")
    if (
        not isinstance(camera_id, str)
        or isinstance(timestamp, bool)
        or not isinstance(timestamp, (int, float))
        or not isinstance(pose_data, dict)
        or not isinstance(analysis, (dict, type(None)))
    ):
        return None
    return StatusUpdate(camera_id, timestamp, pose_data, analysis)

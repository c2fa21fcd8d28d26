"""The REST API's JSON, both directions: every answer the HTTP endpoints give as a typed
value with `to_wire()`, and the request bodies they take, validated into typed values
(docs/protocol.md, "HTTP and WebSocket endpoints", "People and history", "Stations").
Answers built by other parts (a set, a station's summary, a node's record) travel as the
JSON objects those parts define and are passed through as they are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import InvalidRequest
from .requests import validate_camera_id, validate_person_id

Json = dict[str, Any]

SERVICE = "komi-rtc"


@dataclass(frozen=True)
class Health:
    """`GET /healthz`."""

    def to_wire(self) -> Json:
        return {"status": "ok"}


@dataclass(frozen=True)
class ServiceStatus:
    """`GET /` asked for JSON: no data, only what answers and whether it wants a token."""

    version: str
    access: str  # "token" or "open"

    def to_wire(self) -> Json:
        return {"status": "ok", "service": SERVICE, "version": self.version, "access": self.access}


ICE_URL_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")


@dataclass(frozen=True)
class IceServer:
    """One entry of `ice_servers`, shaped as the browser's `RTCIceServer`: a STUN or TURN
    server's `urls`, and for TURN the short-lived `username` and `credential` the server
    minted for this page or peer (server/turn_credentials.py); both left out for STUN."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None

    def to_wire(self) -> Json:
        wire: Json = {"urls": self.urls[0] if len(self.urls) == 1 else list(self.urls)}
        if self.username is not None:
            wire["username"] = self.username
        if self.credential is not None:
            wire["credential"] = self.credential
        return wire

    @classmethod
    def from_wire(cls, data: object) -> IceServer:
        """An entry as a peer reads it; InvalidRequest when it is not one."""
        if not isinstance(data, dict):
            raise InvalidRequest("an ICE server is an object")
        urls = data.get("urls")
        listed = [urls] if isinstance(urls, str) else urls
        if not isinstance(listed, list) or not listed:
            raise InvalidRequest("an ICE server's urls is a URL or a list of them")
        if not all(isinstance(u, str) and u.startswith(ICE_URL_SCHEMES) for u in listed):
            raise InvalidRequest(f"an ICE server's urls start with one of {ICE_URL_SCHEMES}")
        username, credential = data.get("username"), data.get("credential")
        for name, value in (("username", username), ("credential", credential)):
            if value is not None and not isinstance(value, str):
                raise InvalidRequest(f"an ICE server's {name} is a string")
        return cls(tuple(listed), username, credential)


@dataclass(frozen=True)
class ClientConfig:
    """`GET /config.json`: what the pages and camera peers need before they connect."""

    ice_servers: tuple[IceServer, ...]
    data_channel: str

    def to_wire(self) -> Json:
        return {
            "ice_servers": [server.to_wire() for server in self.ice_servers],
            "data_channel": self.data_channel,
        }

    @classmethod
    def from_wire(cls, data: object) -> ClientConfig:
        """The answer as a camera peer reads it; InvalidRequest for another shape."""
        if not isinstance(data, dict):
            raise InvalidRequest("/config.json answers an object")
        servers = data.get("ice_servers", [])
        if not isinstance(servers, list):
            raise InvalidRequest("/config.json's ice_servers is a list")
        channel = data.get("data_channel", "komi")
        if not isinstance(channel, str):
            raise InvalidRequest("/config.json's data_channel is a string")
        return cls(tuple(IceServer.from_wire(s) for s in servers), channel)


@dataclass(frozen=True)
class ExerciseListing:
    """`GET /exercises`: the catalog's entries and the profiles."""

    exercises: list[Json]
    profiles: list[str]

    def to_wire(self) -> Json:
        return {"exercises": self.exercises, "profiles": self.profiles}


@dataclass(frozen=True)
class CameraListing:
    """`GET /cameras`."""

    cameras: list[str]

    def to_wire(self) -> Json:
        return {"cameras": self.cameras}


@dataclass(frozen=True)
class CameraStats:
    """One camera's counters in `GET /stats`: frames, rates in frames a second."""

    kind: str
    exercise: str | None
    frames_received: int
    frames_analysed: int
    frames_skipped: int
    analysis_failures: int
    received_fps: float
    analysed_fps: float
    overloaded: bool
    monitors: int

    def to_wire(self) -> Json:
        return {
            "kind": self.kind,
            "exercise": self.exercise,
            "frames_received": self.frames_received,
            "frames_analysed": self.frames_analysed,
            "frames_skipped": self.frames_skipped,
            "analysis_failures": self.analysis_failures,
            "received_fps": round(self.received_fps, 1),
            "analysed_fps": round(self.analysed_fps, 1),
            "overloaded": self.overloaded,
            "monitors": self.monitors,
        }


@dataclass(frozen=True)
class ServerStats:
    """`GET /stats`."""

    cameras: dict[str, CameraStats]
    workers: int

    def to_wire(self) -> Json:
        return {
            "cameras": {camera_id: s.to_wire() for camera_id, s in self.cameras.items()},
            "workers": self.workers,
        }


@dataclass(frozen=True)
class ClusterNodes:
    """`GET /cluster`: this node and every node's record (cluster/ defines a record)."""

    node: str | None
    nodes: list[Json]

    def to_wire(self) -> Json:
        return {"node": self.node, "nodes": self.nodes}


@dataclass(frozen=True)
class CameraReleased:
    """`POST /cluster/cameras/{id}/release`: the camera was let go to move."""

    camera_id: str

    def to_wire(self) -> Json:
        return {"camera_id": self.camera_id, "released": True}


@dataclass(frozen=True)
class StationListing:
    """`GET /stations`: each station's summary (stations.py)."""

    stations: list[Json]

    def to_wire(self) -> Json:
        return {"stations": self.stations}


@dataclass(frozen=True)
class StationJoinLink:
    """`GET /stations/{id}/join`: a camera link for the station and its QR code (SVG)."""

    station_id: str
    url: str
    qr_svg: str
    expires_at: int | None
    token_id: str | None

    def to_wire(self) -> Json:
        return {
            "station_id": self.station_id,
            "url": self.url,
            "qr_svg": self.qr_svg,
            "expires_at": self.expires_at,
            "token_id": self.token_id,
        }


@dataclass(frozen=True)
class PeopleListing:
    """`GET /people`: `{"id", "name", "sets", "last_seen"}` per person (history/store.py)."""

    people: list[Json]

    def to_wire(self) -> Json:
        return {"people": self.people}


@dataclass(frozen=True)
class PersonSets:
    """`GET /people/{person}/sets`, newest first (a set's JSON: history/store.py)."""

    person: str
    sets: list[Json]

    def to_wire(self) -> Json:
        return {"person": self.person, "sets": self.sets}


@dataclass(frozen=True)
class PersonProgress:
    """`GET /people/{person}/progress`: per exercise, one point per set, oldest first."""

    person: str
    exercises: dict[str, list[Json]]

    def to_wire(self) -> Json:
        return {"person": self.person, "exercises": self.exercises}


# ---------------------------------------------------------------- request bodies


@dataclass(frozen=True)
class PersonRequest:
    """`POST /cameras/{id}/person` {"person": id or null (untie)}."""

    person: str | None


def parse_person_request(body: Json) -> PersonRequest:
    if "person" not in body:
        raise InvalidRequest("'person' is required (an id, or null to untie)")
    person = body["person"]
    return PersonRequest(None if person is None else validate_person_id(person))


@dataclass(frozen=True)
class StationCameras:
    """`POST /stations/{id}` {"cameras": [...]}: 1 to `limit` distinct camera ids."""

    cameras: list[str]


def parse_station_cameras(body: Json, limit: int) -> StationCameras:
    cameras = body.get("cameras")
    if not isinstance(cameras, list):
        raise InvalidRequest("'cameras' must be a list of camera ids")
    if not 1 <= len(cameras) <= limit:
        raise InvalidRequest(f"'cameras' must list 1 to {limit} distinct camera ids")
    ids = [validate_camera_id(c) for c in cameras]
    if len(set(ids)) != len(ids):
        raise InvalidRequest(f"'cameras' must list 1 to {limit} distinct camera ids")
    return StationCameras(ids)


def require_exercise_field(body: Json) -> Json:
    """A station's exercise body must say the exercise (null stops it); the station checks
    the id against its catalog."""
    if "exercise" not in body:
        raise InvalidRequest("'exercise' is required (an id, or null to stop)")
    return body

"""Tokens on the wire: what `POST /tokens` takes and answers, and what `GET /tokens` and
`GET /whoami` answer (docs/protocol.md, "Access control")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import InvalidRequest
from .requests import load_json, validate_camera_id, validate_person_id

Json = dict[str, Any]


@dataclass(frozen=True)
class MintRequest:
    """`POST /tokens` {"role", "camera_id"?, "person"?, "station"?, "ttl_s"?}."""

    role: str
    camera_id: str | None = None
    person: str | None = None
    station: str | None = None
    ttl_s: float | None = None  # None: the server's default


def parse_mint_request(body: bytes) -> MintRequest:
    """Validate a mint request; InvalidRequest (400) says which field is wrong."""
    try:
        data = load_json(body)
    except ValueError as exc:
        raise InvalidRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest("body must be a JSON object")
    role = data.get("role")
    if role not in ("camera", "monitor", "person"):
        raise InvalidRequest('role must be "camera", "monitor" or "person"')
    ttl = data.get("ttl_s")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float))):
        raise InvalidRequest("ttl_s must be a number of seconds")
    camera_id = data.get("camera_id")
    person = data.get("person")
    station = data.get("station")
    if camera_id is not None:
        if role != "camera":
            raise InvalidRequest("only a camera token is bound to a camera_id")
        camera_id = validate_camera_id(camera_id)
    if person is not None:
        person = validate_person_id(person)
    if role == "person" and person is None:
        raise InvalidRequest("a person token names its person: 'person' is required")
    if role == "monitor" and person is not None:
        raise InvalidRequest("a monitor token reads everyone's history; it names no person")
    if station is not None:
        if role != "camera":
            raise InvalidRequest("only a camera token names a 'station' to join")
        try:
            station = validate_camera_id(station)
        except InvalidRequest:
            raise InvalidRequest(
                "'station' must be 1 to 64 characters of letters, digits, '_', '-' or '.'"
            ) from None
    return MintRequest(role, camera_id, person, station, None if ttl is None else float(ttl))


@dataclass(frozen=True)
class TokenRecord:
    """One minted token as `GET /tokens` lists it: everything but the token itself."""

    id: str
    role: str
    expires_at: int
    camera_id: str | None = None
    person: str | None = None
    station: str | None = None
    parent: str | None = None  # the token_id that minted it; None: the admin token
    minted_at: int = 0
    revoked: bool = False

    def to_wire(self) -> Json:
        return {
            "id": self.id,
            "role": self.role,
            "camera_id": self.camera_id,
            "person": self.person,
            "station": self.station,
            "parent": self.parent,
            "expires_at": self.expires_at,
            "minted_at": self.minted_at,
            "revoked": self.revoked,
        }

    @classmethod
    def from_wire(cls, data: Json) -> TokenRecord:
        return cls(
            id=str(data["id"]),
            role=str(data["role"]),
            expires_at=int(data["expires_at"]),
            camera_id=data.get("camera_id"),
            person=data.get("person"),
            station=data.get("station"),
            parent=data.get("parent"),
            minted_at=int(data.get("minted_at", 0)),
            revoked=bool(data.get("revoked", False)),
        )


@dataclass(frozen=True)
class TokenMinted:
    """`POST /tokens`' answer: the token, shown this once."""

    token: str
    expires_at: int
    token_id: str

    def to_wire(self) -> Json:
        return {"token": self.token, "expires_at": self.expires_at, "token_id": self.token_id}


@dataclass(frozen=True)
class TokenRevoked:
    """`DELETE /tokens/{id}`: what was revoked and how many connections were closed."""

    revoked: str
    closed_connections: int
    revoked_children: list[str]

    def to_wire(self) -> Json:
        return {
            "revoked": self.revoked,
            "closed_connections": self.closed_connections,
            "revoked_children": self.revoked_children,
        }


@dataclass(frozen=True)
class TokenListing:
    tokens: list[TokenRecord]

    def to_wire(self) -> Json:
        return {"tokens": [t.to_wire() for t in self.tokens]}


@dataclass(frozen=True)
class WhoAmI:
    """`GET /whoami`: what the presented token may do, so a page can say it (and the
    history page can open the one person a person token reads)."""

    role: str
    camera_id: str | None
    person: str | None
    station: str | None
    expires_at: float | None

    def to_wire(self) -> Json:
        return {
            "role": self.role,
            "camera_id": self.camera_id,
            "person": self.person,
            "station": self.station,
            "expires_at": self.expires_at,
        }

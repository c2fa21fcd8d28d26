"""Who may do what: signed, expiring, revocable tokens and the checks every endpoint makes.

Tokens are JWTs (PyJWT, HS256) signed with a key derived from the admin token, so every
node that shares the admin token accepts the same tokens and rotating the admin token
revokes them all. The admin token itself is an opaque secret, compared in constant time.
A token is checked once per request or connection, never per frame.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import jwt
from aiohttp import web

from ..protocol import InvalidRequest, KomiError, validate_camera_id
from ..protocol.tokens import TokenMinted, TokenRecord

logger = logging.getLogger(__name__)

ROLES = ("camera", "monitor", "person", "admin")
MINTABLE_ROLES = ("camera", "monitor", "person")
# a monitor may hand out links for one camera or one person; only the admin makes monitors
MONITOR_MINTABLE_ROLES = ("camera", "person")
DEFAULT_TTL_S = 24 * 3600
MAX_TTL_S = 365 * 24 * 3600
_ISSUER = "komi-rtc"
_ALGORITHM = "HS256"
ADMIN_TOKEN_FILE = "admin_token"
REVOKED_FILE = "revoked_tokens.json"
MINTED_FILE = "minted_tokens.json"
MAX_LISTED_TOKENS = 10_000  # minted tokens kept for GET /tokens; the oldest expired go first


class Unauthorized(KomiError):
    status = 401


class Forbidden(KomiError):
    status = 403


@dataclass(frozen=True)
class Grant:
    """What one presented token allows (docs/protocol.md, "Access control")."""

    role: str
    camera_id: str | None = None  # a camera token bound to one camera; None: any id
    token_id: str | None = None  # None for the admin token and for --open
    expires_at: float | None = None
    person: str | None = None  # camera: the person it may tie its camera to; person: whose
    station: str | None = None  # camera: the station it may join (a join link's token)
    parent: str | None = None  # the token that minted this one (revoked with it)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def may_watch_all(self) -> bool:
        """List cameras, watch any of them, set their exercise, read history."""
        return self.role in ("admin", "monitor")

    def may_stream_as(self, camera_id: str | None) -> bool:
        if self.role == "admin" or (self.role == "camera" and self.camera_id is None):
            return True
        return self.role == "camera" and camera_id == self.camera_id

    def may_see(self, camera_id: str) -> bool:
        """One camera's results and images: watchers, or that camera's own bound token."""
        return self.may_watch_all() or (self.role == "camera" and camera_id == self.camera_id)

    def may_tie(self, person: str | None) -> bool:
        """Tie a camera to `person` (None unties): watchers any; a camera token only to the
        person it names, so nobody writes into, or reads the best set of, a stranger."""
        if self.may_watch_all() or person is None:
            return True
        return self.role == "camera" and self.person == person

    def may_read_history(self, person: str) -> bool:
        """Watchers read everyone's; a person token its own person's; a camera token none."""
        return self.may_watch_all() or (self.role == "person" and self.person == person)

    def may_join_station(self, station_id: str) -> bool:
        """Join by naming the station in an offer: the admin, or a token minted for it (a
        monitor adding the camera's id by REST is the other way in, checked by stations)."""
        return self.is_admin or (self.role == "camera" and self.station == station_id)

    def may_mint(self, role: str) -> bool:
        if self.is_admin:
            return role in MINTABLE_ROLES
        return self.role == "monitor" and role in MONITOR_MINTABLE_ROLES

    def describe(self) -> str:
        bound = f" bound to {self.camera_id}" if self.camera_id else ""
        if self.role == "person" and self.person:
            bound = f" of {self.person}"
        return f"{self.role} token{bound}"


OPEN_GRANT = Grant("admin")


def load_admin_token(explicit: str | None, token_file: Path | None, state_dir: Path) -> str:
    """KOMI_ADMIN_TOKEN (passed in as `explicit`), else the file, else the one kept in the
    state dir, made on first start (0600)."""
    if explicit:
        return explicit.strip()
    if token_file is not None:
        token = token_file.read_text().strip()
        if not token:
            raise ValueError(f"{token_file} is empty")
        return token
    path = state_dir / ADMIN_TOKEN_FILE
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    state_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(32)  # hex never starts with "-", read as an option by a shell
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    logger.info("generated an admin token in %s", path)
    return token


class TokenAuthority:
    """Mints and checks tokens; keeps the revocation list and the minted tokens' records (in
    memory and in the state dir), so `GET /tokens` lists them and a revoked token's children
    are refused with it."""

    def __init__(
        self,
        admin_token: str,
        revoked_file: Path | None = None,
        minted_file: Path | None = None,
    ) -> None:
        if len(admin_token) < 16:
            raise ValueError("the admin token must be at least 16 characters")
        self._admin = admin_token.encode()
        self._key = hmac.new(self._admin, b"komi-rtc token signing v1", hashlib.sha256).digest()
        self._revoked_file = revoked_file
        self._revoked: dict[str, float] = self._load_revoked()
        self._minted_file = minted_file
        self._minted: dict[str, TokenRecord] = self._load_minted()

    def _load_revoked(self) -> dict[str, float]:
        if self._revoked_file is None or not self._revoked_file.is_file():
            return {}
        try:
            data = json.loads(self._revoked_file.read_text())
            now = time.time()
            return {str(k): float(v) for k, v in data.items() if float(v) > now}
        except (ValueError, AttributeError, TypeError):
            logger.warning("ignoring unreadable revocation list %s", self._revoked_file)
            return {}

    def _load_minted(self) -> dict[str, TokenRecord]:
        if self._minted_file is None or not self._minted_file.is_file():
            return {}
        try:
            now = time.time()
            records = [TokenRecord.from_wire(r) for r in json.loads(self._minted_file.read_text())]
            return {r.id: r for r in records if r.expires_at > now}
        except (ValueError, AttributeError, TypeError, KeyError):
            logger.warning("ignoring unreadable token list %s", self._minted_file)
            return {}

    def _save_minted(self) -> None:
        if self._minted_file is None:
            return
        _write_atomically(self._minted_file, [r.to_wire() for r in self._minted.values()])

    @property
    def admin_token(self) -> str:
        return self._admin.decode()

    def mint(
        self,
        role: str,
        camera_id: str | None = None,
        ttl_s: float = DEFAULT_TTL_S,
        *,
        person: str | None = None,
        station: str | None = None,
        parent: Grant | None = None,
    ) -> dict:
        """A new token: `{"token", "expires_at", "token_id"}`. A token minted by another
        (`parent`, not the admin token) never outlives it and is revoked with it."""
        if role not in MINTABLE_ROLES:
            raise InvalidRequest(f"role must be one of {', '.join(MINTABLE_ROLES)}")
        if camera_id is not None:
            if role != "camera":
                raise InvalidRequest("only a camera token is bound to a camera_id")
            camera_id = validate_camera_id(camera_id)
        if role == "person" and person is None:
            raise InvalidRequest("a person token names its person")
        if not (0 < ttl_s <= MAX_TTL_S):
            raise InvalidRequest(f"ttl_s must be between 1 and {MAX_TTL_S}")
        now = time.time()
        expires_at = int(now + ttl_s)
        parent_id = parent.token_id if parent is not None else None
        if parent is not None and parent.expires_at is not None:
            expires_at = min(expires_at, int(parent.expires_at))
        token_id = uuid.uuid4().hex
        claims: dict = {
            "iss": _ISSUER,
            "role": role,
            "jti": token_id,
            "iat": int(now),
            "exp": expires_at,
        }
        for name, value in (
            ("camera_id", camera_id),
            ("person", person),
            ("station", station),
            ("par", parent_id),
        ):
            if value is not None:
                claims[name] = value
        token = jwt.encode(claims, self._key, algorithm=_ALGORITHM)
        self._remember(
            TokenRecord(token_id, role, expires_at, camera_id, person, station, parent_id, int(now))
        )
        return TokenMinted(token, expires_at, token_id).to_wire()

    def _remember(self, record: TokenRecord) -> None:
        now = time.time()
        if len(self._minted) >= MAX_LISTED_TOKENS:
            self._minted = {k: r for k, r in self._minted.items() if r.expires_at > now}
            while len(self._minted) >= MAX_LISTED_TOKENS:
                del self._minted[min(self._minted, key=lambda k: self._minted[k].minted_at)]
        self._minted[record.id] = record
        self._save_minted()

    def tokens(self) -> list[TokenRecord]:
        """The tokens minted here that have not expired, oldest first."""
        now = time.time()
        live = [r for r in self._minted.values() if r.expires_at > now]
        listed = [replace(r, revoked=r.id in self._revoked) for r in live]
        return sorted(listed, key=lambda r: (r.minted_at, r.id))

    def check(self, token: str | None) -> Grant:
        """The grant a token carries; Unauthorized (401) for none, bad, expired or revoked
        (itself or the token that minted it)."""
        if not token:
            raise Unauthorized("an access token is required (Authorization: Bearer <token>)")
        if not token.isascii() or len(token) > 4096:
            raise Unauthorized("the access token is not valid")
        if hmac.compare_digest(token.encode(), self._admin):
            return Grant("admin")
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                issuer=_ISSUER,
                options={"require": ["exp", "jti", "role", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the access token has expired") from None
        except jwt.PyJWTError:
            raise Unauthorized("the access token is not valid") from None
        role, token_id = claims["role"], str(claims["jti"])
        named = {k: claims.get(k) for k in ("camera_id", "person", "station", "par")}
        if role not in MINTABLE_ROLES or not all(
            v is None or isinstance(v, str) for v in named.values()
        ):
            raise Unauthorized("the access token is not valid")
        if token_id in self._revoked:
            raise Unauthorized("the access token was revoked")
        parent = named["par"]
        if parent is not None and parent in self._revoked:
            raise Unauthorized("the access token was revoked (with the token that made it)")
        return Grant(
            role,
            named["camera_id"],
            token_id,
            float(claims["exp"]),
            person=named["person"],
            station=named["station"],
            parent=parent,
        )

    def revoke(self, token_id: str, expires_at: float | None = None) -> list[str]:
        """Refuse this token from now on (kept until it would have expired anyway), and every
        token minted from it here. Returns the ids revoked."""
        revoked = [token_id]
        self._revoked[token_id] = expires_at or time.time() + MAX_TTL_S
        pending = [token_id]
        while pending:  # children, and theirs (a monitor's pairing links)
            parent = pending.pop()
            for record in self._minted.values():
                if record.parent == parent and record.id not in self._revoked:
                    self._revoked[record.id] = float(record.expires_at)
                    revoked.append(record.id)
                    pending.append(record.id)
        if self._revoked_file is not None:
            now = time.time()
            _write_atomically(
                self._revoked_file, {k: v for k, v in self._revoked.items() if v > now}
            )
        return revoked

    def is_revoked(self, token_id: str) -> bool:
        return token_id in self._revoked


def _write_atomically(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


Closer = Callable[[], Awaitable[object]]


class LiveConnections:
    """Open connections (peers, WebSockets) by the token that opened them, so revoking a
    token also ends what it, or any token it minted, is watching or streaming now.
    Connections are added before their answer is sent, while still negotiating."""

    def __init__(self) -> None:
        self._by_token: dict[str, dict[object, Closer]] = {}
        self._parent: dict[str, str] = {}  # token_id -> the token that minted it

    def add(self, grant: Grant, owner: object, close: Closer) -> None:
        if grant.token_id is not None:
            self._by_token.setdefault(grant.token_id, {})[owner] = close
            if grant.parent is not None:
                self._parent[grant.token_id] = grant.parent

    def remove(self, grant: Grant, owner: object) -> None:
        if grant.token_id is not None:
            owners = self._by_token.get(grant.token_id, {})
            owners.pop(owner, None)
            if not owners:
                self._by_token.pop(grant.token_id, None)
                self._parent.pop(grant.token_id, None)

    async def close(self, token_id: str) -> int:
        """Close the token's connections and those of the tokens it minted."""
        ids = {token_id}
        grew = True
        while grew:
            children = {t for t, p in self._parent.items() if p in ids} - ids
            ids |= children
            grew = bool(children)
        closers = []
        for tid in ids:
            closers += list(self._by_token.pop(tid, {}).values())
            self._parent.pop(tid, None)
        for close in closers:
            try:
                await close()
            except Exception:
                logger.exception("closing a connection of revoked token %s failed", token_id)
        return len(closers)


def presented_token(request: web.Request) -> str | None:
    """The token in `Authorization: Bearer`, else in `?token=`."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query.get("token") or None


def own_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}".lower()


def foreign_origin(request: web.Request, allowed: tuple[str, ...]) -> str | None:
    """The request's Origin when it is present and neither ours nor allowed; else None."""
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    normalised = origin.strip().rstrip("/").lower()
    if normalised == own_origin(request) or normalised in allowed:
        return None
    return origin


def _own_names() -> set[str]:
    names = {"localhost", "localhost.localdomain"}
    try:
        hostname = socket.gethostname().lower()
        names |= {hostname, f"{hostname}.local", socket.getfqdn().lower()}
    except OSError:
        pass
    return names


_OWN_NAMES = _own_names()


def host_allowed(host: str, allowed_origins: tuple[str, ...]) -> bool:
    """The Host header names this server: an IP address, localhost, this machine's name, or
    a host of `--allow-origin`. Anything else is a DNS name someone pointed here (DNS
    rebinding: a web page whose own name now resolves to this server). A Host that is not
    `name`, `name:port`, `[v6 address]` or `[v6 address]:port` is refused."""
    name = _host_name(host.lower())
    if name is None:
        return False
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    if name in _OWN_NAMES:
        return True
    for origin in allowed_origins:
        allowed = urlsplit(origin).hostname
        if allowed and allowed.lower() == name:
            return True
    return False


def _host_name(host: str) -> str | None:
    """The name or address a Host header value names, without its port; None when it is
    malformed: `[::1].evil.com`, `[::1]x`, `[::1]:80:80`, a port that is not 0 to 65535,
    an IPv6 zone (`[fe80::1%eth0]`), or nothing at all."""
    if host.startswith("["):
        address, bracket, rest = host[1:].partition("]")
        if not bracket or (rest and not (rest[0] == ":" and _is_port(rest[1:]))):
            return None
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            return None
        return None if "%" in address else address
    if host.count(":") == 1:  # name:port; more colons: an IPv6 address without brackets
        host, _, port = host.partition(":")
        if not _is_port(port):
            return None
    return host or None


def _is_port(text: str) -> bool:
    return 1 <= len(text) <= 5 and text.isascii() and text.isdigit() and int(text) <= 65535

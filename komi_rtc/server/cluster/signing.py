"""What the nodes of a cluster trust each other by: keys derived from the admin token that
every node is given, never written to Redis.

Redis is shared routing state, not a trusted party: someone who can write to it must not be
able to redirect cameras, revoke tokens or speak to monitors. So every node record, pub/sub
event and revocation a node writes is sealed (HMAC-SHA256 with the record key, over what it
is and its content, with the time it was written), and every request one node passes to
another is signed (`RequestSigner`: with the request key, over the method, path, client, the
grant the first node checked and the body's hash). Redis holds only a fingerprint of the
admin token (an HMAC of a fixed label), so a node given another token refuses to start; it
reveals neither the token nor the keys.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from ..access import Grant

MIN_ADMIN_TOKEN_CHARS = 16  # as TokenAuthority asks
_FINGERPRINT_LABEL = b"komi-rtc cluster admin token fingerprint v1"
_REQUEST_LABEL = b"komi-rtc cluster request signing v1"
_RECORD_LABEL = b"komi-rtc cluster record signing v1"
FORWARD_MAX_AGE_S = 10.0  # a signed request is good this long after it was signed, once
FORWARDED = "X-Komi-Forwarded"  # set on a request one node passes to another
CLIENT = "X-Komi-Client"  # ... with the address of the client it came from
GRANT_HEADER = "X-Komi-Grant"  # ... what the client's token allows, as that node found (JSON)
BODY_HASH = "X-Komi-Body-SHA256"  # ... and the body's hash: the signature covers all four
COMPLAINT_INTERVAL_S = 60.0  # a forged record or event is logged once a minute per source
_COMPLAINT_SOURCES = 1000  # beyond this many, every source counts as one (no log flood)


class BadSeal(ValueError):
    """A record or event without a good MAC, or too old: it is ignored."""


class Stale(BadSeal):
    """Sealed by a node, but longer ago than it counts for."""


_NOT_A_NODE = "not written by a node given this cluster's admin token"


def _canonical(kind: str, body: dict[str, Any]) -> bytes:
    return (kind + "\n" + json.dumps(body, sort_keys=True, separators=(",", ":"))).encode()


class ClusterKeys:
    """The keys one admin token gives a cluster, each derived with its own label (HMAC-SHA256),
    so one never serves as another and none reveals the token."""

    def __init__(self, admin_token: str) -> None:
        token = admin_token.strip().encode()
        if len(token) < MIN_ADMIN_TOKEN_CHARS:
            raise ValueError(f"the admin token must be at least {MIN_ADMIN_TOKEN_CHARS} characters")
        self.fingerprint = hmac.new(token, _FINGERPRINT_LABEL, hashlib.sha256).hexdigest()
        self._requests = hmac.new(token, _REQUEST_LABEL, hashlib.sha256).digest()
        self._records = hmac.new(token, _RECORD_LABEL, hashlib.sha256).digest()

    # ------------------------------------------------------------ records and events

    def seal(self, kind: str, body: dict[str, Any], at: float | None = None) -> str:
        """`body` as JSON with `at` (unix s, when written) and `mac` over both and `kind`
        (`node:<id>`, `event`, `revoked:<token id>`), so no sealed value serves as another."""
        stamped = {**body, "at": time.time() if at is None else at}
        mac = hmac.new(self._records, _canonical(kind, stamped), hashlib.sha256).hexdigest()
        return json.dumps({**stamped, "mac": mac})

    def unseal(self, kind: str, raw: Any, max_age_s: float | None = None) -> dict[str, Any]:
        """The body of a sealed value (with its `at` and `mac`); BadSeal when it is
        unreadable, its MAC is missing or wrong, or it was written more than `max_age_s` ago
        (or as far ahead: the nodes' clocks agree closer than that)."""
        try:
            data = json.loads(raw)
        except (ValueError, TypeError):
            raise BadSeal("unreadable") from None
        if not isinstance(data, dict):
            raise BadSeal("unreadable")
        mac = data.pop("mac", None)
        if not isinstance(mac, str):
            raise BadSeal(f"no signature ({_NOT_A_NODE})")
        expected = hmac.new(self._records, _canonical(kind, data), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, expected):
            raise BadSeal(f"bad signature ({_NOT_A_NODE})")
        at = data.get("at")
        if not isinstance(at, (int, float)):
            raise BadSeal("no time")
        if max_age_s is not None and abs(time.time() - at) > max_age_s:
            raise Stale(
                f"written {time.time() - at:.1f} s ago, more than {max_age_s:g} s (a replay, "
                "or the nodes' clocks disagree)"
            )
        return {**data, "mac": mac}

    def tag(self, kind: str, value: str) -> str:
        """`value#mac`: a value kept in a Redis set, that only a node could have added."""
        mac = hmac.new(self._records, f"{kind}\n{value}".encode(), hashlib.sha256).hexdigest()
        return f"{value}#{mac}"

    def untag(self, kind: str, member: str) -> str | None:
        """The value of a tagged member; None when no node added it."""
        value, _, _ = member.rpartition("#")
        return value if value and hmac.compare_digest(self.tag(kind, value), member) else None

    # ------------------------------------------------------------ requests

    def request_mac(self, stamp: str, *fields: str) -> str:
        """The MAC of a node-to-node request: `stamp` (`<node>:<unix s>`), then the method,
        path with query, client, grant and body hash. No field holds a newline (HTTP headers
        and request lines cannot), so the joined message is unambiguous."""
        message = "\n".join(("komi-rtc request v2", stamp, *fields)).encode()
        return hmac.new(self._requests, message, hashlib.sha256).hexdigest()


class RequestSigner:
    """Signs the requests this node passes to another, and checks those passed to it."""

    def __init__(self, node_id: str, keys: ClusterKeys) -> None:
        self._node_id = node_id
        self._keys = keys
        self._requests_seen = ReplayGuard(FORWARD_MAX_AGE_S)

    def sign(self, method: str, path: str, client: str, grant: str, body_hash: str) -> str:
        """`X-Komi-Forwarded` for a request this node passes on: which node, when, a nonce,
        and an HMAC with the cluster's request key over them and the method, path with
        query, client address, grant (JSON) and body hash, so a client cannot pose as a
        node, and a captured signature serves no other request, nor this one twice."""
        stamp = f"{self._node_id}:{int(time.time())}:{secrets.token_hex(8)}"
        return f"{stamp}:{self._keys.request_mac(stamp, method, path, client, grant, body_hash)}"

    def verify(
        self, value: str, method: str, path: str, client: str, grant: str, body_hash: str
    ) -> bool:
        """A signature a node made for this very request, within FORWARD_MAX_AGE_S, and not
        seen before."""
        stamp, _, mac = value.rpartition(":")
        node, _, rest = stamp.partition(":")
        when, _, nonce = rest.partition(":")
        if not (node and when.isdigit() and nonce and mac):
            return False
        now = time.time()
        if abs(now - int(when)) > FORWARD_MAX_AGE_S:
            return False
        expected = self._keys.request_mac(stamp, method, path, client, grant, body_hash)
        return hmac.compare_digest(mac, expected) and self._requests_seen.first_use(mac, now)

    def signed_headers(
        self, method: str, path: str, client: str, grant: Grant, body: bytes
    ) -> dict[str, str]:
        """The headers of a request to another node: the signature, the client's address,
        the grant this node found for it (so no token crosses), the body's hash."""
        grant_json = json.dumps(dataclasses.asdict(grant), separators=(",", ":"))
        body_hash = hashlib.sha256(body).hexdigest()
        return {
            FORWARDED: self.sign(method, path, client, grant_json, body_hash),
            CLIENT: client,
            GRANT_HEADER: grant_json,
            BODY_HASH: body_hash,
        }


class ReplayGuard:
    """MACs seen within the window they are good for: each is accepted once."""

    def __init__(self, window_s: float) -> None:
        self._window_s = window_s
        self._seen: dict[str, float] = {}

    def first_use(self, mac: str, now: float) -> bool:
        if len(self._seen) > 64:
            self._seen = {m: t for m, t in self._seen.items() if now - t <= 2 * self._window_s}
        if mac in self._seen:
            return False
        self._seen[mac] = now
        return True


class Complaints:
    """Whether to log a refused record or event now: once per source per interval, so a
    stream of forgeries writes a line a minute, not one each."""

    def __init__(self, interval_s: float = COMPLAINT_INTERVAL_S) -> None:
        self._interval_s = interval_s
        self._last: dict[str, float] = {}

    def due(self, source: str) -> bool:
        now = time.monotonic()
        if len(self._last) >= _COMPLAINT_SOURCES and source not in self._last:
            source = "(many sources)"
        last = self._last.get(source)
        if last is not None and now - last < self._interval_s:
            return False
        self._last[source] = now
        return True

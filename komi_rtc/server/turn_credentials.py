"""Short-lived TURN credentials, minted for each page or camera peer that presents a valid
token, so no static TURN password ships in a page or a config file on a phone.

The TURN REST API scheme (draft-uberti-behave-turn-rest-00), which coturn checks with
`use-auth-secret` and `static-auth-secret=<the same secret>`: the username is
`<expiry, unix seconds>:<who>` and the credential base64(HMAC-SHA1(secret, username)).
coturn refuses an allocation (or its refresh) once the expiry has passed, so a leaked
credential is worth little, and the server never tells coturn anything: they share only
the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..protocol.rest import IceServer
from .access import Grant
from .config import ServerConfig

TURN_URL = re.compile(r"^turns?:[^\s?]+(\?transport=(udp|tcp))?$")
DEFAULT_TTL_S = 12 * 3600  # a long session (a day at a clinic) without a new link
MIN_SECRET_CHARS = 16  # coturn takes any; a short one is guessable from one credential
# what a username may carry after the expiry: a token id, "admin" or "open" (no ":")
_WHO = re.compile(r"[^A-Za-z0-9_.\-]")


class TurnSecretError(ValueError):
    """The shared secret is missing, empty or too short (said at start, not at first use)."""


def load_turn_secret(explicit: str | None, secret_file: Path | None) -> str:
    """$KOMI_TURN_SECRET (passed in as `explicit`), else the file's first line; as the admin
    token is read (access.py), so the secret is never on a command line (`ps` shows those)."""
    if explicit:
        secret = explicit.strip()
    elif secret_file is not None:
        try:
            secret = secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise TurnSecretError(f"--turn-secret-file {secret_file}: {exc.strerror}") from None
    else:
        raise TurnSecretError("--turn-url needs $KOMI_TURN_SECRET or --turn-secret-file")
    if len(secret) < MIN_SECRET_CHARS:
        raise TurnSecretError(f"the TURN secret must be at least {MIN_SECRET_CHARS} characters")
    return secret


def turn_password(secret: str, username: str) -> str:
    """coturn's `use-auth-secret` password for `username`: base64(HMAC-SHA1(secret, username))."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class TurnCredentials:
    """Mints the TURN entry of `/config.json` for one caller."""

    urls: tuple[str, ...]
    secret: str = field(repr=False)  # never in a repr, a log line or an answer
    ttl_s: float = DEFAULT_TTL_S

    def mint(self, who: str, now: float, not_after: float | None = None) -> IceServer:
        """Credentials for `who` (a token id; anything but letters, digits, `_.-` becomes
        `_`), valid `ttl_s` from `now` (unix seconds) and never past `not_after` (the token's
        own expiry: a revoked link's TURN access ends with it, at the latest)."""
        expiry = int(now + self.ttl_s)
        if not_after is not None:
            expiry = min(expiry, int(not_after))
        username = f"{expiry}:{_WHO.sub('_', who)[:64]}"
        return IceServer(self.urls, username, turn_password(self.secret, username))


def check_turn_urls(urls: list[str]) -> str | None:
    """What is wrong with the first bad `--turn-url`, or None."""
    for url in urls:
        if not TURN_URL.match(url):
            return (
                f"--turn-url {url!r}: give turn:HOST:PORT or turns:HOST:PORT, optionally "
                "with ?transport=udp or ?transport=tcp"
            )
    return None


def turn_server_for(config: ServerConfig, grant: Grant, now: float) -> IceServer | None:
    """The TURN entry for the caller `grant` describes (a checked token): named by its
    token id (or role, for the admin token and --open) so coturn's log says whose link
    relayed; None without `--turn-url`."""
    if not (config.turn_urls and config.turn_secret):
        return None
    turn = TurnCredentials(config.turn_urls, config.turn_secret, config.turn_ttl_s)
    return turn.mint(grant.token_id or grant.role, now, grant.expires_at)

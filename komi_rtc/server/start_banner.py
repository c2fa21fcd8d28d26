"""What `komi-rtc` prints once it listens: where to open the monitor and the camera (links
with fresh tokens, a QR code for phones), where the admin token is, and what started."""

from __future__ import annotations

import time
from pathlib import Path

from .access import ADMIN_TOKEN_FILE, TokenAuthority
from .cluster import redacted
from .config import ServerConfig
from .tls import lan_addresses, terminal_qr

_OPEN_WARNING = """\
!!! ACCESS CONTROL IS OFF (--open) !!!
!!! Anyone who can reach this server can list and watch every camera, read every pose
!!! stream and change exercises. Use --open only on your own machine, for development."""


class Links:
    """The tokens in the start banner's links: a monitor token and a camera pairing token
    (unbound: each phone that scans it streams under its own id)."""

    def __init__(self, authority: TokenAuthority | None, ttl_s: float) -> None:
        self.monitor = self.camera = ""
        if authority is not None:
            self.monitor = "?token=" + authority.mint("monitor", None, ttl_s)["token"]
            self.camera = "?token=" + authority.mint("camera", None, ttl_s)["token"]


def _admin_token_source(config: ServerConfig, authority: TokenAuthority | None = None) -> str:
    if config.redis_url and authority is not None and config.admin_token:
        return "admin token: the one in $KOMI_ADMIN_TOKEN (the cluster's)"
    if config.admin_token:
        return "admin token: the one in $KOMI_ADMIN_TOKEN"
    if config.admin_token_file:
        return f"admin token: the one in {config.admin_token_file}"
    path = config.state_dir / ADMIN_TOKEN_FILE
    if _made_by_this_run(path):  # shown once, the start that made it; then where it is
        return (
            f"admin token (new; keep it secret; it mints links with POST /tokens): "
            f"{_read(path)}\n    kept in {path}"
        )
    return f"admin token: kept in {path} (keep it secret; `komi-rtc links` prints new links)"


_STARTED = time.time()


def _made_by_this_run(path: Path) -> bool:
    try:
        return path.stat().st_mtime >= _STARTED - 1.0
    except OSError:
        return False


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return "(unreadable)"


def start_banner(
    config: ServerConfig, links: Links, authority: TokenAuthority | None = None
) -> str:
    """Where to open the monitor and the camera, with the links' tokens; the lines of
    `what_started` go under its first line."""
    scheme = "https" if config.https else "http"
    port = config.port
    lines = [f"KOMI RTC server: {scheme}://localhost:{port}/  (Ctrl-C stops)"]
    if config.redis_url:
        lines.append(
            f"  cluster node at {config.public_url or '(its LAN address)'}, joined through "
            f"{redacted(config.redis_url)} (SIGTERM moves its cameras to other nodes)"
        )
    if config.open_access:
        lines.insert(0, _OPEN_WARNING)
    else:
        lines.append("  " + _admin_token_source(config, authority))
        days = config.link_ttl_s / 86400
        lines.append(
            f"  The links below carry access tokens valid {days:g} days: share them only with"
        )
        lines.append(
            "  the people they are for (a new start prints new ones; --open: none needed)."
        )
    lines.append(f"  monitor: {scheme}://localhost:{port}/monitor{links.monitor}")
    lines.append(f"  camera on this machine: {scheme}://localhost:{port}/camera{links.camera}")
    lan = lan_addresses() if config.host in ("0.0.0.0", "::") else [config.host]
    lan = [a for a in lan if a not in ("127.0.0.1", "localhost", "::1")]
    if config.https and lan:
        lines.append(
            f"  monitor from another device: https://{lan[0]}:{port}/monitor{links.monitor}"
        )
    if not config.https:
        # browsers give a page the camera only over HTTPS or on localhost, laptops included
        if lan:
            lines.append(
                f"  monitor from another device: http://{lan[0]}:{port}/monitor{links.monitor}"
            )
        lines.append(
            "  Cameras on phones or other computers need HTTPS (browsers allow the camera "
            "only on https:// or localhost): restart with --https."
        )
        return "\n".join(lines)
    for address in lan:
        lines.append(
            "  camera from a phone or laptop on this network: "
            f"https://{address}:{port}/camera{links.camera}"
        )
    if lan:
        camera_url = f"https://{lan[0]}:{port}/camera{links.camera}"
        lines.append(f"Scan to open the camera page on a phone ({camera_url}):")
        lines.append(terminal_qr(camera_url))
        if not config.cert_file:
            lines.append(
                "  The certificate is self-signed: each device warns once; choose "
                "'Advanced' then 'Proceed' (Safari: 'Show Details', 'visit this website')."
            )
    return "\n".join(lines)


def what_started(config: ServerConfig, workers: int) -> list[str]:
    """The pose workers and model, the history database and the TURN server in use."""
    model = config.pose_settings.describe()
    database = redacted(config.db_url) if config.db_url else "SQLite in the state dir"
    lines = [
        f"  pose: {workers} worker process(es), {model}",
        f"  history: {database}; state: {config.state_dir}",
    ]
    if config.turn_urls:  # the secret is never shown, only where credentials point
        lines.append(
            f"  TURN: {', '.join(config.turn_urls)}; each link gets its own credentials, "
            f"valid {config.turn_ttl_s / 3600:g} h"
        )
    return lines

"""`python -m komi_rtc.server` (`komi-rtc`): checks what it can before anything starts (the
port, the database), sets up logging and TLS, then runs the server and prints the start
banner. The options are `options.py` and `effective_config.py`; `komi-rtc config` and
`komi-rtc links` are `effective_config.py` and `links_command.py`."""

from __future__ import annotations

import errno
import logging
import socket
import ssl
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from ..analysis.catalog import CatalogError
from ..history.store import DatabaseUnavailable, check_database, default_url
from . import log_safety
from .app import create_app
from .app_keys import AUTHORITY, CONFIG, POOL
from .cluster import ClusterUnavailable
from .config import ServerConfig
from .effective_config import parse_args, print_config
from .links_command import print_links
from .start_banner import Links, start_banner, what_started
from .tls import ensure_self_signed, server_ssl_context

logger = logging.getLogger(__name__)


def configure_logging(level: str) -> None:
    debug = level == "debug"
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not debug:
        for noisy in ("aioice", "aiortc", "aiohttp.access", "alembic"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    log_safety.install(logging.getLogger().handlers)


def keep_admin_token_out_of_logs(app: web.Application) -> None:
    """The log filter (configure_logging) also hides the admin token wherever it appears;
    it is known once the app is made (from the environment, a file or the state dir)."""
    authority = app.get(AUTHORITY)
    if authority is not None:
        log_safety.install(logging.getLogger().handlers, secrets=[authority.admin_token])
    turn_secret = app[CONFIG].turn_secret
    if turn_secret:
        log_safety.install(logging.getLogger().handlers, secrets=[turn_secret])


def _ssl_context(config: ServerConfig) -> ssl.SSLContext | None:
    if not config.https:
        return None
    if config.cert_file and config.key_file:
        cert, key = Path(config.cert_file), Path(config.key_file)
    else:
        cert, key = ensure_self_signed(config.state_dir)
    return server_ssl_context(cert, key)


def _port_problem(host: str, port: int) -> str | None:
    """Why the server cannot listen there, checked before anything starts."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return (
                f"port {port} is already in use (another KOMI server?); choose another with --port"
            )
        return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


def main(argv: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == ["config"]:
        raise SystemExit(print_config(arguments[1:]))
    if arguments[:1] == ["links"]:
        raise SystemExit(print_links(arguments[1:]))
    config = parse_args(arguments)
    configure_logging(config.log_level)
    problem = _port_problem(config.host, config.port)
    if problem:
        print(f"komi-rtc: error: {problem}", file=sys.stderr)
        raise SystemExit(2)
    context = _ssl_context(config)
    try:  # before any worker starts: a bad --db is one line, not a half-started server
        check_database(config.db_url or default_url(config.state_dir))
    except DatabaseUnavailable as exc:
        print(f"komi-rtc: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        app = create_app(config)
    except (CatalogError, ValueError, OSError, ClusterUnavailable) as exc:
        print(f"komi-rtc: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    keep_admin_token_out_of_logs(app)
    links = Links(app.get(AUTHORITY), config.link_ttl_s)

    def announce(_: Any) -> None:
        banner = start_banner(config, links, app.get(AUTHORITY)).split("\n")
        # what started, in one short block under the first line
        banner[1:1] = what_started(config, app[POOL].size)
        print("\n".join(banner), flush=True)

    async def say_stopping(_: web.Application) -> None:
        logger.info("stopping: closing cameras, monitors and pose workers")

    app.on_shutdown.insert(0, say_stopping)
    web.run_app(app, host=config.host, port=config.port, ssl_context=context, print=announce)

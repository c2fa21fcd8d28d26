"""The effective configuration: the options from the command line, the environment and a
--config file (that order wins), checked and made into a `ServerConfig`; a mistake is one
`komi-rtc: error:` line at start, never a half-started server. `komi-rtc config` prints it."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..pose.estimator import ModelError
from ..pose.model_choice import landmark_model_path
from .cluster import redacted
from .config import ServerConfig
from .option_sources import (
    OptionError,
    OptionSource,
    apply_sources,
    config_path,
    describe,
    environ_of,
    given_on_command_line,
)
from .options import option_parser
from .turn_credentials import TurnSecretError, check_turn_urls, load_turn_secret


def _options(
    argv: list[str] | None, environ: Mapping[str, str] | None = None
) -> tuple[argparse.ArgumentParser, argparse.Namespace, dict[str, OptionSource]]:
    """The options from the command line, the environment and the --config file."""
    parser = option_parser()
    arguments = sys.argv[1:] if argv is None else list(argv)
    env = environ_of(environ)
    try:
        sources = apply_sources(parser, env, config_path(arguments, env))
    except OptionError as exc:
        parser.error(str(exc))
    return parser, parser.parse_args(arguments), sources


def parse_args(
    argv: list[str] | None = None, environ: Mapping[str, str] | None = None
) -> ServerConfig:
    """The checked configuration; a bad option ends the process through `parser.error`
    (the usage, one error line, exit status 2)."""
    parser, args, _ = _options(argv, environ)
    return _config(parser, args, environ_of(environ))


def _redact(dest: str, value: Any) -> Any:
    """Secrets never printed: a database's or Redis's password."""
    if isinstance(value, str) and dest in ("db", "redis") and "@" in value:
        return redacted(value)
    return value


def print_config(argv: list[str], environ: Mapping[str, str] | None = None) -> int:
    """`komi-rtc config [options]`: the effective configuration and where each value came
    from (command line > environment > file > default), secrets hidden."""
    parser, args, sources = _options(argv, environ)
    _config(parser, args, environ_of(environ))  # the same checks as a start
    named = given_on_command_line(parser, argv)
    print(describe(args, sources, named, _redact))
    return 0


def _config(
    parser: argparse.ArgumentParser, args: argparse.Namespace, environ: Mapping[str, str]
) -> ServerConfig:
    if args.admin_token_file and not os.path.isfile(args.admin_token_file):
        parser.error(f"--admin-token-file: no such file: {args.admin_token_file}")
    if args.admin_token_file and environ.get("KOMI_ADMIN_TOKEN"):
        # the contract reads the environment first; a file given beside it would be ignored
        # without a word, so neither wins: the person says which one they mean
        parser.error(
            "both $KOMI_ADMIN_TOKEN and --admin-token-file give an admin token: "
            "unset KOMI_ADMIN_TOKEN or drop --admin-token-file"
        )
    for origin in args.allow_origin:
        if not origin.startswith(("http://", "https://")) or origin.count("/") != 2:
            parser.error(f"--allow-origin {origin!r}: give scheme://host[:port], no path")
    if args.link_ttl <= 0:
        parser.error("--link-ttl must be positive")
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.model and not os.path.isfile(args.model):
        parser.error(f"--model: no such file: {args.model}")
    if args.keyframe_interval < 1:
        parser.error("--keyframe-interval must be at least 1")
    if not args.model and not args.legacy_pose:
        try:
            landmark_model_path(args.pose_model)
        except ModelError as exc:
            parser.error(f"--pose-model {args.pose_model}: {exc}")
    if args.exercise_dir and not os.path.isdir(args.exercise_dir):
        parser.error(f"--exercise-dir: no such folder: {args.exercise_dir}")
    if args.public_url and not args.public_url.startswith(("http://", "https://")):
        parser.error(f"--public-url {args.public_url!r}: give http(s)://host:port")
    if (args.public_url or args.node_id) and not args.redis:
        parser.error("--public-url and --node-id need --redis")
    plain_id = args.node_id and args.node_id.replace("_", "").replace("-", "").isalnum()
    if args.node_id and not (len(args.node_id) <= 64 and plain_id):
        parser.error("--node-id: letters, digits, '-' and '_' (at most 64)")
    allow_origins = tuple(o.rstrip("/").lower() for o in args.allow_origin)
    if args.public_url:  # the other nodes ask this one by that name
        allow_origins += (args.public_url.rstrip("/").lower(),)
    if bool(args.cert) != bool(args.key):
        parser.error("--cert and --key go together")
    for path in (args.cert, args.key):
        if path and not os.path.isfile(path):
            parser.error(f"no such file: {path}")
    turn_secret = _turn_secret(parser, args, environ)
    return ServerConfig(
        host=args.host,
        port=args.port,
        workers=args.workers,
        model_path=args.model,
        pose_model=args.pose_model,
        legacy_pose=args.legacy_pose,
        keyframe_interval=args.keyframe_interval,
        analysis_fps=args.analysis_fps,
        stall_timeout_s=args.stall_timeout,
        ice_servers=tuple(args.ice_server),
        turn_urls=tuple(args.turn_url),
        turn_secret=turn_secret,
        turn_ttl_s=args.turn_ttl * 3600,
        inject_delay_ms=args.inject_delay_ms,
        debug=args.debug,
        log_level="debug" if args.debug else "warning" if args.quiet else args.log_level,
        demo_camera=args.demo,
        exercise_dir=Path(args.exercise_dir) if args.exercise_dir else None,
        early_frame_release=not args.stock_jitter_buffer,
        forward_video=not args.reencode_monitors,
        https=args.https or bool(args.cert),
        cert_file=args.cert,
        key_file=args.key,
        state_dir=Path(args.state_dir),
        db_url=args.db,
        admin_token=environ.get("KOMI_ADMIN_TOKEN") or None,
        admin_token_file=Path(args.admin_token_file) if args.admin_token_file else None,
        open_access=args.open,
        allow_origins=allow_origins,
        redis_url=args.redis,
        public_url=args.public_url,
        node_id=args.node_id,
        drain_timeout_s=args.drain_timeout,
        link_ttl_s=args.link_ttl * 3600,
        max_body_bytes=args.max_body_bytes,
        max_ws_message_bytes=args.max_ws_message_bytes,
        max_messages_per_s=args.max_messages_per_s,
        max_cameras=args.max_cameras,
        max_cameras_per_address=args.max_cameras_per_address,
        max_monitors_per_camera=args.max_monitors_per_camera,
        connect_timeout_s=args.connect_timeout,
        max_concurrent_offers=args.max_concurrent_offers,
        max_connections_per_address=args.max_connections_per_address,
        max_frame_side=args.max_frame_side,
        max_frame_pixels=args.max_frame_pixels,
        max_url_chars=args.max_url_chars,
    )


def _turn_secret(
    parser: argparse.ArgumentParser, args: argparse.Namespace, environ: Mapping[str, str]
) -> str | None:
    """The TURN secret, read only when --turn-url asks for it; errors said at start."""
    explicit = environ.get("KOMI_TURN_SECRET") or None
    if not args.turn_url:
        if explicit or args.turn_secret_file:
            parser.error("a TURN secret without --turn-url: give the TURN server's address")
        return None
    problem = check_turn_urls(args.turn_url)
    if problem:
        parser.error(problem)
    if args.turn_ttl <= 0:
        parser.error("--turn-ttl must be positive")
    if explicit and args.turn_secret_file:
        parser.error(
            "both $KOMI_TURN_SECRET and --turn-secret-file give a TURN secret: "
            "unset KOMI_TURN_SECRET or drop --turn-secret-file"
        )
    secret_file = Path(args.turn_secret_file) if args.turn_secret_file else None
    try:
        return load_turn_secret(explicit, secret_file)
    except TurnSecretError as exc:
        parser.error(str(exc))

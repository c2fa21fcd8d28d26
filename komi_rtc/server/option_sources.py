"""Where the server's options come from: the command line, else `KOMI_<OPTION>` in the
environment, else a TOML file (`--config komi.toml`), else the default. One table of
options (the argparse parser) serves all four, so a new option needs no extra code, and
`komi-rtc config` can say where each value came from."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ENV_PREFIX = "KOMI_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_NOT_OPTIONS = {"help", "version", "config"}


class OptionError(ValueError):
    """A value from the environment or the file that the option does not take."""


@dataclass(frozen=True)
class OptionSource:
    """Where one option's value came from, for `komi-rtc config`."""

    option: str  # --max-cameras
    origin: str  # "command line", "environment (KOMI_MAX_CAMERAS)", "file (komi.toml)", "default"


def env_name(dest: str) -> str:
    return ENV_PREFIX + dest.upper()


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in parser._actions  # argparse keeps no public list of its actions
        if a.option_strings and a.dest not in _NOT_OPTIONS and a.default != argparse.SUPPRESS
    ]


def _flag(action: argparse.Action) -> str:
    return max(action.option_strings, key=len)


def _convert(action: argparse.Action, value: Any, where: str) -> Any:
    """A raw value (a string from the environment, any TOML value) as the option takes it."""
    flag = _flag(action)
    if isinstance(action, argparse._StoreTrueAction):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise OptionError(f"{where}: {flag} is true or false, not {value!r}")
    if isinstance(action, argparse._AppendAction):
        items = value if isinstance(value, list) else str(value).split(",")
        return [_one(action, item, where) for item in items if str(item).strip()]
    return _one(action, value, where)


def _one(action: argparse.Action, value: Any, where: str) -> Any:
    kind = action.type
    if kind is None:
        return str(value).strip()
    try:
        return kind(str(value).strip()) if callable(kind) else value
    except (TypeError, ValueError):
        raise OptionError(f"{where}: {_flag(action)} does not take {value!r}") from None


def read_config_file(path: Path) -> dict[str, Any]:
    """The TOML file's options, keys as on the command line without `--` (`max-cameras`;
    `max_cameras` works too)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise OptionError(f"--config {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise OptionError(f"--config {path}: not valid TOML: {exc}") from None
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def apply_sources(
    parser: argparse.ArgumentParser,
    environ: Mapping[str, str],
    config_file: Path | None,
) -> dict[str, OptionSource]:
    """Set the parser's defaults from the file, then the environment (so the command line
    still wins), and return where every option's value comes from before the command line
    is read. An unknown key in the file, or a value an option does not take, is an
    OptionError naming it."""
    actions = {a.dest: a for a in _options(parser)}
    sources = {dest: OptionSource(_flag(a), "default") for dest, a in actions.items()}
    values: dict[str, Any] = {}
    if config_file is not None:
        where = f"file ({config_file})"
        for key, raw in read_config_file(config_file).items():
            action = actions.get(key)
            if action is None:
                known = ", ".join(sorted(a.replace("_", "-") for a in actions))
                shown = key.replace("_", "-")
                raise OptionError(f"--config {config_file}: no option {shown!r} (options: {known})")
            values[key] = _convert(action, raw, f"--config {config_file}")
            sources[key] = OptionSource(_flag(action), where)
    for dest, action in actions.items():
        name = env_name(dest)
        if name in environ:
            values[dest] = _convert(action, environ[name], f"${name}")
            sources[dest] = OptionSource(_flag(action), f"environment ({name})")
    parser.set_defaults(**values)
    return sources


def given_on_command_line(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The options the command line names itself (`--port 9000`, `--port=9000`)."""
    flags = {s: a.dest for a in _options(parser) for s in a.option_strings}
    named = set()
    for item in argv:
        flag = item.split("=", 1)[0]
        if flag in flags:
            named.add(flags[flag])
    return named


def config_path(argv: list[str], environ: Mapping[str, str]) -> Path | None:
    """`--config FILE` (or `--config=FILE`), else `$KOMI_CONFIG`."""
    for i, item in enumerate(argv):
        if item == "--config" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if item.startswith("--config="):
            return Path(item.split("=", 1)[1])
    value = environ.get(env_name("config"))
    return Path(value) if value else None


def show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(none)"
    return "(none)" if value is None else str(value)


def environment_file_lines(parser: argparse.ArgumentParser) -> list[str]:
    """`KOMI_<OPTION>` for every option: what a systemd env file may set."""
    return [f"{env_name(a.dest)}  {_flag(a)}" for a in _options(parser)]


def describe(
    args: argparse.Namespace,
    sources: dict[str, OptionSource],
    named: set[str],
    redact: Any,
) -> str:
    """The effective configuration, one option a line, with where each value came from;
    `redact(dest, value)` hides secrets (passwords in URLs)."""
    lines = []
    for dest, source in sorted(sources.items(), key=lambda item: item[1].option):
        origin = "command line" if dest in named else source.origin
        value = redact(dest, getattr(args, dest))
        lines.append(f"{source.option[2:]:<30} {show(value):<40} {origin}")
    return "\n".join(lines)


def environ_of(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ

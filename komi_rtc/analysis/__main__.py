"""`python -m komi_rtc.analysis` (`komi-rtc-analysis`): replay a recording, list the
catalog, or derive a custom exercise from a trainer's recorded repetitions."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .. import __version__
from .catalog import PROFILES, Catalog, CatalogError
from .replay import RecordingError, analyse_recording

_USAGE = """\
  komi-rtc-analysis --exercise squat session.jsonl   replay: JSON summary
  komi-rtc-analysis --list                           the exercise catalog
  komi-rtc-analysis derive --id my_squat recordings/trainer.jsonl -o my_exercises/my_squat.json
                                                     a custom exercise
A recording is what `komi-rtc-camera --record FILE.jsonl` writes while a server runs
(`python -m komi_rtc.analysis` works the same)."""


def _replay(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="komi-rtc-analysis",
        usage="%(prog)s [--version] [--list] [--exercise ID [--profile P] RECORDING] | derive ...",
        description="Analyse a recorded session (JSON Lines of frame_processed messages), "
        "list the exercise catalog, or derive a custom exercise ('derive --help').",
        epilog=_USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("recording", type=Path, nargs="?", help="a .jsonl recording to replay")
    parser.add_argument("--list", action="store_true", help="print the exercise catalog and exit")
    parser.add_argument("--exercise", help="exercise id to replay the recording as (see --list)")
    parser.add_argument(
        "--profile",
        default="standard",
        choices=PROFILES,
        help="how strict the form rules are (standard)",
    )
    parser.add_argument(
        "--exercise-dir",
        type=Path,
        default=None,
        help="also load custom exercise definitions (*.json) from here",
    )
    args = parser.parse_args(argv)
    if args.recording is None or args.exercise is None:
        parser.error("a replay needs a recording and --exercise ID (or give --list, or derive)")
    if not args.recording.is_file():
        parser.error(f"no such recording: {args.recording}")
    if args.exercise_dir is not None and not args.exercise_dir.is_dir():
        parser.error(f"--exercise-dir: no such folder: {args.exercise_dir}")
    catalog = Catalog(args.exercise_dir)
    if catalog.get(args.exercise) is None:
        parser.error(f"unknown exercise {args.exercise!r}; known: {', '.join(catalog.exercises)}")
    summary = analyse_recording(args.recording, args.exercise, args.profile, catalog)
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 0


def _derive(argv: list[str]) -> int:
    from .derive import derive_exercise

    parser = argparse.ArgumentParser(
        prog="komi-rtc-analysis derive",
        description="Derive a custom exercise from a recording of a few reference "
        "repetitions (record one with `komi-rtc-camera --record FILE.jsonl` while a server "
        "runs). Use it with `--exercise-dir DIR` here or on the server "
        "(`komi-rtc --exercise-dir DIR`).",
    )
    parser.add_argument("recording", type=Path, help="the reference recording (.jsonl)")
    parser.add_argument("--id", required=True, help="the new exercise's id")
    parser.add_argument("--name", default=None, help="display name (default: the id)")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="where to write the definition (.json; missing folders are made)",
    )
    args = parser.parse_args(argv)
    if not args.recording.is_file():
        parser.error(f"no such recording: {args.recording}")
    definition = derive_exercise(args.recording, args.id, args.name or args.id)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(definition, ensure_ascii=False, indent=2), encoding="utf-8")
    print(
        f"wrote {args.output}: tracks {definition['signal']['side']['angle']} "
        f"({definition['signal']['side']['rest']:.0f} -> {definition['signal']['side']['peak']:.0f}"
        f" degrees), {definition['reference']['reps']} reference repetitions"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "derive":
            return _derive(argv[1:])
        if "--list" in argv:
            for exercise in Catalog().listing():
                print(f"{exercise['id']:<18} {exercise['name']['en']} / {exercise['name']['ko']}")
            return 0
        return _replay(argv)
    except BrokenPipeError:  # `... | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (RecordingError, CatalogError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

"""The coaching rules: thresholds, plans and messages are data (rules.json), not code.

`load_rules` reads and validates a rules file into a frozen `Rules`; every problem raises
`RulesError` naming the file and the field (a missing number, an unknown placeholder in a
message, a plural or Korean particle spec wording.py does not read, an accessory naming an
exercise or error code the catalog does not have).
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..analysis.catalog import KINDS, PROFILES, Catalog
from .wording import spec_problem

RULES_FILE = Path(__file__).with_name("rules.json")
LANGUAGES = ("en", "ko")
Text = dict[str, str]  # one message: {"en": ..., "ko": ...}, with {placeholders}


class RulesError(ValueError):
    """A rules file is invalid; the message names the file and the field."""


@dataclass(frozen=True)
class PlanItem:
    """One fixed item of a plan (the starter plan, a rest day)."""

    exercise: str
    sets: int
    reps: int | None
    hold_s: int | None


@dataclass(frozen=True)
class Accessory:
    """`error` recurring in `exercise` calls for `accessory`, because `why`."""

    exercise: str
    error: str
    accessory: str
    why: Text


@dataclass(frozen=True)
class Rules:
    source: str
    lookback_days: float
    recent_sets: int
    max_items: int
    profile_names: dict[str, Text]
    targets: dict[str, Text]
    plan: dict[str, dict[str, float]]
    muscle_group_names: dict[str, Text]
    muscle_groups: dict[str, tuple[str, ...]]
    starter_items: tuple[PlanItem, ...]
    starter_profile: str
    starter_reason_new: Text
    starter_reason_returning: Text
    progression: dict[str, float]
    progression_reason: dict[str, Text]
    regression: dict[str, float]
    regression_reason: dict[str, Text]
    regression_no_error: Text
    accessory_settings: dict[str, Any]
    accessory_reason: Text
    accessory_reason_hold: Text
    accessories: tuple[Accessory, ...]
    range_goal: dict[str, float]
    range_goal_reason: Text
    rest: dict[str, float]
    rest_items: tuple[PlanItem, ...]
    rest_profile: str
    rest_reason_volume: Text
    rest_reason_scores: Text
    variety_days: float
    variety_groups: tuple[str, ...]
    variety_choice: dict[str, str]
    variety_not_during: tuple[str, ...]
    variety_reason: Text
    keep_reason: dict[str, Text]

    def check(self, catalog: Catalog) -> None:
        """Every exercise and error code the rules name exists in `catalog`."""

        def known(exercise: str, where: str) -> None:
            if catalog.get(exercise) is None:
                raise RulesError(f"{self.source}: {where}: unknown exercise {exercise!r}")

        for item in self.starter_items:
            known(item.exercise, "starter.items")
        for item in self.rest_items:
            known(item.exercise, "rest.items")
        for exercise in self.muscle_groups:
            known(exercise, "muscle_groups.exercises")
        for group, exercise in self.variety_choice.items():
            known(exercise, f"variety.choice.{group}")
        for accessory in self.accessories:
            where = f"accessories.map ({accessory.exercise}/{accessory.error})"
            known(accessory.exercise, where)
            known(accessory.accessory, where)
            source = catalog.get(accessory.exercise)
            assert source is not None
            if accessory.error not in {rule.code for rule in source.rules}:
                raise RulesError(
                    f"{self.source}: {where}: {accessory.exercise!r} has no error code "
                    f"{accessory.error!r} in the catalog"
                )


# The placeholders each message may use; a message using another one is an error at load.
_TARGET_FIELDS = {"sets", "reps", "hold_s", "profile"}
_EVIDENCE_FIELDS = {"sets", "exercise", "good", "reps", "score", "target", "seconds", "errors"}


class _Reader:
    """Typed access to one rules file with errors that name the field."""

    def __init__(self, data: Any, source: str, prefix: str = "") -> None:
        self.data = data
        self.source = source
        self.prefix = prefix  # where `data` sits in the file, for messages

    def fail(self, path: str, problem: str) -> RulesError:
        return RulesError(f"{self.source}: {self.prefix}{path}: {problem}")

    def get(self, path: str) -> Any:
        node = self.data
        for key in path.split("."):
            if not isinstance(node, dict) or key not in node:
                raise self.fail(path, "missing")
            node = node[key]
        return node

    def number(self, path: str, minimum: float = 0.0) -> float:
        value = self.get(path)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            raise self.fail(path, f"must be a number >= {minimum:g}, not {value!r}")
        return float(value)

    def numbers(self, path: str) -> dict[str, float]:
        section = self.get(path)
        if not isinstance(section, dict):
            raise self.fail(path, "must be an object")
        return {
            key: self.number(f"{path}.{key}")
            for key, value in section.items()
            if not isinstance(value, (dict, list))
        }

    def text(self, path: str, fields: set[str]) -> Text:
        value = self.get(path)
        if not isinstance(value, dict) or any(
            not isinstance(value.get(lang), str) or not value[lang] for lang in LANGUAGES
        ):
            raise self.fail(path, f"must be a message with non-empty {' and '.join(LANGUAGES)}")
        for lang in LANGUAGES:
            try:
                parsed = [
                    (name, spec) for _, name, spec, _ in string.Formatter().parse(value[lang])
                ]
            except ValueError as exc:  # an unmatched brace
                raise self.fail(f"{path}.{lang}", str(exc)) from None
            used = {name for name, _ in parsed if name}
            unknown = used - fields
            if unknown:
                raise self.fail(
                    f"{path}.{lang}",
                    f"unknown placeholder(s) {sorted(unknown)}; allowed: {sorted(fields)}",
                )
            for name, spec in parsed:
                problem = spec_problem(spec or "") if name else None
                if problem:
                    raise self.fail(f"{path}.{lang}", f"{{{name}:{spec}}}: {problem}")
        return {lang: value[lang] for lang in LANGUAGES}

    def texts(self, path: str, fields: set[str]) -> dict[str, Text]:
        section = self.get(path)
        if not isinstance(section, dict):
            raise self.fail(path, "must be an object")
        return {key: self.text(f"{path}.{key}", fields) for key in section}

    def profile(self, path: str) -> str:
        value = self.get(path)
        if value not in PROFILES:
            raise self.fail(path, f"must be one of {PROFILES}, not {value!r}")
        return str(value)

    def plan_items(self, path: str) -> tuple[PlanItem, ...]:
        items = self.get(path)
        if not isinstance(items, list) or not items:
            raise self.fail(path, "must be a non-empty list")
        result = []
        for index, item in enumerate(items):
            where = f"{path}[{index}]"
            if not isinstance(item, dict) or not isinstance(item.get("exercise"), str):
                raise self.fail(where, "needs an 'exercise'")
            if ("reps" in item) == ("hold_s" in item):
                raise self.fail(where, "needs exactly one of 'reps' and 'hold_s'")
            sub = _Reader(item, self.source, f"{self.prefix}{where}.")
            amount = "reps" if "reps" in item else "hold_s"
            value = int(sub.number(amount, 1))
            result.append(
                PlanItem(
                    exercise=item["exercise"],
                    sets=int(sub.number("sets", 1)),
                    reps=value if amount == "reps" else None,
                    hold_s=value if amount == "hold_s" else None,
                )
            )
        return tuple(result)


def parse_rules(data: Any, source: str = "<rules>") -> Rules:
    """Validate rules `data` (the JSON of a rules file) into `Rules`."""
    r = _Reader(data, source)
    if not isinstance(data, dict):
        raise RulesError(f"{source}: the rules must be a JSON object")
    group_names = r.get("muscle_groups.names")
    groups = r.get("muscle_groups.exercises")
    if not isinstance(group_names, dict) or not isinstance(groups, dict):
        raise r.fail("muscle_groups", "needs 'names' and 'exercises' objects")
    for exercise, names in groups.items():
        if not isinstance(names, list) or any(name not in group_names for name in names):
            raise r.fail(f"muscle_groups.exercises.{exercise}", "must list groups from 'names'")
    plan = {kind: r.numbers(f"plan.{kind}") for kind in KINDS}
    for kind, keys in {
        "reps": ("sets", "start_reps", "min_reps", "max_reps", "step", "reps_after_profile_up"),
        "hold": ("sets", "start_s", "min_s", "max_s", "step_s", "s_after_profile_up"),
        "range": ("sets", "reps"),
    }.items():
        for key in keys:
            r.number(f"plan.{kind}.{key}", 1)
    accessories = []
    mapping = r.get("accessories.map")
    if not isinstance(mapping, list):
        raise r.fail("accessories.map", "must be a list")
    for index, entry in enumerate(mapping):
        where = f"accessories.map[{index}]"
        if not isinstance(entry, dict):
            raise r.fail(where, "must be an object")
        for key in ("exercise", "error", "accessory"):
            if not isinstance(entry.get(key), str):
                raise r.fail(f"{where}.{key}", "missing or not a string")
        accessories.append(
            Accessory(
                exercise=entry["exercise"],
                error=entry["error"],
                accessory=entry["accessory"],
                why=_Reader(entry, source, f"{where}.").text("why", set()),
            )
        )
    variety_groups = r.get("variety.groups")
    choice = r.get("variety.choice")
    if not isinstance(variety_groups, list) or any(g not in group_names for g in variety_groups):
        raise r.fail("variety.groups", "must list groups from muscle_groups.names")
    if not isinstance(choice, dict) or any(g not in choice for g in variety_groups):
        raise r.fail("variety.choice", "needs an exercise for every group in variety.groups")
    not_during = r.get("variety.not_during_kinds")
    if not isinstance(not_during, list) or any(kind not in KINDS for kind in not_during):
        raise r.fail("variety.not_during_kinds", f"must list kinds from {KINDS}")
    evidence_kinds = {"reps", "hold"}
    for section in ("progression", "regression", "keep"):
        if set(r.get(f"{section}.reason")) != evidence_kinds:
            raise r.fail(f"{section}.reason", "needs exactly 'reps' and 'hold' messages")
    accessory_settings = {
        "min_share": r.number("accessories.min_share"),
        "min_sets_with_error": r.number("accessories.min_sets_with_error", 1),
        "hold_min_count": r.number("accessories.hold_min_count", 1),
        "sets": r.number("accessories.sets", 1),
        "reps": r.number("accessories.reps", 1),
        "hold_s": r.number("accessories.hold_s", 1),
        "profile": r.profile("accessories.profile"),
    }
    accessory_fields = {"error", "count", "reps", "sets", "exercise", "accessory", "target", "why"}
    return Rules(
        source=source,
        lookback_days=r.number("lookback_days", 1),
        recent_sets=int(r.number("recent_sets", 1)),
        max_items=int(r.number("max_items", 1)),
        profile_names={p: r.text(f"profile_names.{p}", set()) for p in PROFILES},
        targets={
            key: r.text(f"targets.{key}", _TARGET_FIELDS)
            for key in ("reps", "hold", "profile", "profile_hold")
        },
        plan=plan,
        muscle_group_names={g: r.text(f"muscle_groups.names.{g}", set()) for g in group_names},
        muscle_groups={e: tuple(names) for e, names in groups.items()},
        starter_items=r.plan_items("starter.items"),
        starter_profile=r.profile("starter.profile"),
        starter_reason_new=r.text("starter.reason_new", set()),
        starter_reason_returning=r.text("starter.reason_returning", {"days"}),
        progression={
            key: r.number(f"progression.{key}")
            for key in ("min_sets", "min_good_share", "min_mean_score", "hold_max_errors_per_set")
        },
        progression_reason=r.texts("progression.reason", _EVIDENCE_FIELDS),
        regression={
            key: r.number(f"regression.{key}")
            for key in (
                "min_sets",
                "max_good_share",
                "max_mean_score",
                "reps_factor",
                "hold_min_errors_per_set",
            )
        },
        regression_reason=r.texts("regression.reason", _EVIDENCE_FIELDS | {"error"}),
        regression_no_error=r.text("regression.no_error", set()),
        accessory_settings=accessory_settings,
        accessory_reason=r.text("accessories.reason", accessory_fields),
        accessory_reason_hold=r.text("accessories.reason_hold", accessory_fields),
        accessories=tuple(accessories),
        range_goal={
            key: r.number(f"range_goal.{key}", 1) for key in ("window_days", "step_deg", "max_deg")
        },
        range_goal_reason=r.text(
            "range_goal.reason", {"exercise", "days", "best", "goal", "target"}
        ),
        rest={
            key: r.number(f"rest.{key}", 1)
            for key in (
                "window_h",
                "max_reps",
                "max_sets",
                "score_drop",
                "min_sets_for_drop",
            )
        },
        rest_items=r.plan_items("rest.items"),
        rest_profile=r.profile("rest.profile"),
        rest_reason_volume=r.text("rest.reason_volume", {"reps", "sets", "seconds"}),
        rest_reason_scores=r.text("rest.reason_scores", {"first", "last", "sets"}),
        variety_days=r.number("variety.window_days", 1),
        variety_groups=tuple(variety_groups),
        variety_choice={g: str(choice[g]) for g in variety_groups},
        variety_not_during=tuple(not_during),
        variety_reason=r.text("variety.reason", {"group", "days", "exercise", "target"}),
        keep_reason=r.texts("keep.reason", _EVIDENCE_FIELDS),
    )


def load_rules(path: Path = RULES_FILE, catalog: Catalog | None = None) -> Rules:
    """Read and validate a rules file; with `catalog`, also check the names it uses."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RulesError(f"{path}: {exc}") from None
    rules = parse_rules(data, str(path))
    if catalog is not None:
        rules.check(catalog)
    return rules


_DEFAULT: Rules | None = None


def default_rules() -> Rules:
    """The bundled rules.json, read once."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load_rules()
    return _DEFAULT

"""The exercise catalog: definitions are data (exercises.json and custom files), not code."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

CATALOG_FILE = Path(__file__).with_name("exercises.json")
PROFILES = ("beginner", "standard", "strict")
KINDS = ("reps", "hold", "range")
_OPS = {">": lambda a, b: a > b, "<": lambda a, b: a < b}


class CatalogError(ValueError):
    """An exercise definition is invalid; the message names the file and the field."""


@dataclass(frozen=True)
class Signal:
    """What is tracked in one view, in degrees: a 2-D joint angle, a foreshortened segment,
    or how far the hips have `lowered` toward the ankles (a squat seen from the front)."""

    rest: float
    peak: float
    angle: str | None = None
    foreshortened: str | None = None
    lowered: str | None = None


@dataclass(frozen=True)
class Rule:
    code: str
    metric: str
    op: str
    value: float
    message: dict[str, str]
    penalty: float = 25.0
    views: tuple[str, ...] | None = None

    def broken(self, metrics: dict[str, float | None], view: str | None, slack: float) -> bool:
        """`slack` moves the limit toward leniency by that share of its size (profiles)."""
        if self.views is not None and view not in self.views:
            return False
        value = metrics.get(self.metric)
        if value is None:
            return False
        lenient = 1.0 if self.op == ">" else -1.0
        limit = self.value + lenient * slack * abs(self.value)
        return _OPS[self.op](value, limit)


@dataclass(frozen=True)
class ViewCondition:
    """One view's part of a two-view rule: that view's rep shows `error`, or its rep's
    `metric` compares with `value` (`op`)."""

    view: str
    error: str | None = None
    metric: str | None = None
    op: str = ">"
    value: float = 0.0

    def holds(self, rep: dict[str, Any] | None) -> bool:
        if rep is None:
            return False
        if self.error is not None:
            return self.error in rep.get("errors", [])
        value = rep.get(self.metric or "")
        return isinstance(value, (int, float)) and _OPS[self.op](value, self.value)


@dataclass(frozen=True)
class StationRule:
    """A form rule that needs two views at once (a station of cameras): each condition is
    checked on that view's rep."""

    code: str
    message: dict[str, str]
    conditions: tuple[ViewCondition, ...]
    penalty: float = 20.0

    def holds(self, reps_by_view: dict[str, dict[str, Any]]) -> bool:
        return all(c.holds(reps_by_view.get(c.view)) for c in self.conditions)


@dataclass(frozen=True)
class Exercise:
    id: str
    name: dict[str, str]
    kind: str
    views: tuple[str, ...]
    side: str  # "best", "both", "left", "right" or "deepest" (the more bent of the two)
    needs: tuple[str, ...]
    signals: dict[str, Signal]
    rules: tuple[Rule, ...]
    posture: dict[str, float] = field(default_factory=dict)
    reference: dict[str, Any] | None = None  # custom exercises: trajectories for DTW scoring
    station_rules: tuple[StationRule, ...] = ()  # need two views (analysis/fusion.py)

    def signal_for(self, view: str | None) -> Signal:
        if view in self.signals:
            return self.signals[view]  # type: ignore[index]
        return self.signals.get("side") or next(iter(self.signals.values()))

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "kind": self.kind, "views": list(self.views)}


@dataclass(frozen=True)
class Profile:
    name: str
    threshold_slack: float  # share of the rest->peak range the peak threshold moves back
    rule_slack: float  # share of a rule's limit it moves toward leniency

    def apply(self, signal: Signal) -> Signal:
        return replace(
            signal, peak=signal.peak - (signal.peak - signal.rest) * self.threshold_slack
        )


def _exercise(data: dict[str, Any], source: str) -> Exercise:
    def need(key: str) -> Any:
        if key not in data:
            raise CatalogError(f"{source}: exercise {data.get('id', '?')!r} lacks {key!r}")
        return data[key]

    kind = need("kind")
    if kind not in KINDS:
        raise CatalogError(f"{source}: {data.get('id')}: kind must be one of {KINDS}")
    signals = {
        view: Signal(
            rest=float(spec["rest"]),
            peak=float(spec["peak"]),
            angle=spec.get("angle"),
            foreshortened=spec.get("foreshortened"),
            lowered=spec.get("lowered"),
        )
        for view, spec in data.get("signal", {}).items()
    }
    if kind != "hold" and not signals:
        raise CatalogError(f"{source}: {data.get('id')}: a counted exercise needs 'signal'")
    rules = tuple(
        Rule(
            code=r["code"],
            metric=r["metric"],
            op=r["op"],
            value=float(r["value"]),
            message=r["message"],
            penalty=float(r.get("penalty", 25)),
            views=tuple(r["views"]) if "views" in r else None,
        )
        for r in data.get("rules", [])
    )
    for rule in rules:
        if rule.op not in _OPS:
            raise CatalogError(f"{source}: {data.get('id')}: rule op must be '>' or '<'")
    station_rules = tuple(
        _station_rule(r, f"{source}: {data.get('id')}") for r in data.get("station_rules", [])
    )
    return Exercise(
        id=need("id"),
        name=need("name"),
        kind=kind,
        views=tuple(need("views")),
        side=data.get("side", "best"),
        needs=tuple(need("needs")),
        signals=signals,
        rules=rules,
        posture=data.get("posture", {}),
        reference=data.get("reference"),
        station_rules=station_rules,
    )


def _station_rule(data: dict[str, Any], where: str) -> StationRule:
    try:
        conditions = tuple(
            ViewCondition(
                view=c["view"],
                error=c.get("error"),
                metric=c.get("metric"),
                op=c.get("op", ">"),
                value=float(c.get("value", 0.0)),
            )
            for c in data["when"]
        )
        rule = StationRule(
            code=data["code"],
            message=data["message"],
            conditions=conditions,
            penalty=float(data.get("penalty", 20)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CatalogError(f"{where}: station rule: {exc}") from None
    if len({c.view for c in conditions}) < 2:
        raise CatalogError(f"{where}: station rule {rule.code!r} must involve two views")
    for c in conditions:
        if (c.error is None) == (c.metric is None) or c.op not in _OPS:
            raise CatalogError(
                f"{where}: station rule {rule.code!r}: each condition has 'error' or "
                "'metric' with op '>' or '<'"
            )
    return rule


class Catalog:
    def __init__(self, extra_dir: Path | None = None) -> None:
        data = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
        self.messages: dict[str, dict[str, str]] = data["framing_messages"]
        self.profiles = {
            name: Profile(name, float(p["threshold_slack"]), float(p["rule_slack"]))
            for name, p in data["profiles"].items()
        }
        self.exercises: dict[str, Exercise] = {}
        for item in data["exercises"]:
            exercise = _exercise(item, str(CATALOG_FILE))
            self.exercises[exercise.id] = exercise
        if extra_dir is not None and extra_dir.is_dir():
            for path in sorted(extra_dir.glob("*.json")):
                self.add(load_exercise_file(path))

    def add(self, exercise: Exercise) -> None:
        self.exercises[exercise.id] = exercise

    def get(self, exercise_id: str) -> Exercise | None:
        return self.exercises.get(exercise_id)

    def listing(self) -> list[dict[str, Any]]:
        return [e.summary() for e in self.exercises.values()]


def load_exercise_file(path: Path) -> Exercise:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CatalogError(f"{path}: {exc}") from None
    return _exercise(data, str(path))


_DEFAULT: Catalog | None = None


def default_catalog() -> Catalog:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Catalog()
    return _DEFAULT

"""What a person's stored sets say: each set read into a typed `SetRecord` (odd entries are
skipped, never raised on), and the figures the rules judge, per exercise.

Input is the JSON of `GET /people/{person}/sets` (docs/protocol.md, "People and history"): times in
unix seconds, angles in degrees, `hold_seconds` the seconds held in good form.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..analysis.catalog import PROFILES, Catalog


@dataclass(frozen=True)
class SetRecord:
    exercise: str
    kind: str  # the catalog's kind: "reps", "hold" or "range"
    profile: str
    started_at: float
    ended_at: float  # the start while the set is still running
    reps: int
    good_reps: int
    mean_score: float | None
    errors: dict[str, int] = field(default_factory=dict)
    hold_seconds: float = 0.0
    best_angle_deg: float | None = None  # range exercises: the largest angle reached, degrees

    @property
    def empty(self) -> bool:
        """Nothing was counted (the person started and left): no evidence either way."""
        return self.reps <= 0 and self.hold_seconds <= 0 and self.best_angle_deg is None

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _count(value: Any) -> int:
    number = _number(value)
    return max(0, int(number)) if number is not None else 0


def _best_angle(data: dict[str, Any]) -> float | None:
    """The largest angle reached in a range set: per rep `angle_reached_deg` or
    `peak_angle_deg` (the live analysis's "angle reached"), else the set's `best_rom_deg`."""
    reached = [
        _number(rep.get("angle_reached_deg", rep.get("peak_angle_deg")))
        for rep in data.get("reps_detail") or []
        if isinstance(rep, dict)
    ]
    known = [angle for angle in reached if angle is not None]
    return max(known) if known else _number(data.get("best_rom_deg"))


def read_set(data: Any, catalog: Catalog) -> SetRecord | None:
    """One served set as a `SetRecord`; None for anything unusable (not an object, no
    start time, an exercise the catalog does not know)."""
    if not isinstance(data, dict):
        return None
    name = data.get("exercise")
    exercise = catalog.get(name) if isinstance(name, str) else None
    started = _number(data.get("started_at"))
    if exercise is None or started is None:
        return None
    ended = _number(data.get("ended_at"))
    reps = _count(data.get("reps"))
    errors_raw = data.get("errors")
    errors = (
        {str(code): _count(n) for code, n in errors_raw.items() if _count(n) > 0}
        if isinstance(errors_raw, dict)
        else {}
    )
    profile = data.get("profile")
    return SetRecord(
        exercise=exercise.id,
        kind=exercise.kind,
        profile=profile if profile in PROFILES else "standard",
        started_at=started,
        ended_at=ended if ended is not None and ended >= started else started,
        reps=reps,
        good_reps=min(reps, _count(data.get("good_reps"))),
        mean_score=_number(data.get("mean_score")),
        errors=errors,
        hold_seconds=max(0.0, _number(data.get("hold_seconds")) or 0.0),
        best_angle_deg=_best_angle(data) if exercise.kind == "range" else None,
    )


def read_history(sets: Any, catalog: Catalog, now: float) -> list[SetRecord]:
    """The usable sets that started before `now`, newest first (the input order is not
    trusted)."""
    if not isinstance(sets, list):
        return []
    records = [read_set(item, catalog) for item in sets]
    usable = [r for r in records if r is not None and r.started_at <= now]
    return sorted(usable, key=lambda r: r.started_at, reverse=True)


@dataclass(frozen=True)
class ExerciseEvidence:
    """The recent, non-empty sets of one exercise (newest first) and what they add up to."""

    exercise: str
    kind: str
    sets: tuple[SetRecord, ...]
    session_sets: int  # how many sets of it the newest session held

    @property
    def reps(self) -> int:
        return sum(s.reps for s in self.sets)

    @property
    def good_reps(self) -> int:
        return sum(s.good_reps for s in self.sets)

    @property
    def good_share(self) -> float:
        return self.good_reps / self.reps if self.reps else 0.0

    @property
    def mean_score(self) -> float | None:
        """Rep-weighted mean of the sets' mean scores."""
        scored = [(s.mean_score, s.reps) for s in self.sets if s.mean_score is not None]
        weight = sum(max(1, reps) for _, reps in scored)
        if not scored:
            return None
        return sum(score * max(1, reps) for score, reps in scored) / weight

    @property
    def errors(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for s in self.sets:
            total.update(s.errors)
        return total

    @property
    def errors_per_set(self) -> float:
        return sum(s.error_count for s in self.sets) / len(self.sets)

    @property
    def mean_hold_s(self) -> float:
        return sum(s.hold_seconds for s in self.sets) / len(self.sets)

    @property
    def profile(self) -> str:
        return self.sets[0].profile

    @property
    def typical_reps(self) -> int:
        """The median reps of the recent sets (what the person currently does)."""
        counts = sorted(s.reps for s in self.sets)
        return counts[len(counts) // 2]


SESSION_GAP_S = 3 * 3600  # sets of one exercise within 3 hours of each other: one session


def recent_by_exercise(
    history: list[SetRecord], since: float, per_exercise: int
) -> list[ExerciseEvidence]:
    """The last `per_exercise` non-empty sets of every exercise trained since `since`, the
    most recently trained exercise first."""
    grouped: dict[str, list[SetRecord]] = {}
    session: Counter[str] = Counter()
    for record in history:
        if record.started_at < since or record.empty:
            continue
        bucket = grouped.setdefault(record.exercise, [])
        if not bucket or record.started_at >= bucket[0].started_at - SESSION_GAP_S:
            session[record.exercise] += 1
        if len(bucket) < per_exercise:
            bucket.append(record)
    return [
        ExerciseEvidence(
            exercise=name, kind=sets[0].kind, sets=tuple(sets), session_sets=session[name]
        )
        for name, sets in grouped.items()
    ]

"""Simulated people with known needs, to judge the recommender on (bench/recommend.py).

Each persona is a seeded generator of months of sets in exactly the shape
`GET /people/{person}/sets` serves (newest first), with per-rep details whose form errors,
scores and angles follow the catalog's rules under the set's profile (a rep's errors are
the catalog rules its simulated angles break; its score is 100 minus their penalties, as
the live analyser scores). Alongside the sets, each person has checkpoints: moments to ask
for a recommendation, each with the need that is true then and the hidden state behind it.

- athlete: trains four days a week with clean form and moves up on a program; needs
  progression.
- squat_depth: three days a week; 40-75% of squat reps are shallow; needs a depth accessory
  or an easier squat.
- shoulder_rehab: shoulder flexion five days a week, the reachable angle growing about half
  a degree a day; needs a goal above the recent best that is still within reach.
- overtrainer: trains almost daily at high volume; fatigue (hidden) builds and form falls
  through the day; needs rest on the mornings after hard days.
- regular (control): three balanced days a week, decent form; needs nothing alarming.
- newcomer (control): no history at first (needs a starter plan), then beginner sessions.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..analysis.catalog import Catalog, Exercise

PERSONAS = ("athlete", "squat_depth", "shoulder_rehab", "overtrainer", "regular", "newcomer")
NEEDS = {
    "athlete": "progress",
    "squat_depth": "depth",
    "shoulder_rehab": "rom",
    "overtrainer": "rest",
    "regular": None,
    "newcomer": "starter",
}
EPOCH = 1_767_225_600.0  # 2026-01-01 00:00 UTC: day 0 of every simulation
DAY_S = 86400.0
SHOULDER_LOADING = ("push_up", "shoulder_press", "lateral_raise", "jumping_jack")


@dataclass(frozen=True)
class Checkpoint:
    """A moment to ask for a recommendation; `need` is what is true then (None: nothing
    needs fixing) and `state` the hidden figures behind it."""

    at: float
    need: str | None
    state: dict[str, float] = field(default_factory=dict)


@dataclass
class SimulatedPerson:
    id: str
    persona: str
    sets: list[dict[str, Any]]  # newest first, as served
    checkpoints: list[Checkpoint]

    def history_at(self, t: float) -> list[dict[str, Any]]:
        """The sets the server would serve at time `t`: those started before it, newest
        first (a set still running at `t` is served with `ended_at` null)."""
        served = []
        for s in self.sets:
            if s["started_at"] >= t:
                continue
            if s["ended_at"] is not None and s["ended_at"] > t:
                s = {**s, "ended_at": None}
            served.append(s)
        return served


class _SetMaker:
    """Builds served sets whose per-rep errors follow the catalog's rules."""

    def __init__(self, rng: random.Random, catalog: Catalog) -> None:
        self.rng = rng
        self.catalog = catalog
        self.next_id = 1
        self.sets: list[dict[str, Any]] = []

    def _exercise(self, exercise_id: str) -> Exercise:
        exercise = self.catalog.get(exercise_id)
        if exercise is None:
            raise KeyError(exercise_id)
        return exercise

    def _served(
        self, exercise: Exercise, profile: str, at: float, reps: list[dict[str, Any]], **extra: Any
    ) -> dict[str, Any]:
        errors: Counter[str] = Counter()
        for rep in reps:
            errors.update(rep["errors"])
        scores = [rep["score"] for rep in reps]
        ended = reps[-1]["ended_at"] + 2.0 if reps else at + extra.get("hold_total", 30.0)
        served = {
            "id": self.next_id,
            "exercise": exercise.id,
            "profile": profile,
            "camera_id": "cam-home",
            "started_at": round(at, 3),
            "ended_at": round(ended, 3),
            "reps": len(reps),
            "good_reps": sum(1 for rep in reps if rep["good"]),
            "half_reps": int(self.rng.random() < 0.15),
            "mean_score": round(sum(scores) / len(scores), 1) if scores else None,
            "errors": dict(errors),
            "reps_detail": reps,
            "kind": exercise.kind,
            "hold_seconds": 0.0,
            "best_rom_deg": max((rep["rom_deg"] for rep in reps), default=None),
        }
        served.update({k: v for k, v in extra.items() if k != "hold_total"})
        self.next_id += 1
        self.sets.append(served)
        return served

    def reps_set(
        self,
        exercise_id: str,
        profile: str,
        at: float,
        reps: int,
        fail: dict[str, float],
        view: str | None = None,
    ) -> dict[str, Any]:
        """`fail[code]` (or `fail["*"]`) is the chance a rep breaks that rule; the rep's
        angles are drawn on the matching side of the rule's limit under `profile`."""
        rng = self.rng
        exercise = self._exercise(exercise_id)
        view = view if view in exercise.views else rng.choice(exercise.views)
        slack = self.catalog.profiles[profile].rule_slack
        signal = exercise.signal_for(view)
        rules = [r for r in exercise.rules if r.views is None or view in r.views]
        decreasing = signal.peak < signal.rest
        details: list[dict[str, Any]] = []
        t = at + rng.uniform(2, 5)
        for index in range(1, reps + 1):
            metrics: dict[str, float | None] = {}
            for rule in rules:
                lenient = 1.0 if rule.op == ">" else -1.0
                limit = rule.value + lenient * slack * abs(rule.value)
                broken = rng.random() < fail.get(rule.code, fail.get("*", 0.0))
                # '>' rules break above the limit, '<' rules below it
                direction = (1.0 if rule.op == ">" else -1.0) * (1.0 if broken else -1.0)
                if rule.metric == "peak_angle":
                    margin = rng.uniform(2, 14) if broken else rng.uniform(3, 18)
                    value = limit + direction * margin
                    if not decreasing:
                        value = min(value, 179.0)
                else:
                    value = limit + direction * abs(limit) * rng.uniform(0.05, 0.4)
                metrics.setdefault(rule.metric, value)
            if "peak_angle" not in metrics:
                beyond = rng.uniform(0, 12)
                metrics["peak_angle"] = signal.peak - beyond if decreasing else signal.peak + beyond
            peak = float(metrics["peak_angle"] or 0.0)
            start = signal.rest + (rng.uniform(0, 10) if decreasing else -rng.uniform(0, 10))
            broken_rules = [r for r in rules if r.broken(metrics, view, slack)]
            codes = list(dict.fromkeys(r.code for r in broken_rules))
            penalty = sum({r.code: r.penalty for r in broken_rules}.values())
            down, up = rng.uniform(0.8, 1.6), rng.uniform(0.7, 1.4)
            t += down + up
            details.append(
                {
                    "index": index,
                    "score": round(max(0.0, 100.0 - penalty), 1),
                    "rom_deg": round(abs(start - peak), 1),
                    "peak_angle_deg": round(peak, 1),
                    "duration_s": round(down + up, 2),
                    "down_s": round(down, 2),
                    "up_s": round(up, 2),
                    "ended_at": round(t, 3),
                    "good": not codes,
                    "errors": codes,
                    "view": view,
                }
            )
            t += rng.uniform(0.2, 0.8)
        return self._served(exercise, profile, at, details)

    def range_set(
        self, exercise_id: str, profile: str, at: float, reps: int, reachable_deg: float
    ) -> dict[str, Any]:
        """A range-of-motion set: each rep reaches a little short of `reachable_deg`."""
        rng = self.rng
        exercise = self._exercise(exercise_id)
        details: list[dict[str, Any]] = []
        t = at + rng.uniform(2, 5)
        for index in range(1, reps + 1):
            reached = min(180.0, reachable_deg - abs(rng.gauss(0, 4)))
            start = rng.uniform(25, 40)
            duration = rng.uniform(2.5, 4.5)
            t += duration
            details.append(
                {
                    "index": index,
                    "score": 100.0,
                    "rom_deg": round(reached - start, 1),
                    "peak_angle_deg": round(reached, 1),
                    "angle_reached_deg": round(reached, 1),
                    "duration_s": round(duration, 2),
                    "ended_at": round(t, 3),
                    "good": True,
                    "errors": [],
                    "view": "side",
                }
            )
            t += rng.uniform(0.5, 1.5)
        return self._served(exercise, profile, at, details)

    def hold_set(
        self, exercise_id: str, profile: str, at: float, seconds: float, fail: float
    ) -> dict[str, Any]:
        """A hold of about `seconds`; each 10 s breaks form with chance `fail` (a cue, and
        a few seconds not in good form)."""
        rng = self.rng
        exercise = self._exercise(exercise_id)
        codes = [r.code for r in exercise.rules]
        total = max(5.0, seconds + rng.gauss(0, 3))
        errors: Counter[str] = Counter()
        lost = 0.0
        for _ in range(max(1, int(total // 10))):
            if rng.random() < fail:
                errors[codes[0] if rng.random() < 0.7 or len(codes) == 1 else codes[1]] += 1
                lost += rng.uniform(2, 6)
        served = self._served(exercise, profile, at, [], hold_total=total)
        served.update(
            errors=dict(errors), hold_seconds=round(max(0.0, total - lost), 1), best_rom_deg=None
        )
        return served

    def session(
        self, at: float, plan: list[tuple[str, int, str, dict[str, float]]], sets: int = 3
    ) -> float:
        """Run `plan` ([(exercise, reps or seconds, profile, fail)]) as `sets` sets each, one
        after another from `at`; returns when the session ended."""
        t = at
        for exercise_id, amount, profile, fail in plan:
            kind = self._exercise(exercise_id).kind
            for _ in range(sets):
                if kind == "hold":
                    served = self.hold_set(exercise_id, profile, t, amount, fail.get("*", 0.05))
                else:
                    served = self.reps_set(exercise_id, profile, t, amount, fail)
                t = served["ended_at"] + self.rng.uniform(45, 120)
        return t


def _morning(rng: random.Random, day: int) -> float:
    return EPOCH + day * DAY_S + rng.uniform(7, 9) * 3600


def _evening(rng: random.Random, day: int) -> float:
    return EPOCH + day * DAY_S + rng.uniform(17, 20) * 3600


def simulate(persona: str, index: int, days: int, seed: int, catalog: Catalog) -> SimulatedPerson:
    """One simulated person of `persona` over `days` days; the same arguments give the same
    person."""
    if persona not in PERSONAS:
        raise ValueError(f"unknown persona {persona!r}; known: {', '.join(PERSONAS)}")
    rng = random.Random(f"{seed}:{persona}:{index}")
    maker = _SetMaker(rng, catalog)
    checkpoints = _GENERATORS[persona](rng, maker, days)
    sets = sorted(maker.sets, key=lambda s: s["started_at"], reverse=True)
    return SimulatedPerson(f"{persona}-{index}", persona, sets, checkpoints)


def _athlete(rng: random.Random, maker: _SetMaker, days: int) -> list[Checkpoint]:
    days_a = ["squat", "push_up", "glute_bridge", "plank"]
    days_b = ["lunge_left", "shoulder_press", "bicep_curl", "lateral_raise", "plank"]
    amount = {e: rng.choice([8, 10]) for e in days_a + days_b if e != "plank"}
    amount["plank"] = 30
    profile = {e: "standard" for e in amount}
    next_step = {e: rng.randint(7, 14) for e in amount}
    training_days = {0, 1, 3, 4}
    sessions = 0
    checkpoints = []
    for day in range(days):
        if day >= 21 and day % 2 == 0:
            checkpoints.append(Checkpoint(_morning(rng, day), "progress"))
        if day % 7 not in training_days or rng.random() < 0.1:
            continue
        for e in amount:  # the athlete's own program: a step every one to two weeks
            if day >= next_step[e]:
                next_step[e] = day + rng.randint(7, 14)
                if e == "plank":
                    amount[e] = min(90, amount[e] + 10)
                elif amount[e] < 15:
                    amount[e] = min(15, amount[e] + 2)
                elif profile[e] == "standard":
                    profile[e], amount[e] = "strict", 10
        program = days_a if sessions % 2 == 0 else days_b
        sessions += 1
        maker.session(
            _evening(rng, day), [(e, amount[e], profile[e], {"*": 0.02}) for e in program]
        )
    return checkpoints


def _squat_depth(rng: random.Random, maker: _SetMaker, days: int) -> list[Checkpoint]:
    shallow = rng.uniform(0.4, 0.75)
    view = rng.choice(["side", "front"])
    extras = ["push_up", "bicep_curl", "plank"] + (["glute_bridge"] if rng.random() < 0.4 else [])
    checkpoints = []
    for day in range(days):
        if day >= 14 and day % 2 == 1:
            checkpoints.append(Checkpoint(_morning(rng, day), "depth", {"shallow": shallow}))
        if day % 7 not in (0, 2, 4) or rng.random() < 0.1:
            continue
        t = _evening(rng, day)
        for _ in range(3):
            served = maker.reps_set(
                "squat", "standard", t, 10, {"shallow": shallow, "*": 0.04}, view
            )
            t = served["ended_at"] + rng.uniform(60, 120)
        plan = [(e, 30 if e == "plank" else 10, "standard", {"*": 0.04}) for e in extras]
        maker.session(t, plan)
    return checkpoints


def _shoulder_rehab(rng: random.Random, maker: _SetMaker, days: int) -> list[Checkpoint]:
    reachable = rng.uniform(80, 105)
    gain = rng.uniform(0.35, 0.8)
    ceiling = rng.uniform(160, 175)
    bridges = rng.random() < 0.4
    profile = rng.choice(["beginner", "standard"])
    checkpoints = []
    for day in range(days):
        if day >= 7 and day % 2 == 0:
            checkpoints.append(Checkpoint(_morning(rng, day), "rom", {"reachable": reachable}))
        reachable = min(ceiling, reachable + gain * rng.uniform(0.3, 1.7))
        if day % 7 in (5, 6) or rng.random() < 0.1:
            continue
        t = _evening(rng, day)
        today = reachable + rng.gauss(0, 2)
        for _ in range(rng.choice([2, 3])):
            served = maker.range_set("shoulder_flexion", profile, t, 10, today)
            t = served["ended_at"] + rng.uniform(45, 90)
        if bridges and day % 2 == 0:
            maker.session(t, [("glute_bridge", 12, "beginner", {"*": 0.05})], sets=2)
    return checkpoints


def _overtrainer(rng: random.Random, maker: _SetMaker, days: int) -> list[Checkpoint]:
    pool = [
        "squat",
        "push_up",
        "lunge_left",
        "lunge_right",
        "bicep_curl",
        "shoulder_press",
        "lateral_raise",
        "jumping_jack",
        "glute_bridge",
    ]
    capacity = rng.uniform(220, 300)  # reps a day this person recovers from
    fatigue = 0.0
    next_rest = rng.randint(6, 10)
    checkpoints = []
    for day in range(days):
        if day >= 14:
            need = "rest" if fatigue >= 1.5 else None
            checkpoints.append(Checkpoint(_morning(rng, day), need, {"fatigue": fatigue}))
        if day == next_rest:
            next_rest = day + rng.randint(6, 10)
            fatigue *= 0.5
            continue
        heavy = rng.random() < 0.6
        exercises = rng.sample(pool, rng.randint(5, 7) if heavy else rng.randint(3, 4))
        reps = rng.randint(15, 22) if heavy else rng.randint(12, 16)
        t = _evening(rng, day) - 3600
        done = 0
        set_index = 0
        for exercise in exercises:
            for _ in range(3):
                # fatigue carried in raises every rep's chance to break form, and it grows
                # set by set through the day
                base = 0.04 + 0.12 * max(0.0, fatigue - 0.8)
                fail = min(0.9, base + 0.05 * set_index * max(0.0, fatigue - 1.0))
                served = maker.reps_set(exercise, "standard", t, reps, {"*": fail})
                done += served["reps"]
                set_index += 1
                t = served["ended_at"] + rng.uniform(30, 90)
        fatigue = 0.5 * fatigue + done / capacity
    return checkpoints


def _regular(rng: random.Random, maker: _SetMaker, days: int) -> list[Checkpoint]:
    rotation = [
        ["squat", "push_up", "bicep_curl", "plank"],
        ["lunge_left", "shoulder_press", "glute_bridge", "lateral_raise"],
        ["lunge_right", "push_up", "bicep_curl", "plank"],
    ]
    fail = {"*": rng.uniform(0.04, 0.12)}
    reps = rng.choice([10, 12])
    training = set(rng.sample(range(7), 3))
    sessions = 0
    checkpoints = []
    for day in range(days):
        if day >= 14 and day % 2 == 0:
            checkpoints.append(Checkpoint(_morning(rng, day), None))
        if day % 7 not in training or rng.random() < 0.15:
            continue
        program = rotation[sessions % len(rotation)]
        sessions += 1
        plan = [(e, 30 if e == "plank" else reps, "standard", fail) for e in program]
        maker.session(_evening(rng, day), plan)
    return checkpoints


def _newcomer(rng: random.Random, maker: _SetMaker, days: int) -> list[Checkpoint]:
    first = rng.randint(10, min(30, max(10, days // 2)))
    fail = {"*": rng.uniform(0.05, 0.15)}
    checkpoints = []
    for day in range(days):
        if day % 3 == 0:
            checkpoints.append(Checkpoint(_morning(rng, day), None))
        if day < first or day % 7 not in (1, 3, 5):
            continue
        weeks = (day - first) // 7
        plan = [
            ("squat", 8 + min(4, weeks // 2), "beginner", fail),
            ("push_up", 5 + min(4, weeks // 2), "beginner", fail),
            ("glute_bridge", 10, "beginner", fail),
            ("plank", 20 + 5 * min(4, weeks // 2), "beginner", {"*": 0.1}),
        ]
        maker.session(_evening(rng, day), plan, sets=2)
    started = min(s["started_at"] for s in maker.sets) if maker.sets else float("inf")
    return [  # before the first set, the need is a starter plan
        Checkpoint(c.at, "starter" if c.at <= started else None) for c in checkpoints
    ]


_GENERATORS = {
    "athlete": _athlete,
    "squat_depth": _squat_depth,
    "shoulder_rehab": _shoulder_rehab,
    "overtrainer": _overtrainer,
    "regular": _regular,
    "newcomer": _newcomer,
}

"""The next workout for a person, from their stored sets and the coaching rules.

Order of judgement: no history (or none for `lookback_days`) gives the starter plan; a hard
last day (high volume, or scores falling through the day) gives a rest or light day;
otherwise every recently trained exercise gets one item, by the first rule that fits:
regression (form broke down), a recurring error's accessory, a range-of-motion goal,
progression (recent sets clean), or keep; then one exercise for a muscle group left
untrained. Every item carries a reason in English and Korean naming its evidence, and the
rule that made it (`"rule"`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..analysis.catalog import PROFILES, Catalog
from .evidence import ExerciseEvidence, SetRecord, read_history, recent_by_exercise
from .rules import LANGUAGES, Accessory, PlanItem, Rules, Text, default_rules
from .wording import fill

DAY_S = 86400.0
# When two rules give an item for one exercise the earlier rule here wins; items are listed
# in this order and the later ones are dropped past `max_items`.
_PRIORITY = ("rest", "starter", "regress", "accessory", "range_goal", "progress", "variety")


@dataclass
class _Item:
    exercise: str
    sets: int
    profile: str
    rule: str
    reason: Text
    reps: int | None = None
    hold_s: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    last_trained: float = 0.0

    def as_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {"exercise": self.exercise, "sets": self.sets}
        if self.hold_s is not None:
            item["hold_s"] = self.hold_s
        else:
            item["reps"] = self.reps
        item.update(profile=self.profile, reason=self.reason, rule=self.rule, **self.extra)
        return item

    @property
    def rank(self) -> tuple[int, float]:
        order = _PRIORITY.index(self.rule) if self.rule in _PRIORITY else len(_PRIORITY)
        return order, -self.last_trained


def recommend(
    person: str, sets: list[dict], catalog: Catalog, now: float, rules: Rules | None = None
) -> dict:
    """The recommendation `GET /people/{person}/recommendation` serves. `sets` is the
    person's served sets (newest first, though the order is not trusted); entries that
    cannot be read are skipped, so any history gives a plan. Raises `RulesError` only for
    rules that name exercises or error codes `catalog` lacks."""
    rules = rules or default_rules()
    rules.check(catalog)
    coach = _Coach(catalog, rules, now)
    items = coach.plan(read_history(sets, catalog, now))
    return {
        "person": person,
        "generated_at": now,
        "items": [item.as_json() for item in items],
    }


def _fill(template: Text, **fields: Any) -> Text:
    """Fill a message in every language; a field is one value or a per-language Text. The
    messages choose plurals and Korean particles by their fields (wording.py)."""
    out = {}
    for lang in LANGUAGES:
        values = {
            key: value.get(lang, value.get("en", "")) if isinstance(value, dict) else value
            for key, value in fields.items()
        }
        out[lang] = fill(template[lang], **values)
    return out


def _round5(seconds: float) -> int:
    return int(5 * round(seconds / 5))


class _Coach:
    def __init__(self, catalog: Catalog, rules: Rules, now: float) -> None:
        self.catalog = catalog
        self.rules = rules
        self.now = now

    # ------------------------------------------------------------ wording

    def name(self, exercise: str) -> Text:
        found = self.catalog.get(exercise)
        names = found.name if found is not None else {}
        return {lang: names.get(lang) or names.get("en") or exercise for lang in LANGUAGES}

    def error_message(self, exercise: str, code: str | None) -> Text:
        found = self.catalog.get(exercise)
        for rule in found.rules if found is not None and code else ():
            if rule.code == code:
                return {lang: rule.message.get(lang, code) for lang in LANGUAGES}
        return self.rules.regression_no_error

    def target(self, item: _Item, show_profile: bool = False) -> Text:
        key = "hold" if item.hold_s is not None else "reps"
        if show_profile:
            key = "profile_hold" if key == "hold" else "profile"
        return _fill(
            self.rules.targets[key],
            sets=item.sets,
            reps=item.reps,
            hold_s=item.hold_s,
            profile=self.rules.profile_names[item.profile],
        )

    def sized(self, exercise: str, sets: int, profile: str, rule: str, **extra: Any) -> _Item:
        """An item with the starting amount for the exercise's kind."""
        found = self.catalog.get(exercise)
        kind = found.kind if found is not None else "reps"
        plan = self.rules.plan[kind]
        item = _Item(exercise, sets, profile, rule, {}, extra=extra)
        if kind == "hold":
            item.hold_s = int(plan["start_s"])
        elif kind == "range":
            item.reps = int(plan["reps"])
        else:
            item.reps = int(plan["start_reps"])
        return item

    # ------------------------------------------------------------ plans

    def plan(self, history: list[SetRecord]) -> list[_Item]:
        since = self.now - self.rules.lookback_days * DAY_S
        counted = [r for r in history if not r.empty]
        if not counted or counted[0].started_at < since:
            return self.starter(counted[0] if counted else None)
        rest = self.rest_day(counted)
        if rest:
            return rest
        evidence = recent_by_exercise(counted, since, self.rules.recent_sets)
        chosen: dict[str, _Item] = {}

        def offer(item: _Item) -> None:
            held = chosen.get(item.exercise)
            if held is None or item.rank[0] < held.rank[0]:
                chosen[item.exercise] = item

        for ev in evidence:
            if ev.kind == "range":
                offer(self.range_goal(ev, counted))
            else:
                offer(self.strength(ev))
                for accessory in self.accessories(ev):
                    offer(accessory)
        variety = self.variety(counted, evidence)
        if variety is not None and variety.exercise not in chosen:
            offer(variety)
        items = sorted(chosen.values(), key=lambda item: item.rank)
        return items[: self.rules.max_items]

    def starter(self, last: SetRecord | None) -> list[_Item]:
        rules = self.rules
        if last is None:
            reason = rules.starter_reason_new
        else:
            days = int((self.now - last.started_at) // DAY_S)
            reason = _fill(rules.starter_reason_returning, days=days)
        return [
            self.fixed(item, rules.starter_profile, "starter", reason)
            for item in rules.starter_items
        ]

    def fixed(self, plan: PlanItem, profile: str, rule: str, reason: Text) -> _Item:
        return _Item(
            plan.exercise, plan.sets, profile, rule, reason, reps=plan.reps, hold_s=plan.hold_s
        )

    def rest_day(self, history: list[SetRecord]) -> list[_Item]:
        """A rest or light day after a hard last day: high volume, or scores that fell from
        the first sets of the day to the last."""
        rest = self.rules.rest
        day = [r for r in history if r.started_at >= self.now - rest["window_h"] * 3600]
        reps = sum(r.reps for r in day)
        reason: Text | None = None
        if reps >= rest["max_reps"] or len(day) >= rest["max_sets"]:
            seconds = int(sum(r.hold_seconds for r in day))
            reason = _fill(self.rules.rest_reason_volume, reps=reps, sets=len(day), seconds=seconds)
        scored = [r.mean_score for r in reversed(day) if r.mean_score is not None and r.reps]
        if reason is None and len(scored) >= rest["min_sets_for_drop"]:
            third = len(scored) // 3
            first = sum(scored[:third]) / third
            last = sum(scored[-third:]) / third
            if first - last >= rest["score_drop"]:
                reason = _fill(
                    self.rules.rest_reason_scores,
                    first=round(first),
                    last=round(last),
                    sets=len(scored),
                )
        if reason is None:
            return []
        return [
            self.fixed(item, self.rules.rest_profile, "rest", reason)
            for item in self.rules.rest_items
        ]

    # ------------------------------------------------------------ per exercise

    def strength(self, ev: ExerciseEvidence) -> _Item:
        """Regress, progress or keep one reps or hold exercise."""
        rules = self.rules
        hold = ev.kind == "hold"
        plan = rules.plan[ev.kind]
        item = _Item(ev.exercise, ev.session_sets, ev.profile, "keep", {})
        item.last_trained = ev.sets[0].started_at
        current = _round5(ev.mean_hold_s) if hold else ev.typical_reps
        smallest = plan["min_s"] if hold else plan["min_reps"]
        largest = plan["max_s"] if hold else plan["max_reps"]
        step = plan["step_s"] if hold else plan["step"]
        current = int(min(max(current, smallest), largest))
        item.sets = int(min(max(item.sets, 1), plan["max_sets"]))
        amount = "hold_s" if hold else "reps"
        setattr(item, amount, current)
        score = ev.mean_score
        common = ev.errors.most_common(1)
        evidence = {
            "sets": len(ev.sets),
            "exercise": self.name(ev.exercise),
            "good": ev.good_reps,
            "reps": ev.reps,
            "score": round(score) if score is not None else "-",
            "seconds": round(ev.mean_hold_s),
            "errors": f"{ev.errors_per_set:.1f}".removesuffix(".0") if hold else ev.errors.total(),
            "error": self.error_message(ev.exercise, common[0][0] if common else None),
        }
        kind_key = "hold" if hold else "reps"
        show_profile = False
        if self._broke_down(ev):
            item.rule = "regress"
            if item.profile != "beginner":
                item.profile = PROFILES[PROFILES.index(item.profile) - 1]
                show_profile = True
            elif current > smallest:
                factor = rules.regression["reps_factor"]
                lower = _round5(current * factor) if hold else round(current * factor)
                setattr(item, amount, int(max(smallest, lower)))
            else:
                item.sets = max(1, item.sets - 1)
            template = rules.regression_reason[kind_key]
        elif self._clean(ev):
            item.rule = "progress"
            if current < largest:
                setattr(item, amount, int(min(largest, current + step)))
            elif item.profile != "strict":
                item.profile = PROFILES[PROFILES.index(item.profile) + 1]
                after = plan["s_after_profile_up"] if hold else plan["reps_after_profile_up"]
                setattr(item, amount, int(after))
                show_profile = True
            elif item.sets < plan["max_sets"]:
                item.sets += 1
            else:
                item.rule = "keep"
            template = (
                rules.progression_reason[kind_key]
                if item.rule == "progress"
                else rules.keep_reason[kind_key]
            )
        else:
            template = rules.keep_reason[kind_key]
        item.reason = _fill(template, target=self.target(item, show_profile), **evidence)
        return item

    def _clean(self, ev: ExerciseEvidence) -> bool:
        p = self.rules.progression
        if len(ev.sets) < p["min_sets"]:
            return False
        if ev.kind == "hold":
            return all(
                s.hold_seconds > 0 and s.error_count <= p["hold_max_errors_per_set"]
                for s in ev.sets
            )
        return all(
            s.reps > 0
            and s.good_reps / s.reps >= p["min_good_share"]
            and (s.mean_score is None or s.mean_score >= p["min_mean_score"])
            for s in ev.sets
        )

    def _broke_down(self, ev: ExerciseEvidence) -> bool:
        r = self.rules.regression
        if len(ev.sets) < r["min_sets"]:
            return False
        if ev.kind == "hold":
            return ev.errors_per_set >= r["hold_min_errors_per_set"]
        score = ev.mean_score
        return ev.reps > 0 and (
            ev.good_share <= r["max_good_share"]
            or (score is not None and score <= r["max_mean_score"])
        )

    def accessories(self, ev: ExerciseEvidence) -> list[_Item]:
        """An accessory for each mapped error that recurs in the recent sets."""
        settings = self.rules.accessory_settings
        items = []
        for accessory in self.rules.accessories:
            if accessory.exercise != ev.exercise:
                continue
            count = ev.errors[accessory.error]
            with_error = [s for s in ev.sets if s.errors.get(accessory.error, 0) > 0]
            if ev.kind == "hold":
                recurring = [
                    s for s in with_error if s.errors[accessory.error] >= settings["hold_min_count"]
                ]
                fires = len(recurring) >= settings["min_sets_with_error"]
            else:
                fires = (
                    ev.reps > 0
                    and count / ev.reps >= settings["min_share"]
                    and len(with_error) >= settings["min_sets_with_error"]
                )
            if fires:
                items.append(self.accessory_item(ev, accessory, count))
        return items

    def accessory_item(self, ev: ExerciseEvidence, accessory: Accessory, count: int) -> _Item:
        settings = self.rules.accessory_settings
        item = self.sized(
            accessory.accessory,
            int(settings["sets"]),
            str(settings["profile"]),
            "accessory",
            addresses={"exercise": ev.exercise, "error": accessory.error},
        )
        item.last_trained = ev.sets[0].started_at
        found = self.catalog.get(accessory.accessory)
        if item.hold_s is not None:
            item.hold_s = int(settings["hold_s"])
        elif found is not None and found.kind == "reps":
            item.reps = int(settings["reps"])
        template = (
            self.rules.accessory_reason_hold if ev.kind == "hold" else self.rules.accessory_reason
        )
        item.reason = _fill(
            template,
            error=self.error_message(ev.exercise, accessory.error),
            count=count,
            reps=ev.reps,
            sets=len(ev.sets),
            exercise=self.name(ev.exercise),
            accessory=self.name(accessory.accessory),
            target=self.target(item),
            why=accessory.why,
        )
        return item

    def range_goal(self, ev: ExerciseEvidence, history: list[SetRecord]) -> _Item:
        """The next angle to reach (`goal_rom_deg`, in the degrees of the live "angle
        reached"): a step beyond the best of the last `window_days`."""
        goal = self.rules.range_goal
        plan = self.rules.plan["range"]
        since = self.now - goal["window_days"] * DAY_S
        angles = [
            r.best_angle_deg
            for r in history
            if r.exercise == ev.exercise and r.started_at >= since and r.best_angle_deg is not None
        ]
        item = _Item(
            ev.exercise,
            int(max(1, min(ev.session_sets, plan["sets"]))) if ev.session_sets else 1,
            ev.profile,
            "range_goal",
            {},
            reps=int(plan["reps"]),
            last_trained=ev.sets[0].started_at,
        )
        if not angles:
            item.rule = "keep"
            item.reason = _fill(
                self.rules.keep_reason["reps"],
                sets=len(ev.sets),
                exercise=self.name(ev.exercise),
                good=ev.good_reps,
                reps=ev.reps,
                score=round(ev.mean_score) if ev.mean_score is not None else "-",
                target=self.target(item),
                seconds=0,
                errors=0,
            )
            return item
        best = max(angles)
        target_deg = round(min(goal["max_deg"], best + goal["step_deg"]))
        item.extra = {"goal_rom_deg": target_deg, "best_angle_deg": round(best, 1)}
        item.reason = _fill(
            self.rules.range_goal_reason,
            exercise=self.name(ev.exercise),
            days=int(goal["window_days"]),
            best=round(best),
            goal=target_deg,
            target=self.target(item),
        )
        return item

    def variety(self, history: list[SetRecord], evidence: list[ExerciseEvidence]) -> _Item | None:
        """One exercise for the first muscle group not trained within `window_days`, for
        people who train strength (not during range-of-motion therapy)."""
        rules = self.rules
        if any(ev.kind in rules.variety_not_during for ev in evidence):
            return None
        since = self.now - rules.variety_days * DAY_S
        window = [r for r in history if r.started_at >= since]
        if not any(r.kind in ("reps", "hold") for r in window):
            return None
        trained = {g for r in window for g in rules.muscle_groups.get(r.exercise, ())}
        for group in rules.variety_groups:
            if group in trained:
                continue
            exercise = rules.variety_choice[group]
            done_before = any(r.exercise == exercise for r in history)
            item = self.sized(
                exercise,
                int(rules.plan[self.catalog.exercises[exercise].kind]["sets"]),
                "standard" if done_before else "beginner",
                "variety",
            )
            item.reason = _fill(
                rules.variety_reason,
                group=rules.muscle_group_names[group],
                days=int(rules.variety_days),
                exercise=self.name(exercise),
                target=self.target(item),
            )
            return item
        return None

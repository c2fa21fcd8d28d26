"""Repetition counting, hold timing, form rules and scoring for one person and one exercise.

A rep is: leave the rest posture, pass the peak threshold, come back to rest. The gap
between the rest threshold and the `partial` point is the hysteresis that keeps jitter from
counting; a movement that passes `partial` but not the peak is a half rep (not counted,
and said so). Nothing is counted before the person holds the rest posture in view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import geometry as g
from .catalog import Exercise, Profile, Signal
from .filters import OneEuroFilter
from .limbs import LimbReader
from .similarity import similarity_score

START_HOLD_S = 0.5  # the rest posture, held this long, starts the set
START_TOLERANCE = 0.15  # share of rest->peak that still counts as holding the start posture
FIDGET_S = 0.4  # a shorter excursion (under PARTIAL) does not restart the start hold
# A foreshortening segment's full length is the longest it has looked lately; that memory
# fades this much a second, so a person who steps back is measured right within seconds.
SEGMENT_MEMORY_FADE = 0.05
LOST_S = 1.5  # no usable keypoints this long: the set pauses (person left or hidden)
CUE_S = 2.5  # a cue stays readable this long
# A start posture held inside the movement (0 .. START_TOLERANCE) was read with up to
# this much jitter on top (shares of rest->peak): coming back within it ends the rep.
REST_JITTER = 0.05
PARTIAL = 0.25  # share of rest->peak that starts a movement (hysteresis)
MIN_REP_S = 0.35
VIEW_STABLE_FRAMES = 5


@dataclass
class _RepTrace:
    started: float
    values: list[float] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    sides: dict[str, list[float]] = field(default_factory=lambda: {"left": [], "right": []})
    metrics: dict[str, list[float]] = field(default_factory=dict)
    reached_peak: bool = False

    def add_metric(self, name: str, value: float | None) -> None:
        if value is not None and math.isfinite(value):
            self.metrics.setdefault(name, []).append(value)


class ExerciseAnalyser:
    def __init__(
        self, exercise: Exercise, profile: Profile, messages: dict[str, dict[str, str]]
    ) -> None:
        self.exercise = exercise
        self.profile = profile
        self._messages = messages
        self._filters: dict[str, OneEuroFilter] = {}
        self.phase = "setup"
        self.reps = 0
        self.good_reps = 0
        self.half_reps = 0
        self.rep_results: list[dict[str, Any]] = []
        self.last_rep: dict[str, Any] | None = None
        self.feedback_counts: dict[str, int] = {}
        self.hold_good_s = 0.0
        self.hold_total_s = 0.0
        self.best_angle: float | None = None
        self.view: str | None = None
        self._view_candidate: tuple[str | None, int] = (None, 0)
        self._side = "left" if exercise.side != "right" else "right"  # the side read last
        self._limbs = LimbReader()
        self._fidget_since: float | None = None
        self._full_length: dict[str, tuple[float, float]] = {}  # what -> (pixels, when)
        self._rest_since: float | None = None
        # the held start posture's progress (0 .. START_TOLERANCE): a rep ends on coming
        # back to it; a person whose rest reads a little into the movement (elbows wider
        # at the start of a press) would otherwise never end one
        self._rest_level = 0.0
        self._held_rest_level = 0.0
        self._last_seen: float | None = None
        self._last_t: float | None = None
        self._trace: _RepTrace | None = None
        self._left_rest_at: float | None = None
        self._cues: dict[str, float] = {}  # code -> until
        self._bad_view_since: float | None = None
        self._out_of_frame_since: float | None = None
        self._angles: dict[str, float] = {}
        self._hold_rules_active: set[str] = set()

    # ------------------------------------------------------------ measurement

    def _smooth(self, key: str, value: float | None, t: float) -> float | None:
        if value is None:
            return None
        filt = self._filters.get(key)
        if filt is None:
            filt = self._filters[key] = OneEuroFilter()
        return filt(value, t)

    def _update_view(self, kp: np.ndarray) -> None:
        seen = g.view_of(kp)
        candidate, count = self._view_candidate
        count = count + 1 if seen == candidate else 1
        self._view_candidate = (seen, count)
        if seen is not None and count >= VIEW_STABLE_FRAMES:
            self.view = seen
        elif self.view is None and seen is not None:
            self.view = seen

    def _sides(self) -> list[str]:
        """The sides this frame is read from: a named side; both, seen from the front, for
        an exercise of both sides; else both as candidates, of which `_measure` reads the
        one further into the movement. In profile BlazePose's labels do not say which limb
        is near, and a far limb it guessed moves less than the near one it hides."""
        side = self.exercise.side
        if side in ("left", "right"):
            return [side]
        return ["left", "right"]

    def _reads_both(self) -> bool:
        """Whether the value is the mean of both sides (else the side further along)."""
        return self.exercise.side == "both" and self.view != "side"

    def _side_value(self, kp: np.ndarray, signal: Signal, side: str, t: float) -> float | None:
        floor = g.MIN_CONFIDENCE
        if signal.angle:
            return g.side_angle(kp, signal.angle, side, floor)
        if signal.lowered:
            height = g.hip_height(kp, side, floor)
            standing = self._longest(f"{side}_lowered", height, t)
            if height is None or not standing:
                return None
            return g.lowered_angle(height, standing)
        segment = signal.foreshortened
        assert segment is not None
        length = g.segment_length(kp, segment, side, floor)
        return g.foreshortened_angle(
            kp, segment, side, floor, self._longest(f"{side}_{segment}", length, t)
        )

    def _longest(self, key: str, now: float | None, t: float) -> float | None:
        """The longest a length has been lately (a limb hanging straight, a person standing
        up: the length the movement is measured against)."""
        previous = self._full_length.get(key)
        if previous is not None:
            faded = previous[0] * (1.0 - SEGMENT_MEMORY_FADE) ** max(0.0, t - previous[1])
            now = max(now or 0.0, faded)
        if not now:
            return None
        self._full_length[key] = (now, t)
        return now

    def _better_seen(self, kp: np.ndarray, sides: list[str]) -> str:
        """Of two sides, the one whose least-seen needed keypoint is seen better (a plausible
        joint counts as seen: `LimbReader`); a tie goes to the side read last."""

        def seen(side: str) -> tuple[float, bool]:
            least = min(kp[g.K[f"{side}_{p}"], 3] for p in self.exercise.needs)
            return float(least), side == self._side

        return max(sides, key=seen)

    def _needed_points(self, kp: np.ndarray, sides: list[str]) -> list[tuple[str, float]]:
        """The keypoints this exercise uses, with their confidence: on every side it reads,
        or, choosing between sides, on the better-seen one (the other may be hidden)."""
        if not self._reads_both() and len(sides) > 1:
            sides = [self._better_seen(kp, sides)]
        return [(f"{s}_{part}", g.MIN_CONFIDENCE) for s in sides for part in self.exercise.needs]

    def _countable_sides(
        self, kp: np.ndarray, signal: Signal, sides: list[str], width: int, height: int
    ) -> list[str]:
        """Of `sides`, those whose joints the counting signal is measured from are all seen
        in the picture (both or none when the value is the mean of both sides)."""
        parts = g.signal_parts(signal.angle, signal.foreshortened, signal.lowered)
        inside = [
            side
            for side in sides
            if g.in_frame(kp, [(f"{side}_{p}", g.MIN_CONFIDENCE) for p in parts], width, height)
        ]
        if self._reads_both() and len(inside) < len(sides):
            return []
        return inside

    # ------------------------------------------------------------ per frame

    def update(
        self, kp: np.ndarray | None, width: int, height: int, t: float
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """This frame's `analysis` snapshot and the repetitions it completed (each a rep
        result: score, ROM, tempo, errors)."""
        events: list[dict[str, Any]] = []
        dt = 0.0 if self._last_t is None else max(0.0, min(1.0, t - self._last_t))
        self._last_t = t
        if kp is not None:
            self._update_view(kp)
            kp = self._limbs.read(kp, self.view == "side", t)
        signal = (
            self.profile.apply(self.exercise.signal_for(self.view))
            if self.exercise.kind != "hold"
            else None
        )
        sides = self._sides()
        framed = kp is not None and g.in_frame(kp, self._needed_points(kp, sides), width, height)
        self._check_framing(kp is not None, framed, t)
        if self.exercise.kind == "hold":
            self._update_hold(kp if framed else None, sides, t, dt)
        else:
            assert signal is not None
            if kp is not None and not framed:
                # a joint only a form rule reads (a push-up's ankles) is out of the picture
                # or unseen: the cue says so, and counting goes on from the signal's joints
                sides = self._countable_sides(kp, signal, sides, width, height)
            value = self._measure(kp, signal, sides, t) if kp is not None and sides else None
            if value is None:
                if self._last_seen is not None and t - self._last_seen > LOST_S:
                    self._pause()
            else:
                self._last_seen = t
                event = self._step(kp, value, signal, sides, t)  # type: ignore[arg-type]
                if event is not None:
                    events.append(event)
        return self._snapshot(t), events

    def _measure(
        self, kp: np.ndarray | None, signal: Signal, sides: list[str], t: float
    ) -> float | None:
        assert kp is not None
        values: dict[str, float] = {}
        self._angles = {}
        name = signal.angle or signal.foreshortened or f"{signal.lowered}_lowered"
        for side in sides:
            value = self._smooth(side, self._side_value(kp, signal, side, t), t)
            if value is not None:
                values[side] = value
        if not values:
            return None
        if self._reads_both() or len(values) == 1:
            for side, value in values.items():
                self._angles[f"{side}_{name}"] = round(value, 1)
            if len(values) == 1:
                self._side = next(iter(values))
            return float(sum(values.values()) / len(values))
        # the side further into the movement: a lunge's front (deeper) leg, whatever its
        # label; in profile the near limb rather than a guessed far one
        further = max(values, key=lambda side: self._progress(values[side], signal))
        if self.exercise.side == "deepest":
            self._angles = {f"{side}_{name}": round(v, 1) for side, v in values.items()}
        else:
            self._angles = {f"{further}_{name}": round(values[further], 1)}
        self._side = further
        return values[further]

    def _progress(self, value: float, signal: Signal) -> float:
        """0 at the rest threshold, 1 at the peak threshold, whichever way the joint moves."""
        return (value - signal.rest) / (signal.peak - signal.rest)

    def _step(
        self, kp: np.ndarray, value: float, signal: Signal, sides: list[str], t: float
    ) -> dict[str, Any] | None:
        progress = self._progress(value, signal)
        if self.phase == "setup":
            if progress <= START_TOLERANCE:
                self._fidget_since = None
                if self._rest_since is None:
                    self._rest_since, self._held_rest_level = t, 0.0
                self._held_rest_level = max(self._held_rest_level, progress)
                if t - self._rest_since >= START_HOLD_S:
                    self.phase = "rest"
                    # read into the movement at rest, it is read with the jitter it had
                    self._rest_level = (
                        self._held_rest_level + REST_JITTER if self._held_rest_level > 0 else 0.0
                    )
                    self._left_rest_at = t
            else:
                # real people fidget: a short, small excursion keeps the hold going; a
                # movement into the exercise (or a long one) starts it over
                self._fidget_since = self._fidget_since if self._fidget_since is not None else t
                if progress >= PARTIAL or t - self._fidget_since > FIDGET_S:
                    self._rest_since = None
            return None
        if self.phase == "rest":
            if progress <= self._rest_level:
                self._left_rest_at = t
            elif progress >= PARTIAL:
                self.phase = "working"
                self._trace = _RepTrace(started=self._left_rest_at or t)
        if self.phase == "working":
            trace = self._trace
            assert trace is not None
            self._record(trace, kp, value, progress, sides, t)
            if progress >= 1.0:
                trace.reached_peak = True
            if progress <= self._rest_level:
                self.phase = "rest"
                self._left_rest_at = t
                self._trace = None
                if trace.reached_peak and t - trace.started >= MIN_REP_S:
                    return self._complete(trace, signal, t)
                self.half_reps += 1
                self._cue("half_rep", t)
        return None

    def _record(
        self,
        trace: _RepTrace,
        kp: np.ndarray,
        value: float,
        progress: float,
        sides: list[str],
        t: float,
    ) -> None:
        trace.values.append(value)
        trace.times.append(t)
        for side in sides:
            key = f"{side}_"
            for name, angle in self._angles.items():
                if name.startswith(key):
                    trace.sides[side].append(angle)
        if progress >= 0.6:  # knees caving matter at the bottom of the movement
            trace.add_metric("knee_width_ratio", g.knee_width_ratio(kp))
        best = self._side
        trace.add_metric("hip_sag", g.hip_sag(kp, best))
        # in profile only the limb being read: the other may be a guess
        judged = [best] if self.view == "side" else ["left", "right"]
        shoulders = [g.side_angle(kp, "shoulder", s) for s in judged]
        known = [s for s in shoulders if s is not None]
        trace.add_metric("shoulder_angle", max(known) if known else None)

    def _complete(self, trace: _RepTrace, signal: Signal, t: float) -> dict[str, Any]:
        decreasing = signal.peak < signal.rest
        values = np.asarray(trace.values)
        peak_index = int(values.argmin() if decreasing else values.argmax())
        peak = float(values[peak_index])
        metrics: dict[str, float | None] = {
            "peak_angle": peak,
            "rom": float(values.max() - values.min()),
            "duration_s": t - trace.started,
        }
        left, right = trace.sides["left"], trace.sides["right"]
        if left and right:
            extreme = min if decreasing else max
            metrics["symmetry_deg"] = abs(extreme(left) - extreme(right))
        bottom = trace.metrics.get("knee_width_ratio", [])
        metrics["knee_width_ratio_bottom"] = float(np.median(bottom)) if bottom else None
        sag = trace.metrics.get("hip_sag", [])
        metrics["hip_sag_max"] = max(sag) if sag else None
        shoulder = trace.metrics.get("shoulder_angle", [])
        metrics["shoulder_angle_max"] = max(shoulder) if shoulder else None
        broken = [
            r for r in self.exercise.rules if r.broken(metrics, self.view, self.profile.rule_slack)
        ]
        score = 100.0 - sum(r.penalty for r in broken)
        if self.exercise.reference is not None:
            score = min(score, similarity_score(self.exercise.reference, trace.values))
        self.reps += 1
        good = not broken
        self.good_reps += int(good)
        peak_time = trace.times[peak_index]
        rep: dict[str, Any] = {
            "index": self.reps,
            "score": round(max(0.0, min(100.0, score)), 1),
            "rom_deg": round(metrics["rom"] or 0.0, 1),
            "peak_angle_deg": round(peak, 1),
            "duration_s": round(t - trace.started, 2),
            "down_s": round(peak_time - trace.started, 2),
            "up_s": round(t - peak_time, 2),
            "ended_at": round(t, 3),
            "good": good,
            "errors": [r.code for r in broken],
            "view": self.view,
        }
        if metrics.get("symmetry_deg") is not None:
            rep["symmetry_deg"] = round(float(metrics["symmetry_deg"] or 0.0), 1)
        if self.exercise.kind == "range":
            reached = peak
            self.best_angle = reached if self.best_angle is None else max(self.best_angle, reached)
            rep["angle_reached_deg"] = round(reached, 1)
        self.last_rep = rep
        self.rep_results.append(rep)
        for rule in broken:
            self._cue(rule.code, t)
        return rep

    def _pause(self) -> None:
        """The person is gone or hidden too long: drop the rep in progress, wait for rest."""
        self.phase = "setup"
        self._trace = None
        self._rest_since = None
        self._last_seen = None
        for f in self._filters.values():
            f.reset()

    # ------------------------------------------------------------ holds

    def _update_hold(self, kp: np.ndarray | None, sides: list[str], t: float, dt: float) -> None:
        if kp is None:
            self.phase = "setup"
            return
        side = self._better_seen(kp, sides)
        self._side = side
        s, a = g.point(kp, f"{side}_shoulder"), g.point(kp, f"{side}_ankle")
        line = g.side_angle(kp, "body_line", side)
        posture = self.exercise.posture
        in_position = False
        if s is not None and a is not None and line is not None:
            tilt = math.degrees(math.atan2(abs(float(a[1] - s[1])), abs(float(a[0] - s[0])) + 1e-6))
            in_position = tilt <= posture.get("max_tilt_deg", 35) and line >= posture.get(
                "min_body_line", 140
            )
        self.phase = "hold" if in_position else "setup"
        sag = self._smooth("hip_sag", g.hip_sag(kp, side), t)
        self._angles = {f"{side}_body_line": round(line, 1)} if line is not None else {}
        if not in_position:
            return
        metrics = {"hip_sag": sag}
        broken = [
            r for r in self.exercise.rules if r.broken(metrics, self.view, self.profile.rule_slack)
        ]
        self.hold_total_s += dt
        if not broken:
            self.hold_good_s += dt
        codes = {r.code for r in broken}
        for rule in broken:
            if rule.code not in self._hold_rules_active:
                self._cue(rule.code, t)
            else:
                self._cues[rule.code] = t + CUE_S
        self._hold_rules_active = codes

    # ------------------------------------------------------------ feedback

    def _check_framing(self, person: bool, framed: bool, t: float) -> None:
        if person and not framed:
            self._out_of_frame_since = self._out_of_frame_since or t
            if t - self._out_of_frame_since > 1.0:
                self._framing_cue("step_back", t)
        else:
            self._out_of_frame_since = None
        if self.view is not None and self.view not in self.exercise.views:
            self._bad_view_since = self._bad_view_since or t
            if t - self._bad_view_since > 1.5:
                code = "turn_sideways" if "side" in self.exercise.views else "face_camera"
                self._framing_cue(code, t)
        else:
            self._bad_view_since = None

    def _framing_cue(self, code: str, t: float) -> None:
        """Shown while the condition lasts; counted once per episode (benchmarks count the
        cues a person was given)."""
        if self._cues.get(code, 0.0) <= t:
            self.feedback_counts[code] = self.feedback_counts.get(code, 0) + 1
        self._cues[code] = t + 0.5

    def _cue(self, code: str, t: float) -> None:
        self._cues[code] = t + CUE_S
        self.feedback_counts[code] = self.feedback_counts.get(code, 0) + 1

    def _message(self, code: str) -> dict[str, str]:
        for rule in self.exercise.rules:
            if rule.code == code:
                return rule.message
        return self._messages.get(code, {"en": code, "ko": code})

    def _snapshot(self, t: float) -> dict[str, Any]:
        self._cues = {code: until for code, until in self._cues.items() if until > t}
        codes = list(self._cues)
        if self.phase == "setup" and self.exercise.kind != "hold" and not codes:
            codes = ["get_ready"]
        return {
            **self._totals(),
            "exercise_name": self.exercise.name,
            "kind": self.exercise.kind,
            "view": self.view,
            "phase": self.phase,
            "angles": dict(self._angles),
            "feedback": [{"code": c, "message": self._message(c)} for c in codes],
            "last_rep": self.last_rep,
        }

    def _totals(self) -> dict[str, Any]:
        """What the live `analysis` and the replay summary both report."""
        totals: dict[str, Any] = {
            "exercise": self.exercise.id,
            "profile": self.profile.name,
            "reps": self.reps,
            "good_reps": self.good_reps,
            "bad_reps": self.reps - self.good_reps,
            "half_reps": self.half_reps,
        }
        if self.exercise.kind == "hold":
            totals["hold_seconds"] = round(self.hold_good_s, 2)
            totals["hold_total_seconds"] = round(self.hold_total_s, 2)
        if self.exercise.kind == "range":
            best = self.best_angle
            totals["best_angle_deg"] = None if best is None else round(best, 1)
        return totals

    def summary(self) -> dict[str, Any]:
        return {
            **self._totals(),
            "rep_scores": [r["score"] for r in self.rep_results],
            "repetitions": self.rep_results,
            "feedback_counts": dict(sorted(self.feedback_counts.items())),
        }

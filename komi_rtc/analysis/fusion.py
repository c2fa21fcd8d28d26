"""One station, one count: the reps of the view that sees the exercise best, with the form
errors every view saw, and the catalog's two-view rules.

Each camera of a station runs its own analysis (its view, its angles, its reps); this
module takes those per-view results, frame group by frame group, and decides:
- which camera counts (the "source"): the one whose view comes first in the exercise's
  `views` (a squat's depth is read best from the side), kept while it sees the person;
  another camera takes over when the source loses the person for `SOURCE_LOST_S`;
- each station rep: the source's rep, plus the errors of the other views' reps that ended
  close to it (knees caving in is seen from the front), plus `station_rules`: rules that
  need two views at once (knees caving in *at depth*: the front sees the knees, the side
  the depth).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .catalog import Exercise

SOURCE_LOST_S = 2.0  # the counting camera without a person this long: another takes over
MATCH_WINDOW_S = 0.8  # another view's rep ending this close to the source's is the same rep
HOLD_BACK_S = 0.8  # a station rep waits this long for the other views' reps, at most


@dataclass
class ViewFrame:
    """One camera's analysed frame in a station group."""

    camera_id: str
    captured: float  # server clock, seconds
    analysis: dict[str, Any] | None
    reps: list[dict[str, Any]] = field(default_factory=list)  # reps this frame completed
    person_seen: bool = True


@dataclass
class _PendingRep:
    rep: dict[str, Any]
    source: str
    view: str | None
    ended: float
    deadline: float


class StationFusion:
    def __init__(self, exercise: Exercise) -> None:
        self.exercise = exercise
        self.source: str | None = None
        self.views: dict[str, str | None] = {}
        self.reps = 0
        self.good_reps = 0
        self._last_seen: dict[str, float] = {}
        self._recent: dict[str, list[tuple[float, dict[str, Any]]]] = {}  # other views' reps
        self._pending: list[_PendingRep] = []
        self._last_counted_end = float("-inf")  # when the last station rep ended
        self._angles3d: list[tuple[float, float]] = []  # (time, the signal's 3D angle)

    def _rank(self, camera_id: str) -> tuple[int, float]:
        view = self.views.get(camera_id)
        order = self.exercise.views
        preferred = order.index(view) if view in order else len(order)
        return (preferred, -self._last_seen.get(camera_id, 0.0))

    def _choose_source(self, now: float) -> None:
        alive = [c for c, t in self._last_seen.items() if now - t <= SOURCE_LOST_S]
        if not alive:
            return
        best = min(alive, key=self._rank)
        previous = self.source
        if self.source is None or self.source not in alive:
            self.source = best
        elif self._rank(best)[0] < self._rank(self.source)[0]:
            self.source = best  # a better view appeared (its view became known)
        if previous is not None and self.source != previous:
            self._take_over(self.source, now)

    def _take_over(self, camera_id: str, now: float) -> None:
        """The new counting camera saw reps the old one missed while it was losing the
        person (it counted them too, as another view): they count now."""
        recent = self._recent.get(camera_id, [])
        missed = [(t, rep) for t, rep in recent if t > self._last_counted_end + MATCH_WINDOW_S]
        for ended, rep in missed:
            self._pending.append(_PendingRep(rep, camera_id, self.views.get(camera_id), ended, now))
        self._recent[camera_id] = [item for item in recent if item not in missed]

    def observe_angles_3d(self, t: float, angles: dict[str, Any]) -> None:
        """A calibrated station's 3D joint angles (multiview.joint_angles_3d) at time `t`:
        the exercise's side-view angle (a squat's knee), measured in 3D, judges each rep's
        depth instead of a 2D view's foreshortened one."""
        signal = self.exercise.signals.get("side")
        if signal is None or signal.angle is None:
            return
        values = [angles.get(f"{side}_{signal.angle}") for side in ("left", "right")]
        found = [float(v) for v in values if isinstance(v, (int, float))]
        if not found:
            return
        self._angles3d.append((t, min(found) if signal.rest > signal.peak else max(found)))
        while self._angles3d and t - self._angles3d[0][0] > 30.0:
            self._angles3d.pop(0)

    def _judge_in_3d(self, rep: dict[str, Any], ended: float, errors: list[str]) -> None:
        signal = self.exercise.signals.get("side")
        duration = rep.get("duration_s")
        span = float(duration) if isinstance(duration, (int, float)) else 3.0
        window = [a for t, a in self._angles3d if ended - span - 0.3 <= t <= ended + 0.1]
        if signal is None or not window:
            return
        peak = min(window) if signal.rest > signal.peak else max(window)
        rep["peak_angle_3d_deg"] = round(peak, 1)
        decided = []
        for rule in self.exercise.rules:
            if rule.metric != "peak_angle" or rule.code in decided:
                continue
            decided.append(rule.code)
            broken = (
                rule.broken({"peak_angle": peak}, None, 0.0)
                if rule.views is None
                else any(rule.broken({"peak_angle": peak}, view, 0.0) for view in rule.views)
            )
            if broken and rule.code not in errors:
                errors.append(rule.code)
            elif not broken and rule.code in errors:
                errors.remove(rule.code)
        rep["judged_in_3d"] = decided

    def update(
        self, group: list[ViewFrame], now: float
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The station's analysis for this group and the station reps now complete."""
        for frame in group:
            if frame.analysis is not None and frame.analysis.get("view"):
                self.views[frame.camera_id] = frame.analysis["view"]
            if frame.person_seen:
                self._last_seen[frame.camera_id] = frame.captured
        self._choose_source(max(f.captured for f in group))
        for frame in group:
            for rep in frame.reps:
                ended = float(rep.get("ended_at") or frame.captured)
                if frame.camera_id == self.source:
                    self._pending.append(
                        _PendingRep(
                            rep,
                            frame.camera_id,
                            self.views.get(frame.camera_id),
                            ended,
                            now + HOLD_BACK_S,
                        )
                    )
                else:
                    recent = self._recent.setdefault(frame.camera_id, [])
                    recent.append((ended, rep))
                    del recent[:-20]
        done = self._flush(now)
        source_frame = next((f for f in group if f.camera_id == self.source), None)
        analysis = self._analysis(source_frame, group)
        return analysis, done

    def _matches(self, pending: _PendingRep) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for camera_id, recent in self._recent.items():
            if camera_id == pending.source:
                continue
            near = [(abs(t - pending.ended), rep) for t, rep in recent]
            near = [item for item in near if item[0] <= MATCH_WINDOW_S]
            if near:
                found[camera_id] = min(near, key=lambda item: item[0])[1]
        return found

    def _flush(self, now: float) -> list[dict[str, Any]]:
        others = [c for c in self._last_seen if c != self.source]
        done: list[dict[str, Any]] = []
        keep: list[_PendingRep] = []
        for pending in self._pending:
            matches = self._matches(pending)
            if len(matches) < len(others) and now < pending.deadline:
                keep.append(pending)
                continue
            done.append(self._merge(pending, matches))
        self._pending = keep
        return done

    def _merge(self, pending: _PendingRep, matches: dict[str, dict[str, Any]]) -> dict[str, Any]:
        rep = dict(pending.rep)
        errors = list(rep.get("errors", []))
        seen_by = {code: [pending.source] for code in errors}
        by_view: dict[str, dict[str, Any]] = {}
        if pending.view:
            by_view[pending.view] = pending.rep
        for camera_id, other in matches.items():
            view = self.views.get(camera_id)
            if view and view not in by_view:
                by_view[view] = other
            for code in other.get("errors", []):
                seen_by.setdefault(code, []).append(camera_id)
                if code not in errors:
                    errors.append(code)
        self._judge_in_3d(rep, pending.ended, errors)
        for rule in self.exercise.station_rules:
            if rule.holds(by_view) and rule.code not in errors:
                errors.append(rule.code)
                seen_by[rule.code] = ["station"]
                rep.setdefault("messages", {})[rule.code] = rule.message
                score = rep.get("score")
                if isinstance(score, (int, float)):
                    rep["score"] = max(0.0, round(float(score) - rule.penalty, 1))
        rep["errors"] = errors
        rep["good"] = not errors
        rep["error_views"] = seen_by
        rep["views"] = {c: self.views.get(c) for c in [pending.source, *matches]}
        rep["source"] = pending.source
        self.reps += 1
        self.good_reps += 1 if rep["good"] else 0
        self._last_counted_end = max(self._last_counted_end, pending.ended)
        rep["station_index"] = self.reps
        return rep

    def _analysis(self, source: ViewFrame | None, group: list[ViewFrame]) -> dict[str, Any] | None:
        if source is None or source.analysis is None:
            # the same fields a view's analysis names its exercise by, so pages show one name
            base: dict[str, Any] = {
                "exercise": self.exercise.id,
                "exercise_name": self.exercise.name,
                "kind": self.exercise.kind,
            }
        else:
            base = dict(source.analysis)
        feedback: dict[str, Any] = {}
        for frame in group:
            for item in (frame.analysis or {}).get("feedback", []):
                feedback.setdefault(item.get("code"), item)
        base.update(
            {
                "reps": self.reps,
                "good_reps": self.good_reps,
                "bad_reps": self.reps - self.good_reps,
                "feedback": list(feedback.values()),
                "source": self.source,
                "views": dict(self.views),
                "metric_sources": self.metric_sources(),
            }
        )
        return base

    def metric_sources(self) -> dict[str, str | None]:
        """Which camera each kind of metric comes from: the choice made visible."""
        by_view: dict[str, str] = {}
        for camera_id, view in self.views.items():
            if view is not None:
                by_view.setdefault(view, camera_id)
        return {
            "reps": self.source,
            "depth": by_view.get("side", self.source),
            "hip_hinge": by_view.get("side", self.source),
            "symmetry": by_view.get("front", self.source),
            "knee_tracking": by_view.get("front"),
        }

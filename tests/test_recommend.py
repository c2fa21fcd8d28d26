"""The recommender: a starter plan with no history, each rule firing on a small hand-made
history with a reason naming its evidence in English and Korean, clear errors for a bad
rules file, and the persona bench above its floors in a short run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from komi_rtc.analysis.catalog import default_catalog
from komi_rtc.coaching import RulesError, load_rules, parse_rules, recommend
from komi_rtc.coaching.rules import RULES_FILE

NOW = 1_780_000_000.0
DAY = 86400.0
CATALOG = default_catalog()


def served_set(
    exercise: str,
    hours_ago: float,
    reps: int = 10,
    bad: dict[str, int] | None = None,
    profile: str = "standard",
    score_bad: float = 70.0,
    angle: float | None = None,
    hold_seconds: float = 0.0,
) -> dict:
    """One set as `GET /people/{person}/sets` serves it; `bad` = {code: reps with it}."""
    bad = bad or {}
    kind = CATALOG.exercises[exercise].kind
    n_bad = max(bad.values(), default=0)
    details = [
        {
            "index": i + 1,
            "score": score_bad if i < n_bad else 100.0,
            "rom_deg": 60.0,
            "peak_angle_deg": angle if angle is not None else 90.0,
            "duration_s": 2.0,
            "good": i >= n_bad,
            "errors": [code for code, n in bad.items() if i < n],
        }
        for i in range(reps)
    ]
    started = NOW - hours_ago * 3600
    return {
        "id": int(started),
        "exercise": exercise,
        "profile": profile,
        "camera_id": "cam",
        "started_at": started,
        "ended_at": started + 60,
        "reps": reps,
        "good_reps": reps - n_bad,
        "half_reps": 0,
        "mean_score": (sum(d["score"] for d in details) / reps) if reps else None,
        "errors": {code: n for code, n in bad.items() if n},
        "reps_detail": details,
        "kind": kind,
        "hold_seconds": hold_seconds,
        "best_rom_deg": angle,
    }


def items_by_rule(result: dict) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for item in result["items"]:
        grouped.setdefault(item["rule"], []).append(item)
    return grouped


def test_no_history_gets_a_beginner_starter_plan_across_muscle_groups():
    for sets in ([], None, [{"exercise": "nope"}, "junk", {"exercise": "squat"}]):
        result = recommend("ana", sets, CATALOG, NOW)  # type: ignore[arg-type]
        assert result["person"] == "ana" and result["generated_at"] == NOW
        assert len(result["items"]) >= 3
        for item in result["items"]:
            assert item["profile"] == "beginner" and item["sets"] >= 1
            assert ("reps" in item) != ("hold_s" in item)
            assert "No sets recorded yet" in item["reason"]["en"]
            assert "기록된 세트가 없습니다" in item["reason"]["ko"]
        assert {i["exercise"] for i in result["items"]} >= {"squat", "push_up", "plank"}


def test_old_history_restarts_gently():
    result = recommend("ana", [served_set("squat", 24 * 60)], CATALOG, NOW)
    assert {i["rule"] for i in result["items"]} == {"starter"}
    assert "60 days ago" in result["items"][0]["reason"]["en"]
    assert "60일 전" in result["items"][0]["reason"]["ko"]


def test_clean_sets_progress_with_the_evidence_named():
    sets = [served_set("squat", 24 * d) for d in (1, 3, 5)]
    item = items_by_rule(recommend("ana", sets, CATALOG, NOW))["progress"][0]
    assert item["exercise"] == "squat" and item["reps"] == 12
    assert item["reason"]["en"] == (
        "Your last 3 Squat sets were all clean (30 of 30 reps good, mean score 100): "
        "go to 1 × 12 reps."
    )
    assert "스쿼트 3세트" in item["reason"]["ko"] and "12회" in item["reason"]["ko"]


def test_clean_sets_at_the_top_reps_move_to_a_stricter_profile():
    sets = [served_set("push_up", 24 * d, reps=15) for d in (1, 3, 5)]
    item = items_by_rule(recommend("ana", sets, CATALOG, NOW))["progress"][0]
    assert item["profile"] == "strict" and item["reps"] == 10
    assert "strict profile" in item["reason"]["en"] and "엄격 프로필" in item["reason"]["ko"]


def test_broken_form_regresses_and_recurring_depth_errors_get_glute_bridges():
    sets = [served_set("squat", 24 * d, bad={"shallow": 7}) for d in (1, 3, 5)]
    grouped = items_by_rule(recommend("ana", sets, CATALOG, NOW))
    regress = grouped["regress"][0]
    assert regress["exercise"] == "squat" and regress["profile"] == "beginner"
    assert "only 9 of 30 reps were good (mean score 79)" in regress["reason"]["en"]
    assert "Squat deeper" in regress["reason"]["en"]
    assert (
        "30회 중 9회" in regress["reason"]["ko"] and "더 깊이 앉으세요" in regress["reason"]["ko"]
    )
    accessory = grouped["accessory"][0]
    assert accessory["exercise"] == "glute_bridge"
    assert accessory["addresses"] == {"exercise": "squat", "error": "shallow"}
    assert "came up in 21 of 30 reps of your last 3 Squat sets" in accessory["reason"]["en"]
    assert "30회 중 21회" in accessory["reason"]["ko"]


def test_one_set_of_one_rep_reads_in_the_singular_with_the_right_korean_particles():
    item = items_by_rule(recommend("ana", [served_set("push_up", 24, reps=1)], CATALOG, NOW))
    keep, variety = item["keep"][0], item["variety"][0]
    assert keep["reason"]["en"].startswith(
        "1 of 1 rep good in your last 1 Push-up set (mean score 100): stay at 1 × 5 reps "
    )
    assert "5회 × 1세트를 유지한 뒤" in keep["reason"]["ko"]  # not "을(를)"
    assert variety["reason"]["ko"].endswith("스쿼트를 추가하세요, 8회 × 3세트.")
    plank = [served_set("plank", 24, reps=0, bad={"hips_sag": 1}, hold_seconds=25)]
    plank[0]["mean_score"], plank[0]["reps_detail"] = None, []
    keep = items_by_rule(recommend("ana", plank, CATALOG, NOW))["keep"][0]
    assert keep["reason"]["en"] == (
        "Your last 1 Plank hold averaged 25 s in good form with 1 form cue: stay at 1 × 25 s hold."
    )
    squat = [served_set("squat", 24, reps=1), served_set("push_up", 30, reps=1)]
    variety = items_by_rule(recommend("ana", squat, CATALOG, NOW))["variety"][0]
    assert "바이셉 컬을 추가하세요" in variety["reason"]["ko"]  # 컬: a final consonant


def test_regression_at_beginner_lowers_the_reps():
    sets = [
        served_set("bicep_curl", 24 * d, reps=12, bad={"elbows_flare": 8}, profile="beginner")
        for d in (1, 3)
    ]
    item = items_by_rule(recommend("ana", sets, CATALOG, NOW))["regress"][0]
    assert item["profile"] == "beginner" and item["reps"] == 9
    assert "Keep your elbows at your sides" in item["reason"]["en"]


def test_range_goal_is_a_step_beyond_the_recent_best():
    sets = [served_set("shoulder_flexion", 24 * d, angle=a) for d, a in ((1, 128), (2, 132.4))]
    item = items_by_rule(recommend("ana", sets, CATALOG, NOW))["range_goal"][0]
    assert item["exercise"] == "shoulder_flexion" and item["goal_rom_deg"] == 137
    assert "reached 132°: next goal 137°" in item["reason"]["en"]
    assert "132°" in item["reason"]["ko"] and "137°" in item["reason"]["ko"]


def test_range_goal_reads_the_sets_best_when_reps_carry_no_angle():
    sets = [served_set("shoulder_flexion", 24, angle=110)]
    sets[0]["reps_detail"] = []
    item = items_by_rule(recommend("ana", sets, CATALOG, NOW))["range_goal"][0]
    assert item["goal_rom_deg"] == 115 and item["best_angle_deg"] == 110


def test_a_high_volume_day_gets_a_rest_day():
    sets = [served_set("jumping_jack", 2 + i * 0.1, reps=40) for i in range(8)]
    result = recommend("ana", sets, CATALOG, NOW)
    assert {i["rule"] for i in result["items"]} == {"rest"}
    assert "320 reps in 8 sets in the last 24 hours" in result["items"][0]["reason"]["en"]
    assert "8세트 320회" in result["items"][0]["reason"]["ko"]


def test_scores_falling_through_the_day_get_a_rest_day():
    # nine sets in the last 24 h: clean at first, broken at the end
    sets = [served_set("squat", 3 + i * 0.2, bad={"shallow": 8 if i < 3 else 0}) for i in range(9)]
    result = recommend("ana", sets, CATALOG, NOW)
    assert {i["rule"] for i in result["items"]} == {"rest"}
    reason = result["items"][0]["reason"]
    assert "from 100 in your first sets to 76 in your last" in reason["en"]
    assert "100점에서" in reason["ko"] and "76점으로" in reason["ko"]


def test_an_untrained_muscle_group_is_suggested():
    sets = [served_set(e, 24 * d) for d in (1, 3) for e in ("squat", "push_up")]
    item = items_by_rule(recommend("ana", sets, CATALOG, NOW))["variety"][0]
    assert item["exercise"] == "bicep_curl" and item["profile"] == "beginner"
    assert "not trained your arms in the last 14 days" in item["reason"]["en"]
    assert "14일 동안 팔 운동" in item["reason"]["ko"]


def test_no_strength_variety_during_range_therapy():
    sets = [served_set("shoulder_flexion", 24 * d, angle=120) for d in (1, 2)]
    sets.append(served_set("glute_bridge", 30))
    rules = {i["rule"] for i in recommend("ana", sets, CATALOG, NOW)["items"]}
    assert "variety" not in rules and "range_goal" in rules


def test_a_recurring_plank_sag_gets_glute_bridges():
    sets = [
        served_set("plank", 24 * d, reps=0, bad={"hips_sag": 3}, hold_seconds=25) for d in (1, 3)
    ]
    for s in sets:
        s["mean_score"], s["reps_detail"] = None, []
    grouped = items_by_rule(recommend("ana", sets, CATALOG, NOW))
    assert grouped["accessory"][0]["exercise"] == "glute_bridge"
    assert "came up 6 times in your last 2 Plank holds" in grouped["accessory"][0]["reason"]["en"]
    assert grouped["regress"][0]["exercise"] == "plank" and "hold_s" in grouped["regress"][0]


def test_odd_entries_are_skipped_not_raised_on():
    odd = [
        {"exercise": "squat", "started_at": "yesterday"},
        {"exercise": "squat", "started_at": NOW - 3600, "reps": None, "errors": [1, 2]},
        {"exercise": "squat", "started_at": NOW + DAY, "reps": 999},  # in the future
        {"exercise": "shoulder_flexion", "started_at": NOW - 3600, "reps": 3, "reps_detail": [{}]},
        served_set("squat", 5),
    ]
    result = recommend("ana", odd, CATALOG, NOW)
    assert result["items"] and all(item["reason"]["en"] for item in result["items"])


def rules_data() -> dict:
    return json.loads(RULES_FILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.pop("recent_sets"), "recent_sets: missing"),
        (lambda d: d["rest"].update(max_reps="many"), "rest.max_reps: must be a number"),
        (
            lambda d: d["progression"]["reason"]["reps"].update(en="{bogus} sets"),
            "progression.reason.reps.en: unknown placeholder(s) ['bogus']",
        ),
        (
            lambda d: d["variety"]["reason"].update(ko="{exercise:을/룰} 추가하세요"),
            "variety.reason.ko: {exercise:을/룰}: unknown particle pair",
        ),
        (
            lambda d: d["variety"]["reason"].update(en="add {exercise:rep}"),
            "variety.reason.en: {exercise:rep}: unknown format",
        ),
        (lambda d: d["starter"].update(profile="heroic"), "starter.profile: must be one of"),
        (lambda d: d["accessories"]["map"][0].pop("why"), "accessories.map[0].why: missing"),
        (
            lambda d: d["starter"]["items"][0].pop("reps"),
            "starter.items[0]: needs exactly one of 'reps' and 'hold_s'",
        ),
    ],
)
def test_a_bad_rules_file_gives_a_clear_error(tmp_path, change, expected):
    data = rules_data()
    change(data)
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(RulesError) as raised:
        load_rules(path)
    assert str(path) in str(raised.value) and expected in str(raised.value)


def test_rules_naming_what_the_catalog_lacks_are_refused(tmp_path):
    data = rules_data()
    data["accessories"]["map"][0]["error"] = "wobbly"
    with pytest.raises(RulesError, match="'squat' has no error code 'wobbly'"):
        parse_rules(data, "r.json").check(CATALOG)
    data = rules_data()
    data["variety"]["choice"]["legs"] = "moonwalk"
    with pytest.raises(RulesError, match="variety.choice.legs: unknown exercise 'moonwalk'"):
        parse_rules(data, "r.json").check(CATALOG)
    path = tmp_path / "broken.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(RulesError, match="broken.json"):
        load_rules(path)


# Floors for the short, seeded bench run below (4 people a persona over 60 days): each
# persona's precision (the share of recommendations that address its need and raise no false
# alarm) must reach 0.9, the overtrainer's 0.75. The full run (20 people over 120 days) gives
# 0.99-1.0 for the others and 0.87 for the overtrainer, whose need is a hidden fatigue
# threshold that the rules can only estimate from one day's volume and falling scores, so
# mornings near the threshold go either way (this short run gives it 0.83). A rule that
# stopped firing drops its persona below these floors: to 0 for the athlete, squat-depth and
# rehab personas, about 0.3 for the overtrainer, 0.7 for the newcomer.
SHORT_RUN_FLOORS = {"overtrainer": 0.75}
DEFAULT_FLOOR = 0.9


@pytest.mark.bench
def test_persona_bench_short_run_meets_the_floors(tmp_path):
    out = tmp_path / "recommend.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "komi_rtc.bench.recommend",
            "--people",
            "4",
            "--days",
            "60",
            "--seed",
            "3",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    table = report["table"]
    assert set(table) == {
        "athlete",
        "squat_depth",
        "shoulder_rehab",
        "overtrainer",
        "regular",
        "newcomer",
    }
    for persona, row in table.items():
        assert row["cases"] > 0, persona
        assert row["precision"] >= SHORT_RUN_FLOORS.get(persona, DEFAULT_FLOOR), (persona, row)
    assert table["newcomer"]["need_cases"] > 0 and table["newcomer"]["recall"] == 1.0
    assert "| athlete |" in result.stdout

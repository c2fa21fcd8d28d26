"""Plurals and Korean particles: the server's messages (komi_rtc/coaching/wording.py) and the
pages' (web/wording.js, run in node) choose the same words for the same cases."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from komi_rtc.coaching.wording import fill, final_consonant, plural, with_particle

WEB = Path(__file__).resolve().parent.parent / "web"

# (word, 을/를, 이/가, 으로/로): a final consonant takes the first form, a vowel the second;
# 으로/로 takes 로 after ㄹ too
PARTICLE_CASES = [
    ("푸시업", "푸시업을", "푸시업이", "푸시업으로"),
    ("스쿼트", "스쿼트를", "스쿼트가", "스쿼트로"),
    ("바이셉 컬", "바이셉 컬을", "바이셉 컬이", "바이셉 컬로"),  # ㄹ
    ("8회 × 1세트", "8회 × 1세트를", "8회 × 1세트가", "8회 × 1세트로"),
    ("런지 (왼발 앞)", "런지 (왼발 앞)를", "런지 (왼발 앞)가", "런지 (왼발 앞)로"),  # 런지
    ('"플랭크"', '"플랭크"를', '"플랭크"가', '"플랭크"로'),
    ("1", "1을", "1이", "1로"),  # 일
    ("2", "2를", "2가", "2로"),  # 이
    ("3", "3을", "3이", "3으로"),  # 삼
    ("6", "6을", "6이", "6으로"),  # 육
    ("10", "10을", "10이", "10으로"),  # 십
    ("100", "100을", "100이", "100으로"),  # 백
    ("20000", "20000을", "20000이", "20000으로"),  # 만
    ("0", "0을", "0이", "0으로"),  # 영
    ("2.5", "2.5를", "2.5가", "2.5로"),  # 이 점 오
    ("137°", "137°를", "137°가", "137°로"),  # 도
    ("camera_12345", "camera_12345를", "camera_12345가", "camera_12345로"),
    ("gym", "gym을", "gym이", "gym으로"),  # 짐
    ("ball", "ball을", "ball이", "ball로"),  # 볼
    ("squat", "squat를", "squat가", "squat로"),  # 스쿼트
    ("?", "?을(를)", "?이(가)", "?으로(로)"),  # nothing to read: both
]

PLURAL_CASES = [
    (1, "# rep|# reps", "1 rep"),
    (2, "# rep|# reps", "2 reps"),
    (0, "# rep|# reps", "0 reps"),
    ("1", "# form cue|# form cues", "1 form cue"),
    ("1.5", "# form cue|# form cues", "1.5 form cues"),
    (1, "set was|sets were", "set was"),
    (3, "set was|sets were", "sets were"),
    (1, "once|# times", "once"),
    (6, "once|# times", "6 times"),
    ("-", "# rep|# reps", "- reps"),
]

FILL_CASES = [
    ("{sets} × {reps:# rep|# reps}", {"sets": 1, "reps": 1}, "1 × 1 rep"),
    ("your last {sets} {exercise} {sets:set|sets}", {"sets": 1, "exercise": "Squat"},
     "your last 1 Squat set"),
    ("{accessory:을/를} 추가하세요", {"accessory": "푸시업"}, "푸시업을 추가하세요"),
    ("{target:으로/로} 올리세요", {"target": "12회 × 3세트"}, "12회 × 3세트로 올리세요"),
    ("{cameras:을/를} 기다리는 중", {"cameras": "cam_a, cam_7"}, "cam_a, cam_7을 기다리는 중"),
]  # fmt: skip


@pytest.mark.parametrize(("word", "eul", "i", "euro"), PARTICLE_CASES)
def test_korean_particles_follow_the_last_sound_of_the_word(word, eul, i, euro):
    assert with_particle(word, "을/를") == eul
    assert with_particle(word, "를/을") == eul  # either order
    assert with_particle(word, "이/가") == i
    assert with_particle(word, "으로/로") == euro


def test_final_consonants_of_hangul_syllables():
    assert final_consonant("가") == 0 and final_consonant("각") == 1 and final_consonant("갈") == 8
    assert final_consonant("힣") == 27 and final_consonant("") is None


@pytest.mark.parametrize(("value", "forms", "expected"), PLURAL_CASES)
def test_english_plurals_follow_the_number(value, forms, expected):
    assert plural(value, forms) == expected


@pytest.mark.parametrize(("template", "values", "expected"), FILL_CASES)
def test_templates_fill_plurals_and_particles(template, values, expected):
    assert fill(template, **values) == expected


def _node() -> str | None:
    """node, else the one Playwright ships its driver with."""
    found = shutil.which("node")
    if found:
        return found
    try:
        import playwright
    except ImportError:
        return None
    bundled = Path(playwright.__file__).parent / "driver" / "node"
    return str(bundled) if bundled.exists() else None


def test_the_pages_choose_the_same_words():
    node = _node()
    if node is None:
        pytest.skip("no node to run web/wording.js")
    cases = {"particles": PARTICLE_CASES, "plurals": PLURAL_CASES, "fills": FILL_CASES}
    script = """
const { withParticle, plural, fill } = await import(process.argv[1]);
const cases = JSON.parse(process.argv[2]);
const out = {
  particles: cases.particles.map(([word]) =>
    [word, withParticle(word, '을/를'), withParticle(word, '이/가'), withParticle(word, '으로/로')]),
  plurals: cases.plurals.map(([value, forms]) => [value, forms, plural(value, forms)]),
  fills: cases.fills.map(([template, values]) => [template, values, fill(template, values)]),
};
console.log(JSON.stringify(out));
"""
    result = subprocess.run(
        [
            node,
            "--input-type=module",
            "-e",
            script,
            (WEB / "wording.js").as_uri(),
            json.dumps(cases),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got["particles"] == [list(case) for case in PARTICLE_CASES]
    assert got["plurals"] == [list(case) for case in PLURAL_CASES]
    assert got["fills"] == [list(case) for case in FILL_CASES]

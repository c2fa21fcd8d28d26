"""Words that depend on a number or on the word before them, in message templates.

The coaching messages (rules.json) are `str.format` templates; two kinds of field spec
choose words there (web/wording.js does the same for the pages):

- `{n:one|other}`: English number agreement: `one` when n is 1, else `other`, and `#` in
  the chosen form stands for n: `{reps:# rep|# reps}` gives "1 rep" and "8 reps",
  `{sets:set was|sets were}` "set was" and "sets were".
- `{word:을/를}` (also 이/가, 은/는, 과/와, 으로/로, 이나/나, 이랑/랑, 아/야, either order):
  the word followed by the Korean particle its last syllable takes: the first form after a
  final consonant (받침), the second after a vowel; 으로/로 takes 로 after ㄹ too.

A Korean word's last sound is read from its last Hangul syllable; a parenthesis at the end
is passed over (the particle agrees with the word before it: "런지 (왼발 앞)" reads 런지),
and so are closing quotes. Digits are read as Korean numbers ("1" 일, "2" 이, "10" 십, "100"
백), "°" as 도 and "%" as 퍼센트; a Latin word's l, m or n is read as a final consonant (ㄹ,
ㅁ, ㄴ: "gym" 짐) and any other letter as a vowel. A word with nothing to read ("", "?")
gets both forms, "을(를)", as Korean writers do when they cannot know.
"""

from __future__ import annotations

import re
import string
from typing import Any

# Final consonants (종성 index of a Hangul syllable: (code - 0xAC00) % 28); 0 is none.
_NONE, _GIYEOK, _NIEUN, _RIEUL, _MIEUM, _BIEUP, _IEUNG = 0, 1, 4, 8, 16, 17, 21
_HANGUL_FIRST, _HANGUL_LAST = 0xAC00, 0xD7A3

# The final sound of the last digit as read in Korean: 영 일 이 삼 사 오 육 칠 팔 구.
_DIGIT_FINAL = (_IEUNG, _RIEUL, _NONE, _MIEUM, _NONE, _NONE, _GIYEOK, _RIEUL, _RIEUL, _NONE)
# A whole number ending in zeros is read by its last unit: 십, 백, 천, 만 (and 억 past it;
# every one of them ends in a consonant other than ㄹ).
_UNIT_FINAL = {1: _BIEUP, 2: _GIYEOK, 3: _NIEUN}
_LATIN_FINAL = {"l": _RIEUL, "m": _MIEUM, "n": _NIEUN}
_SYMBOL_FINAL = {"°": _NONE, "%": _NONE}  # 도, 퍼센트
_CLOSING_QUOTES = "\"'”’」』》〉"
_NUMBER_AT_END = re.compile(r"(\d+)(?:\.(\d+))?$")

# (after a final consonant, after a vowel); each pair may be written in either order
_PAIRS = (
    ("을", "를"),
    ("이", "가"),
    ("은", "는"),
    ("과", "와"),
    ("으로", "로"),
    ("이나", "나"),
    ("이랑", "랑"),
    ("아", "야"),
)
PARTICLES: dict[str, tuple[str, str]] = {
    f"{first}/{second}": (consonant, vowel)
    for consonant, vowel in _PAIRS
    for first, second in ((consonant, vowel), (vowel, consonant))
}


def _reading_end(word: str) -> str:
    """`word` without what a reader passes over at its end: spaces, closing quotes and a
    parenthesis (unless the word is nothing but the parenthesis)."""
    text = word.rstrip()
    while text:
        last = text[-1]
        if last in _CLOSING_QUOTES:
            text = text[:-1].rstrip()
        elif last in ")]":
            opening = text.rfind("(" if last == ")" else "[")
            before = text[:opening].rstrip() if opening > 0 else ""
            text = before or text[opening + 1 : -1].rstrip()
        else:
            break
    return text


def final_consonant(word: str) -> int | None:
    """The final consonant the word ends with when read in Korean, as a 종성 index (0: ends
    in a vowel, 8: ㄹ), or None when nothing can be read (no letter, digit or Hangul)."""
    text = _reading_end(word)
    if not text:
        return None
    last = text[-1]
    code = ord(last)
    if _HANGUL_FIRST <= code <= _HANGUL_LAST:
        return (code - _HANGUL_FIRST) % 28
    if last in _SYMBOL_FINAL:
        return _SYMBOL_FINAL[last]
    number = _NUMBER_AT_END.search(text)
    if number is not None:
        whole, fraction = number.groups()
        if fraction is None and whole.strip("0") and whole.endswith("0"):
            zeros = len(whole) - len(whole.rstrip("0"))
            return _UNIT_FINAL.get(zeros, _NIEUN)
        return _DIGIT_FINAL[int((fraction or whole)[-1])]
    if last.isascii() and last.isalpha():
        return _LATIN_FINAL.get(last.lower(), _NONE)
    return None


def with_particle(word: str, pair: str) -> str:
    """`word` followed by the particle of `pair` ("을/를", a key of PARTICLES) it takes:
    with_particle("푸시업", "을/를") == "푸시업을", with_particle("8회 × 1세트", "을/를")
    == "8회 × 1세트를"."""
    after_consonant, after_vowel = PARTICLES[pair]
    final = final_consonant(word)
    if final is None:
        return f"{word}{after_consonant}({after_vowel})"
    if final == _NONE or (final == _RIEUL and after_vowel == "로"):
        return word + after_vowel
    return word + after_consonant


def plural(value: Any, forms: str) -> str:
    """The `one|other` form for the number `value` (a number or its text), with `#`
    replaced by it: plural(1, "# rep|# reps") == "1 rep". Text that is not a number takes
    the `other` form."""
    one, _, other = forms.partition("|")
    try:
        singular = float(value) == 1
    except (TypeError, ValueError):
        singular = False
    return (one if singular else other).replace("#", format(value))


def spec_problem(spec: str) -> str | None:
    """Why `spec` (a field's format spec in a message) is not one this module reads, or
    None: a rules file with a misspelt particle pair is refused, not shown wrong."""
    if not spec or "|" in spec or spec in PARTICLES:
        return None
    if "/" in spec:
        return f"unknown particle pair {spec!r}; known: {sorted(PARTICLES)}"
    try:
        format(0, spec)
    except ValueError:
        return f"unknown format {spec!r}: give 'one|other' or a particle pair such as '을/를'"
    return None


class _WordFormatter(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> Any:
        if "|" in format_spec:
            return plural(value, format_spec)
        if format_spec in PARTICLES:
            return with_particle(format(value), format_spec)
        return super().format_field(value, format_spec)


_FORMATTER = _WordFormatter()


def fill(template: str, **values: Any) -> str:
    """`template.format(**values)` that also reads the plural and particle specs above."""
    return _FORMATTER.vformat(template, (), values)

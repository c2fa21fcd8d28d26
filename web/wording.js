// Words that depend on a number or on the word before them, in UI text templates; the same
// rules as the server's messages (komi_rtc/coaching/wording.py, whose docstring explains them):
//   {n:one|other}  English number agreement, # standing for n: {reps:# rep|# reps}
//   {word:을/를}   the word and the Korean particle its last sound takes (이/가, 은/는, 과/와,
//                  으로/로, 이나/나, 이랑/랑, 아/야 too, either order)
// No DOM here, so node can test it.

const NONE = 0, GIYEOK = 1, NIEUN = 4, RIEUL = 8, MIEUM = 16, BIEUP = 17, IEUNG = 21;
const HANGUL_FIRST = 0xac00, HANGUL_LAST = 0xd7a3;
// the final sound of a digit read in Korean: 영 일 이 삼 사 오 육 칠 팔 구
const DIGIT_FINAL = [IEUNG, RIEUL, NONE, MIEUM, NONE, NONE, GIYEOK, RIEUL, RIEUL, NONE];
// a whole number ending in zeros is read by its last unit: 십, 백, 천, then 만 (and 억)
const UNIT_FINAL = { 1: BIEUP, 2: GIYEOK, 3: NIEUN };
const LATIN_FINAL = { l: RIEUL, m: MIEUM, n: NIEUN };
const SYMBOL_FINAL = { '°': NONE, '%': NONE };
const CLOSING_QUOTES = '"\'”’」』》〉';

// [after a final consonant, after a vowel]
const PAIRS = [['을', '를'], ['이', '가'], ['은', '는'], ['과', '와'], ['으로', '로'], ['이나', '나'],
  ['이랑', '랑'], ['아', '야']];
export const PARTICLES = Object.fromEntries(PAIRS.flatMap(([consonant, vowel]) => [
  [`${consonant}/${vowel}`, [consonant, vowel]], [`${vowel}/${consonant}`, [consonant, vowel]],
]));

// The word without what a reader passes over at its end: spaces, closing quotes, and a
// parenthesis (the particle agrees with the word before it).
function readingEnd(word) {
  let text = word.trimEnd();
  while (text) {
    const last = text[text.length - 1];
    if (CLOSING_QUOTES.includes(last)) {
      text = text.slice(0, -1).trimEnd();
    } else if (last === ')' || last === ']') {
      const opening = text.lastIndexOf(last === ')' ? '(' : '[');
      const before = opening > 0 ? text.slice(0, opening).trimEnd() : '';
      text = before || text.slice(opening + 1, -1).trimEnd();
    } else {
      break;
    }
  }
  return text;
}

// The final consonant of the word read in Korean (0: a vowel, 8: ㄹ), or null if nothing
// can be read.
export function finalConsonant(word) {
  const text = readingEnd(String(word));
  if (!text) return null;
  const last = text[text.length - 1];
  const code = last.charCodeAt(0);
  if (code >= HANGUL_FIRST && code <= HANGUL_LAST) return (code - HANGUL_FIRST) % 28;
  if (last in SYMBOL_FINAL) return SYMBOL_FINAL[last];
  const number = /(\d+)(?:\.(\d+))?$/.exec(text);
  if (number) {
    const [, whole, fraction] = number;
    if (fraction === undefined && /[1-9]/.test(whole) && whole.endsWith('0')) {
      const zeros = whole.length - whole.replace(/0+$/, '').length;
      return UNIT_FINAL[zeros] ?? NIEUN;
    }
    const digits = fraction ?? whole;
    return DIGIT_FINAL[Number(digits[digits.length - 1])];
  }
  if (/[A-Za-z]/.test(last)) return LATIN_FINAL[last.toLowerCase()] ?? NONE;
  return null;
}

// The word and the particle of `pair` ('을/를') it takes: withParticle('푸시업', '을/를') is '푸시업을'.
export function withParticle(word, pair) {
  const [afterConsonant, afterVowel] = PARTICLES[pair];
  const final = finalConsonant(word);
  if (final === null) return `${word}${afterConsonant}(${afterVowel})`;
  if (final === NONE || (final === RIEUL && afterVowel === '로')) return `${word}${afterVowel}`;
  return `${word}${afterConsonant}`;
}

// The `one|other` form for the number `value`, # replaced by it: plural(1, '# rep|# reps') is '1 rep'.
export function plural(value, forms) {
  const bar = forms.indexOf('|');
  const text = String(value).trim();
  const singular = text !== '' && Number(text) === 1;
  return (singular ? forms.slice(0, bar) : forms.slice(bar + 1)).replaceAll('#', String(value));
}

// A template with {name}, {name:one|other} and {name:을/를} fields filled from `values`; a
// field without a value stays as written.
export function fill(template, values) {
  return template.replace(/\{(\w+)(?::([^{}]*))?\}/g, (whole, name, spec) => {
    if (!(name in values)) return whole;
    const value = values[name];
    if (spec === undefined || spec === '') return String(value);
    if (spec.includes('|')) return plural(value, spec);
    if (spec in PARTICLES) return withParticle(String(value), spec);
    return String(value);
  });
}

"""Rules that decide what an answer states: a gender, a language, a transcript, a sound, a pace, a format.

One vocabulary per fact, used by the data pipeline's grounding checks (:mod:`desta.data.grounding`)
and by the desta-tiny recipe's held-out probes (:mod:`desta.recipes.tiny.probes`). Benchmark scoring
(IFEval and its speech variants) follows each benchmark's official code in :mod:`desta.eval` instead.

Words are matched whole (so "male" never matches inside "female"), case-insensitively:

* **gender**: :data:`GENDER_NOUNS` (the union of the two lists this module replaced) name a gender;
  :data:`GENDER_PRONOUNS` count only as a *positive* statement of the probe's gold gender, because
  "her" or "he" also appear in answers about other people. Words of a transcript quoted in the answer
  are not statements about the speaker.
* **language**: :data:`LANGUAGES` maps ISO 639-1 codes to English names; the reverse map
  :data:`LANGUAGE_CODES` (plus :data:`LANGUAGE_ALIASES`) reads names back.
* **transcript**: :func:`transcript_recall` counts words, or characters for scripts written without
  spaces (Chinese, Japanese, Thai, ...); :func:`score_content` is the probes' coarser rule.
* **format**: :data:`FORMAT_CHECKS`, IFEval-style constraints the tiny recipe appends to questions.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

# ------------------------------------------------------------------ words
_WORD = re.compile(r"[a-z']+")  # apostrophes kept: "don't" is one 5-letter word for score_content
_LETTERS = re.compile(r"[a-z]+")  # apostrophes split: "woman's" states "woman"


def words(text: str) -> list[str]:
    """Lower-cased Latin words, apostrophes kept (``"Don't go"`` -> ``["don't", "go"]``)."""
    return _WORD.findall(text.lower())


def mentions(text: str, *names: str) -> bool:
    """True when ``text`` holds one of ``names`` as a whole word (so "male" does not match "female")."""
    have = set(words(text))
    return any(n in have for n in names)


# ------------------------------------------------------------------ gender
#: Nouns and adjectives that name the speaker's gender: the union of the probe's and the grounding
#: check's former lists (the probe lacked gentleman/masculine/feminine, the grounding check lacked guy).
GENDER_NOUNS: dict[str, tuple[str, ...]] = {
    "male": ("male", "man", "men", "boy", "guy", "gentleman", "masculine"),
    "female": ("female", "woman", "women", "girl", "lady", "feminine"),
}
#: Pronouns: a positive statement of the gold gender in the probes, never a contradiction.
GENDER_PRONOUNS: dict[str, tuple[str, ...]] = {"male": ("he", "his"), "female": ("she", "her")}


def _without(text: str, part: str) -> str:
    return re.sub(re.escape(part.strip()), " ", text, flags=re.I) if part.strip() else text


def stated_gender(answer: str, transcript: str = "", *, pronouns: bool = False) -> set[str]:
    """Genders the answer names (``{"male"}``, ``{"female"}``, both or none).

    Words of ``transcript`` quoted in the answer do not count; with ``pronouns`` he/his/she/her count too.
    """
    found = set(_LETTERS.findall(_without(answer, transcript).lower()))
    out = set()
    for gender, nouns in GENDER_NOUNS.items():
        names = nouns + GENDER_PRONOUNS[gender] if pronouns else nouns
        if found & set(names):
            out.add(gender)
    return out


def score_gender(answer: str, gold: str, transcript: str = "") -> bool:
    """The answer names the gold gender (pronouns count) and no noun of the other one.

    ``gold`` starting with "f" means female, anything else male (the corpus labels are Female/Male).
    """
    key = "female" if gold.strip().lower().startswith("f") else "male"
    other = "male" if key == "female" else "female"
    return key in stated_gender(answer, transcript, pronouns=True) and other not in stated_gender(
        answer, transcript
    )


# ------------------------------------------------------------------ language
#: ISO 639-1 code -> English name: every language a corpus, recipe or probe here names.
LANGUAGES: dict[str, str] = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
    "pl": "Polish",
    "ru": "Russian",
    "zh": "Chinese",
    "ja": "Japanese",
    "ko": "Korean",
    "hi": "Hindi",
    "ar": "Arabic",
    "ur": "Urdu",
    "ro": "Romanian",
    "ca": "Catalan",
    "bg": "Bulgarian",
    "be": "Belarusian",
    "el": "Greek",
    "da": "Danish",
    "lt": "Lithuanian",
}
#: Other names corpora use for a language in the table.
LANGUAGE_ALIASES: dict[str, str] = {"mandarin": "zh"}
#: Lower-cased English name (or alias) -> ISO code, derived from the two tables above.
LANGUAGE_CODES: dict[str, str] = {**{n.lower(): c for c, n in LANGUAGES.items()}, **LANGUAGE_ALIASES}


def language_code(value: str) -> str | None:
    """``"English"``/``"mandarin"`` -> its code, a 2-3 letter code -> itself (lower-cased), else ``None``."""
    text = value.strip().lower()
    if text in LANGUAGE_CODES:
        return LANGUAGE_CODES[text]
    if 2 <= len(text) <= 3 and text.isalpha():
        return text
    return None


def states_language(answer: str, language: str) -> bool:
    """The answer names ``language`` (an ISO code from :data:`LANGUAGES` or a name) as a whole word."""
    name = LANGUAGES.get(language.strip().lower(), language.strip())
    return bool(name) and re.search(rf"\b{re.escape(name)}\b", answer, re.I) is not None


score_language = states_language


# ------------------------------------------------------------------ transcript and content
def _is_spaceless(ch: str) -> bool:
    """Characters of scripts written without spaces (CJK ideographs, kana, Thai, ...)."""
    name = unicodedata.name(ch, "")
    return any(s in name for s in ("CJK", "HIRAGANA", "KATAKANA", "THAI", "HANGUL SYLLABLE"))


def units(text: str) -> list[str]:
    """Lower-cased words, with each character of a spaceless script as its own unit."""
    out: list[str] = []
    for word in re.findall(r"\w+", text.lower()):
        buf = ""
        for ch in word:
            if _is_spaceless(ch):
                if buf:
                    out.append(buf)
                    buf = ""
                out.append(ch)
            else:
                buf += ch
        if buf:
            out.append(buf)
    return out


def transcript_recall(answer: str, transcript: str) -> float:
    """Fraction of the transcript's units (words, or CJK characters) found in the answer (1.0 if empty)."""
    want = units(transcript)
    if not want:
        return 1.0
    have = set(units(answer))
    return sum(u in have for u in want) / len(want)


def score_content(answer: str, gold: str) -> bool:
    """At least half of the transcript's Latin words of 4+ letters appear in the answer (all its words
    when none is that long; never true for a transcript without Latin words)."""
    content = [w for w in words(gold) if len(w) >= 4] or words(gold)
    if not content:
        return False
    have = set(words(answer))
    return sum(w in have for w in content) / len(content) >= 0.5


def score_content_and_gender(answer: str, gold: tuple[str, str]) -> bool:
    """Both parts of "What is said, and is the speaker a man or a woman?" right; gender words inside
    the quoted transcript do not count."""
    transcript, gender = gold
    return score_content(answer, transcript) and score_gender(answer, gender, transcript)


# ------------------------------------------------------------------ sounds and pace
def score_keyword(answer: str, gold: str) -> bool:
    """Any word of 3+ letters of the label (``"phone_ringing"`` -> phone|ringing) appears in the answer,
    as a word or inside one ("ringing" in "ringing,")."""
    keys = [w for w in words(gold.replace("_", " ").replace("-", " ")) if len(w) >= 3]
    return any(mentions(answer, k) or k in answer.lower() for k in keys)


_SLOW = ("slow", "slowly")
_FAST = ("fast", "quickly", "quick", "rapid", "rapidly")


def score_speed(answer: str, gold: str) -> bool:
    """A slow/fast label needs its word and not the opposite one; any other label a word for normal pace."""
    gold = gold.lower()
    if "slow" in gold:
        return mentions(answer, *_SLOW) and not mentions(answer, *_FAST[:3])
    if "fast" in gold:
        return mentions(answer, *_FAST) and not mentions(answer, *_SLOW)
    return mentions(answer, "normal", "moderate", "average", "natural", "steady")


# ------------------------------------------------------------------ format
@dataclass(frozen=True)
class FormatCheck:
    """An instruction appended to a question and the rule that checks an answer followed it."""

    name: str
    instruction: str
    check: Callable[[str], bool]


def _lowercase(t: str) -> bool:
    return t.strip() != "" and t == t.lower()


def _uppercase(t: str) -> bool:
    return any(c.isalpha() for c in t) and t == t.upper()


def _under_15_words(t: str) -> bool:
    return 0 < len(t.split()) < 15


def _three_bullets(t: str) -> bool:
    return sum(1 for line in t.splitlines() if re.match(r"^\s*[-*•]\s+\S", line)) == 3


def _starts_yes_no(t: str) -> bool:
    return bool(re.match(r"^\W*(yes|no)\b", t.strip(), re.I))


def _quoted(t: str) -> bool:
    s = t.strip()
    return len(s) > 2 and s[0] == '"' and s[-1] == '"'


def _ends_with_phrase(t: str) -> bool:
    return t.strip().endswith("That is all.")


def _no_commas(t: str) -> bool:
    return t.strip() != "" and "," not in t


FORMAT_CHECKS: tuple[FormatCheck, ...] = (
    FormatCheck("lowercase", "Answer in all lowercase letters, with no capital letters at all.", _lowercase),
    FormatCheck("uppercase", "Answer in all capital letters.", _uppercase),
    FormatCheck("under_15_words", "Answer in fewer than 15 words.", _under_15_words),
    FormatCheck(
        "three_bullets", "Give exactly 3 bullet points using '- ' at the start of each line.", _three_bullets
    ),
    FormatCheck("starts_yes_no", "Start your answer with the word 'Yes' or 'No'.", _starts_yes_no),
    FormatCheck("quoted", "Wrap your entire answer in double quotation marks.", _quoted),
    FormatCheck(
        "ends_with_phrase", "End your answer with the exact phrase 'That is all.'", _ends_with_phrase
    ),
    FormatCheck("no_commas", "Do not use any commas in your answer.", _no_commas),
)

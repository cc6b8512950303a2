"""Grounding checks: does a self-generated answer state the facts its instruction asks for?

An instruction may declare what a correct answer must contain (``requires`` in the instruction pool,
e.g. ``["transcript", "gender"]`` for "What is said, and is the speaker a man or a woman?"). The
record's own labels are the truth: a small backbone often answers only half of a compound question or
gets a label wrong, and training on such answers teaches the audio model to do the same. Checked
answers that fail are resampled by the pipeline (``GenerateConfig.resample``) and rejected at last.

Facts:

* ``transcript``: at least ``min_recall`` of the transcript's words (characters for scripts written
  without spaces, such as Chinese) appear in the answer.
* ``gender``: the answer names the labelled gender (man, male, woman, female, ...) and not the other
  one; words inside the quoted transcript do not count.
* ``language``: the answer names the labelled language.

A fact the record has no label for (no transcript, no ``Gender`` attribute) is not checked.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from desta.data.records import AudioRecord
from desta.errors import DeSTAError

FACTS = ("transcript", "gender", "language")

GENDER_WORDS = {
    "male": ("man", "male", "men", "gentleman", "boy", "masculine"),
    "female": ("woman", "female", "women", "lady", "girl", "feminine"),
}


def check_facts(facts: Iterable[str]) -> tuple[str, ...]:
    """Validate fact names; returns them as a tuple."""
    out = tuple(facts)
    bad = [f for f in out if f not in FACTS]
    if bad:
        raise DeSTAError(f"unknown grounding facts {bad}; known: {list(FACTS)}")
    return out


def _is_spaceless(ch: str) -> bool:
    """Characters of scripts written without spaces (CJK ideographs, kana, Thai, ...)."""
    name = unicodedata.name(ch, "")
    return any(s in name for s in ("CJK", "HIRAGANA", "KATAKANA", "THAI", "HANGUL SYLLABLE"))


def _units(text: str) -> list[str]:
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
    want = _units(transcript)
    if not want:
        return 1.0
    have = set(_units(answer))
    return sum(u in have for u in want) / len(want)


def _without(text: str, part: str) -> str:
    return re.sub(re.escape(part.strip()), " ", text, flags=re.I) if part.strip() else text


def stated_gender(answer: str, transcript: str = "") -> set[str]:
    """Genders the answer names (``{"male"}``, ``{"female"}``, both or none), ignoring the transcript."""
    words = set(re.findall(r"[a-z]+", _without(answer, transcript).lower()))
    return {g for g, names in GENDER_WORDS.items() if words & set(names)}


def grounding_failure(
    answer: str, record: AudioRecord, requires: Iterable[str], *, min_recall: float = 0.8
) -> str | None:
    """The first unmet fact as ``"missing_transcript"``, ``"wrong_gender"``, ``"missing_gender"`` or
    ``"missing_language"``; ``None`` when every checkable fact is stated."""
    for fact in check_facts(requires):
        if fact == "transcript" and record.transcript.strip():
            if transcript_recall(answer, record.transcript) < min_recall:
                return "missing_transcript"
        elif fact == "gender":
            label = record.attributes.get("Gender", "").strip().lower()
            if label not in GENDER_WORDS:
                continue
            said = stated_gender(answer, record.transcript)
            if said - {label}:
                return "wrong_gender"
            if label not in said:
                return "missing_gender"
        elif fact == "language":
            label = record.attributes.get("Language", "").strip()
            if label and not re.search(rf"\b{re.escape(label)}\b", answer, re.I):
                return "missing_language"
    return None

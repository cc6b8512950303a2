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
* ``emotion``: the answer names the labelled emotion (``Emotion`` attribute: angry, happy, ...) and no
  other emotion of :data:`EMOTIONS` (so "(a) happy (b) sad" fails).
* ``animal``: the answer names the labelled animal (``Animal`` attribute) as a whole word.

The word rules themselves (vocabularies, recall) live in :mod:`desta.rules`, shared with the desta-tiny
recipe's probes.

A fact the record has no label for (no transcript, no ``Gender`` attribute) is not checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from desta.data.records import AudioRecord
from desta.errors import DeSTAError
from desta.rules import GENDER_NOUNS, stated_gender, states_language, transcript_recall

FACTS = ("transcript", "gender", "language", "emotion", "animal")
#: the emotion labels desta's corpora use, with the words an answer may state each with
EMOTIONS: dict[str, tuple[str, ...]] = {
    "angry": ("angry", "anger", "angrily"),
    "calm": ("calm", "calmly"),
    "disgust": ("disgust", "disgusted"),
    "fear": ("fear", "fearful", "afraid", "scared"),
    "happy": ("happy", "happiness", "joy", "joyful"),
    "neutral": ("neutral",),
    "sad": ("sad", "sadness", "sadly"),
    "surprise": ("surprise", "surprised"),
}

GENDER_WORDS = GENDER_NOUNS  # the name this module exported before desta.rules held the vocabulary

__all__ = ["FACTS", "GENDER_WORDS", "check_facts", "grounding_failure", "stated_emotions", "stated_gender", "transcript_recall"]


def stated_emotions(answer: str) -> set[str]:
    """The :data:`EMOTIONS` labels ``answer`` names as whole words."""
    have = set(re.findall(r"[a-z]+", answer.lower()))
    return {label for label, forms in EMOTIONS.items() if have & set(forms)}


def check_facts(facts: Iterable[str]) -> tuple[str, ...]:
    """Validate fact names; returns them as a tuple."""
    out = tuple(facts)
    bad = [f for f in out if f not in FACTS]
    if bad:
        raise DeSTAError(f"unknown grounding facts {bad}; known: {list(FACTS)}")
    return out


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
            if label not in GENDER_NOUNS:
                continue
            said = stated_gender(answer, record.transcript)
            if said - {label}:
                return "wrong_gender"
            if label not in said:
                return "missing_gender"
        elif fact == "language":
            label = record.attributes.get("Language", "").strip()
            if label and not states_language(answer, label):
                return "missing_language"
        elif fact == "emotion":
            label = record.attributes.get("Emotion", "").strip().lower()
            if label not in EMOTIONS:
                continue
            said = stated_emotions(answer)
            if said - {label}:
                return "wrong_emotion"
            if label not in said:
                return "missing_emotion"
        elif fact == "animal":
            label = record.attributes.get("Animal", "").strip().lower()
            if label and not re.search(rf"\b{re.escape(label)}s?\b", answer, re.I):
                return "missing_animal"
    return None

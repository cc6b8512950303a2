"""Held-out probes of the desta-tiny recipe: the questions asked and the items built from labelled clips.

Perception questions are asked about labelled clips and scored by :mod:`desta.rules`. Instruction
following appends one of :data:`desta.rules.FORMAT_CHECKS` to an open question; the same prompts go
to the text-only backbone with the transcript in place of the audio, which is the DeSTA paper's
forgetting measure at small scale: delta = (IF_audio - IF_text) / IF_text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from desta.data.records import AudioRecord
from desta.messages import END_AUDIO, START_AUDIO, conversation
from desta.rules import (
    FORMAT_CHECKS,
    FormatCheck,
    score_content,
    score_content_and_gender,
    score_gender,
    score_keyword,
    score_language,
    score_speed,
)


@dataclass(frozen=True)
class Probe:
    """A question, the gold label a clip gives it (``None``: the probe does not apply) and its rule."""

    name: str
    question: str
    applies: Callable[[AudioRecord], Any]
    score: Callable[[str, Any], bool]


def attribute(record: AudioRecord, name: str) -> str | None:
    """The record's attribute ``name``, matched case-insensitively (``None`` when absent)."""
    for k, v in record.attributes.items():
        if k.lower() == name.lower():
            return v
    return None


def _speech(r: AudioRecord) -> bool:
    return r.kind == "speech"


PERCEPTION_PROBES: tuple[Probe, ...] = (
    Probe(
        "gender",
        "Is the speaker a man or a woman?",
        lambda r: attribute(r, "gender") if _speech(r) else None,
        score_gender,
    ),
    Probe(
        "language",
        "What language is the speaker using?",
        lambda r: r.language if _speech(r) and r.language else None,
        score_language,
    ),
    Probe(
        "content",
        "What exactly does the speaker say?",
        lambda r: r.transcript if _speech(r) and r.transcript else None,
        score_content,
    ),
    Probe(
        "content+gender",
        "What is said, and is the speaker a man or a woman?",
        lambda r: (
            (r.transcript, attribute(r, "gender"))
            if _speech(r) and r.transcript and attribute(r, "gender")
            else None
        ),
        score_content_and_gender,
    ),
    Probe(
        "sound",
        "What sound can you hear in this clip?",
        lambda r: (r.caption or attribute(r, "sound") or attribute(r, "label")) if not _speech(r) else None,
        score_keyword,
    ),
    Probe(
        "speed",
        "Is the person speaking slowly, at a normal pace, or fast?",
        lambda r: attribute(r, "speaking speed") if _speech(r) else None,
        score_speed,
    ),
)

IF_QUESTIONS = ("Describe what you hear.", "What is the speaker talking about?")


def perception_items(records: list[AudioRecord]) -> list[dict[str, Any]]:
    """One ``{"probe", "record", "question", "gold"}`` item per record and probe that applies to it."""
    items = []
    for r in records:
        for p in PERCEPTION_PROBES:
            gold = p.applies(r)
            if gold:
                items.append({"probe": p.name, "record": r, "question": p.question, "gold": gold})
    return items


def if_items(records: list[AudioRecord], limit: int = 48) -> list[dict[str, Any]]:
    """Up to ``limit`` ``{"record", "question", "check"}`` items; speech clip i gets format check
    ``i % 8`` and open question ``i % 2``."""
    speech = [r for r in records if _speech(r) and r.transcript]
    items = []
    for i, r in enumerate(speech[:limit]):
        fc = FORMAT_CHECKS[i % len(FORMAT_CHECKS)]
        q = IF_QUESTIONS[i % len(IF_QUESTIONS)]
        items.append({"record": r, "question": f"{q} {fc.instruction}", "check": fc})
    return items


def if_summary(checks: list[FormatCheck], answers: list[str]) -> dict[str, Any]:
    """Instruction-following rate overall and per format check, and the answers' mean length in words.

    Short answers pass some checks by themselves ("fewer than 15 words", "no commas"), so the rate is
    read next to ``per_check`` and ``mean_words``.
    """
    ok = [c.check(a) for c, a in zip(checks, answers, strict=True)]
    per_check: dict[str, list[bool]] = {}
    for c, passed in zip(checks, ok):
        per_check.setdefault(c.name, []).append(passed)
    return {
        "rate": sum(ok) / max(1, len(ok)),
        "n": len(ok),
        "per_check": {k: {"rate": sum(v) / len(v), "n": len(v)} for k, v in per_check.items()},
        "mean_words": sum(len(a.split()) for a in answers) / max(1, len(answers)),
    }


def audio_conversation(record: AudioRecord, question: str, system: str | None = None) -> list[dict[str, Any]]:
    """``[system?] + user(record's audio, question)``; the model transcribes the clip itself."""
    return conversation(question, [record.audio], system=system)


def text_conversation(
    record: AudioRecord, question: str, transcript: str, system: str | None = None
) -> list[dict[str, Any]]:
    """The text-only backbone's version of a question: the transcript between the audio tags."""
    msgs = [{"role": "system", "content": system}] if system else []
    msgs.append({"role": "user", "content": f"{START_AUDIO}{transcript}{END_AUDIO}\n{question}"})
    return msgs

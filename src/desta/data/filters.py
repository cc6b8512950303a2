"""Quality filters for generated responses: empty, truncated, refusing, leaking and ungrounded answers
are dropped (or, for truncated ones, optionally cut at their last full sentence).

A *leak* is a response that betrays that the LLM read a text description instead of hearing the audio
("according to the description", "the metadata says", "<start_audio>"); training on it would teach the
audio model to talk about descriptions it never sees.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from desta.data.grounding import grounding_failure
from desta.data.records import AudioRecord

REFUSAL_PATTERNS: tuple[str, ...] = (
    r"\bI'?m sorry,? (?:but )?I (?:can(?:no|')t|am unable|'m unable)",
    r"\bI (?:cannot|can't|am unable to|'m unable to) (?:hear|listen|process|access|play)",
    r"\bas an AI\b",
    r"\bas a (?:text-based|language) model\b",
    r"\bI don'?t have (?:the ability|access) to (?:hear|listen|audio)",
)

LEAK_PATTERNS: tuple[str, ...] = (
    r"according to the (?:seed )?description",
    r"based on the (?:given |provided )?(?:text|description|metadata|transcript(?:ion)? provided)",
    r"\bseed description\b",
    r"\bmetadata\b",
    r"\bthe (?:given|provided) description\b",
    r"\bthe description (?:says|states|mentions|indicates)\b",
    r"<\s*/?\s*(?:start|end)_audio\s*>",
    r"\(\s*(?:Gender|Emotion|Pitch|Volume|Speaking speed|Duration)\s*:",
)


@dataclass(frozen=True)
class FilterConfig:
    """Which responses to drop; patterns are case-insensitive regular expressions."""

    min_chars: int = 1  # shorter (after stripping) is "empty"
    max_chars: int | None = None  # longer is "too_long" (None: no limit)
    drop_truncated: bool = True  # finish_reason == "length"
    # instead of dropping a truncated answer, cut it at its last full sentence (trim_truncated below)
    trim_truncated: bool = False
    min_transcript_recall: float = 0.8  # for instructions that require the transcript (desta.data.grounding)
    refusal_patterns: tuple[str, ...] = REFUSAL_PATTERNS
    leak_patterns: tuple[str, ...] = LEAK_PATTERNS
    # a "leak" too: the answer writes one of the record's own attribute names as a field ("Source: ...")
    attribute_fields: bool = True

    @cached_property
    def _refusal(self) -> re.Pattern[str] | None:
        return (
            re.compile("|".join(f"(?:{p})" for p in self.refusal_patterns), re.I)
            if self.refusal_patterns
            else None
        )

    @cached_property
    def _leak(self) -> re.Pattern[str] | None:
        return (
            re.compile("|".join(f"(?:{p})" for p in self.leak_patterns), re.I) if self.leak_patterns else None
        )


def check_response(text: str, finish_reason: str, cfg: FilterConfig = FilterConfig()) -> str | None:
    """The reason to drop a response (``"empty"``, ``"truncated"``, ``"too_long"``, ``"refusal"``,
    ``"leak"``), or ``None`` to keep it. Checked in that order; the first match wins."""
    stripped = text.strip()
    if len(stripped) < cfg.min_chars:
        return "empty"
    if cfg.drop_truncated and finish_reason == "length":
        return "truncated"
    if cfg.max_chars is not None and len(stripped) > cfg.max_chars:
        return "too_long"
    if cfg._refusal is not None and cfg._refusal.search(stripped):
        return "refusal"
    if cfg._leak is not None and cfg._leak.search(stripped):
        return "leak"
    return None


def _field(name: str) -> re.Pattern[str]:
    words = r"\s+".join(re.escape(w) for w in str(name).split())
    return re.compile(rf"(?<!\w){words}\s*:", re.I)


def attribute_leak(text: str, record: AudioRecord, instruction: str = "") -> str | None:
    """The first attribute name of ``record``'s own seed description that ``text`` writes as a field
    (``"Source: Real human recording"``, ``"(Gender: Female"``), or ``None``.

    The names come from the record itself (``record.attributes``), so a corpus's own metadata fields
    (``Source``, ``Audio category``, ``Noise Level``, ...) are caught without a list to keep up to date.
    A name counts as a field when it starts a word and a colon follows it (case-insensitive). A field
    that the ``instruction`` itself asks for (``"Answer in the format 'Gender: ..., Emotion: ...'"``) is
    the answer's format, not a leak.
    """
    for name in record.attributes:
        if not str(name).split():
            continue
        field = _field(name)
        if field.search(text) and not field.search(instruction):
            return str(name)
    return None


def trim_truncated(text: str, min_chars: int = 12) -> str | None:
    """Cut an answer that hit max_new_tokens at its last full sentence; None if none or if it loops.

    A small model often rambles past a short token budget; its first sentences are still its own
    answer. Answers that repeat a 4-word phrase three times or more are degenerate and dropped.
    """
    words = text.lower().split()
    grams = [" ".join(words[i : i + 4]) for i in range(max(0, len(words) - 3))]
    if grams and max(grams.count(g) for g in set(grams)) >= 3:
        return None
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)", text)]
    if not ends:
        return None
    cut = text[: ends[-1]].strip()
    return cut if len(cut) >= min_chars else None


def screen_response(
    text: str,
    finish_reason: str,
    cfg: FilterConfig = FilterConfig(),
    *,
    record: AudioRecord | None = None,
    requires: Iterable[str] = (),
    instruction: str = "",
) -> tuple[str, str | None]:
    """``(text to keep, reason to drop or None)``: trimming if configured, :func:`check_response`, the
    record's own metadata fields written into the answer (:func:`attribute_leak`, a ``"leak"``), then
    the grounding check of the facts the instruction ``requires`` against ``record``'s labels."""
    if cfg.trim_truncated and finish_reason == "length":
        trimmed = trim_truncated(text)
        if trimmed is None:
            return text, "truncated"
        text, finish_reason = trimmed, "stop"
    why = check_response(text, finish_reason, cfg)
    if why is None and record is not None and cfg.attribute_fields and attribute_leak(text, record, instruction):
        why = "leak"
    if why is None and record is not None:
        why = grounding_failure(text, record, requires, min_recall=cfg.min_transcript_recall)
    return text, why

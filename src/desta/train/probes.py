"""Held-out probes for small DeSTA models: perception accuracy and instruction following.

Perception questions are asked about labelled clips and scored by keyword rules (documented per
probe). Instruction following uses IFEval-style format constraints checked by rules; the same prompts
go to the text-only backbone with the transcript in place of the audio, which is the DeSTA paper's
forgetting measure at small scale: delta = (IF_audio - IF_text) / IF_text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from desta.data.records import AudioRecord

_WORD = re.compile(r"[a-z']+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def mentions(text: str, *words: str) -> bool:
    """Whole-word match (so "male" does not match inside "female")."""
    ws = set(_words(text))
    return any(w in ws for w in words)


GENDER_WORDS = {
    "female": ("female", "woman", "women", "girl", "lady", "she", "her"),
    "male": ("male", "man", "men", "boy", "guy", "he", "his"),
}
LANGUAGE_NAMES = {
    "en": "english",
    "de": "german",
    "fr": "french",
    "es": "spanish",
    "it": "italian",
    "pt": "portuguese",
    "nl": "dutch",
    "zh": "chinese",
    "ja": "japanese",
    "ru": "russian",
    "pl": "polish",
    "hi": "hindi",
}


def score_gender(answer: str, gold: str) -> bool:
    gold = gold.lower()
    other = "male" if gold.startswith("f") else "female"
    key = "female" if gold.startswith("f") else "male"
    return mentions(answer, *GENDER_WORDS[key]) and not mentions(answer, *GENDER_WORDS[other][:4])


def score_language(answer: str, gold: str) -> bool:
    name = LANGUAGE_NAMES.get(gold, gold).lower()
    return name in answer.lower()


def score_content(answer: str, gold: str) -> bool:
    """At least half of the transcript's words of 4+ letters appear in the answer."""
    content = [w for w in _words(gold) if len(w) >= 4] or _words(gold)
    if not content:
        return False
    have = set(_words(answer))
    return sum(w in have for w in content) / len(content) >= 0.5


def score_keyword(answer: str, gold: str) -> bool:
    """Any word of the label (e.g. "phone ringing" -> phone|ringing) appears in the answer."""
    keys = [w for w in _words(gold.replace("_", " ").replace("-", " ")) if len(w) >= 3]
    return any(mentions(answer, k) or k in answer.lower() for k in keys)


def score_speed(answer: str, gold: str) -> bool:
    gold = gold.lower()
    if "slow" in gold:
        return mentions(answer, "slow", "slowly") and not mentions(answer, "fast", "quickly", "quick")
    if "fast" in gold:
        return mentions(answer, "fast", "quickly", "quick", "rapid", "rapidly") and not mentions(
            answer, "slow", "slowly"
        )
    return mentions(answer, "normal", "moderate", "average", "natural", "steady")


def score_content_and_gender(answer: str, gold: tuple[str, str]) -> bool:
    """Both parts of "What is said, and is the speaker a man or a woman?" right (README's question)."""
    transcript, gender = gold
    return score_content(answer, transcript) and score_gender(answer, gender)


@dataclass(frozen=True)
class Probe:
    name: str
    question: str
    applies: Callable[[AudioRecord], Any]  # gold label, or None when the probe does not apply
    score: Callable[[str, Any], bool]


def _attr(name: str) -> Callable[[AudioRecord], str | None]:
    def get(r: AudioRecord) -> str | None:
        for k, v in r.attributes.items():
            if k.lower() == name.lower():
                return v
        return None

    return get


PERCEPTION_PROBES: tuple[Probe, ...] = (
    Probe(
        "gender",
        "Is the speaker a man or a woman?",
        lambda r: _attr("gender")(r) if r.kind == "speech" else None,
        score_gender,
    ),
    Probe(
        "language",
        "What language is the speaker using?",
        lambda r: r.language if r.kind == "speech" and r.language else None,
        score_language,
    ),
    Probe(
        "content",
        "What exactly does the speaker say?",
        lambda r: r.transcript if r.kind == "speech" and r.transcript else None,
        score_content,
    ),
    Probe(
        "content+gender",
        "What is said, and is the speaker a man or a woman?",
        lambda r: (
            (r.transcript, _attr("gender")(r))
            if r.kind == "speech" and r.transcript and _attr("gender")(r)
            else None
        ),
        score_content_and_gender,
    ),
    Probe(
        "sound",
        "What sound can you hear in this clip?",
        lambda r: (r.caption or _attr("sound")(r) or _attr("label")(r)) if r.kind != "speech" else None,
        score_keyword,
    ),
    Probe(
        "speed",
        "Is the person speaking slowly, at a normal pace, or fast?",
        lambda r: _attr("speaking speed")(r) if r.kind == "speech" else None,
        score_speed,
    ),
)


# ------------------------------------------------------------------ instruction following
@dataclass(frozen=True)
class FormatCheck:
    name: str
    instruction: str
    check: Callable[[str], bool]


def _bullets(n: int) -> Callable[[str], bool]:
    return lambda t: sum(1 for line in t.splitlines() if re.match(r"^\s*[-*•]\s+\S", line)) == n


FORMAT_CHECKS: tuple[FormatCheck, ...] = (
    FormatCheck(
        "lowercase",
        "Answer in all lowercase letters, with no capital letters at all.",
        lambda t: t.strip() != "" and t == t.lower(),
    ),
    FormatCheck(
        "uppercase", "Answer in all capital letters.", lambda t: any(c.isalpha() for c in t) and t == t.upper()
    ),
    FormatCheck("under_15_words", "Answer in fewer than 15 words.", lambda t: 0 < len(t.split()) < 15),
    FormatCheck("three_bullets", "Give exactly 3 bullet points using '- ' at the start of each line.", _bullets(3)),
    FormatCheck(
        "starts_yes_no",
        "Start your answer with the word 'Yes' or 'No'.",
        lambda t: bool(re.match(r"^\W*(yes|no)\b", t.strip(), re.I)),
    ),
    FormatCheck(
        "quoted",
        "Wrap your entire answer in double quotation marks.",
        lambda t: len(t.strip()) > 2 and t.strip()[0] == '"' and t.strip()[-1] == '"',
    ),
    FormatCheck(
        "ends_with_phrase",
        "End your answer with the exact phrase 'That is all.'",
        lambda t: t.strip().endswith("That is all."),
    ),
    FormatCheck("no_commas", "Do not use any commas in your answer.", lambda t: t.strip() != "" and "," not in t),
)


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


IF_QUESTIONS = ("Describe what you hear.", "What is the speaker talking about?")


def perception_items(records: list[AudioRecord]) -> list[dict[str, Any]]:
    items = []
    for r in records:
        for p in PERCEPTION_PROBES:
            gold = p.applies(r)
            if gold:
                items.append({"probe": p.name, "record": r, "question": p.question, "gold": gold})
    return items


def if_items(records: list[AudioRecord], limit: int = 48) -> list[dict[str, Any]]:
    speech = [r for r in records if r.kind == "speech" and r.transcript]
    items = []
    for i, r in enumerate(speech):
        fc = FORMAT_CHECKS[i % len(FORMAT_CHECKS)]
        q = IF_QUESTIONS[i % len(IF_QUESTIONS)]
        items.append({"record": r, "question": f"{q} {fc.instruction}", "check": fc})
        if len(items) >= limit:
            break
    return items


def audio_conversation(record: AudioRecord, question: str, system: str | None = None) -> list[dict[str, Any]]:
    msgs = [{"role": "system", "content": system}] if system else []
    msgs.append(
        {
            "role": "user",
            "content": f"<|AUDIO|>\n{question}",
            "audios": [{"audio": record.audio, "text": None}],
        }
    )
    return msgs


def text_conversation(
    record: AudioRecord, question: str, transcript: str, system: str | None = None
) -> list[dict[str, Any]]:
    msgs = [{"role": "system", "content": system}] if system else []
    msgs.append({"role": "user", "content": f"<start_audio>{transcript}<end_audio>\n{question}"})
    return msgs

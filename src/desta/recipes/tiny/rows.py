"""Post-processing of the self-generated training rows: lettered questions verified against the
labels, and label-preserving acoustic copies of each row.

* :func:`verify_mcq_rows`: a row whose prompt is a lettered multiple-choice question about gender or
  language is kept only when its answer chooses exactly the option the record's label names (the
  grounding check only asks that the right word appear, which an answer listing every option passes).
* :func:`sibling_copies`: the row again for each voice sibling of its clip (the same sentence, gender,
  language and controls spoken by another espeak variant: :func:`desta.data.synth.sibling_group`),
  whose seed description differs only in the clip length, unless the answer states a length: one
  self-generated answer, several voices.
* :func:`augmented_copies`: ``copies`` more rows per row whose answer says nothing about the recording
  quality, each with the clip under one augmentation of :mod:`desta.data.augment` (noise,
  reverberation, telephone band, gain, tempo): who speaks, what and in which language stay true, so the
  answer stays true, and the connector hears the same facts through other channels instead of the
  same file once per epoch.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from desta.data.records import AudioRecord
from desta.recipes.tiny.mcq import parse_mcq, score_mcq
from desta.rules import GENDER_NOUNS, LANGUAGES

#: words about the recording itself: an answer that uses them may stop being true under augmentation
QUALITY_WORDS = re.compile(
    r"\b(noise|noisy|clear|clean|clearly|quiet|background|quality|recording|recorded|echo|studio|loud|soft|volume|telephone|phone|muffled|crisp)\b",
    re.I,
)


#: words about the clip's length, which differs between voice siblings
LENGTH_WORDS = re.compile(r"\b(seconds?|minutes?|duration|long|short|brief|lasts?)\b", re.I)


def record_id(row: dict[str, Any]) -> str:
    """The record a row was generated for: from its request key ``"<corpus>/<record id>#<k>"`` (record
    ids may hold "/"), else from its id ``"[<corpus>/]<record id>[#<copy>]"``."""
    key = str(row.get("meta", {}).get("key", ""))
    if "/" in key and "#" in key:
        return key.split("/", 1)[1].rsplit("#", 1)[0]
    return str(row.get("id", "")).split("/", 1)[-1].split("#")[0]


def _with_audio(row: dict[str, Any], audio: str, suffix: str) -> dict[str, Any]:
    import json

    new = json.loads(json.dumps(row))
    for m in new["messages"]:
        for a in m.get("audios", []):
            a["audio"] = audio
    new["id"] = f"{row['id']}#{suffix}"
    return new


def sibling_copies(rows: list[dict[str, Any]], records: dict[str, AudioRecord]) -> list[dict[str, Any]]:
    """One more row per voice sibling of each row's clip (see the module docstring)."""
    from desta.data.synth import sibling_group

    groups: dict[str, list[AudioRecord]] = {}
    for r in records.values():
        if sibling_group(r.id) != r.id:
            groups.setdefault(sibling_group(r.id), []).append(r)
    out = []
    for row in rows:
        if LENGTH_WORDS.search(str(row["response"])):
            continue
        for sib in sorted(groups.get(record_id(row), []), key=lambda r: r.id):
            new = _with_audio(row, sib.audio, sib.id.rpartition("-")[2])
            new["sibling_of"] = record_id(row)
            out.append(new)
    return out


def _gold_index(record: AudioRecord, options: tuple[str, ...]) -> int | None:
    gender = record.attributes.get("Gender", "").strip().lower()
    if gender in GENDER_NOUNS:
        for i, o in enumerate(options):
            words = set(o.lower().split())
            if words & set(GENDER_NOUNS[gender]) and not words & set(
                GENDER_NOUNS["female" if gender == "male" else "male"]
            ):
                return i
    language = LANGUAGES.get(record.language or "", "")
    emotion = record.attributes.get("Emotion", "")
    animal = record.attributes.get("Animal", "")
    for label in (language, emotion, animal):
        for i, o in enumerate(options):
            if label and o.strip().lower() == label.lower():
                return i
    return None


def verify_mcq_rows(rows: Iterable[dict[str, Any]], records: dict[str, AudioRecord]) -> tuple[list, list]:
    """``(kept, dropped)``: lettered-question rows whose answer is not exactly the gold option are dropped;
    other rows are kept as they are."""
    kept, dropped = [], []
    for row in rows:
        rec = records.get(record_id(row))
        prompt = str(row.get("prompt", ""))
        q = (
            parse_mcq(prompt, (lambda opts, r=rec: _gold_index(r, opts)) if rec else None)
            if "(a)" in prompt
            else None
        )
        if "(a)" in prompt and "(b)" in prompt and (q is None or not score_mcq(str(row["response"]), q)[0]):
            dropped.append(row)
        else:
            kept.append(row)
    return kept, dropped


def augmented_copies(
    rows: list[dict[str, Any]], records: dict[str, AudioRecord], corpus: Path, copies: int, seed: int
) -> list[dict[str, Any]]:
    """``copies`` augmented rows per eligible row (speech, not already augmented or noisy, an answer
    without :data:`QUALITY_WORDS`); audio goes to ``corpus/audio/augmented/`` (kept across reruns)."""
    import numpy as np
    import soundfile as sf

    from desta.data import augment

    out = []
    for row in rows:
        rec = records.get(row.get("sibling_of") or record_id(row))
        if rec is None or rec.kind != "speech" or QUALITY_WORDS.search(str(row["response"])):
            continue
        if (
            any(k in rec.attributes for k in ("Noise type", "Recording condition"))
            or "Signal-to-Noise Ratio" in rec.attributes
        ):
            continue
        rng = random.Random(f"{seed}:{row['id']}")
        for k in range(copies):
            aug = augment.draw(rng)
            source = next(a["audio"] for m in row["messages"] for a in m.get("audios", []))
            rel = f"audio/augmented/{Path(source).stem}-{aug.kind}-{aug.seed}.wav"
            path = corpus / rel
            if not path.exists():
                x, sr = sf.read(str(corpus / source), dtype="float32")
                if sr != augment.SAMPLE_RATE:
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                y = augment.apply(x if x.ndim == 1 else x.mean(axis=1), aug)
                sf.write(str(path), np.clip(y, -1, 1), sr, subtype="PCM_16")
            new = _with_audio(row, rel, f"aug{k}")
            new["augmentation"] = aug.kind
            out.append(new)
    return out

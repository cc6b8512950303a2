"""CREMA-D.

::

    ROOT/AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav     e.g. 1001_DFA_ANG_XX.wav
    ROOT/VideoDemographics.csv      ActorID,Age,Sex,Race,Ethnicity

The sentence code gives the transcript (12 fixed sentences), the emotion code one of six emotions,
the level LO/MD/HI/XX (Low/Medium/High/Unspecified). Attributes as the official seed
``It's eleven o'clock (Emotion: Anger, Gender: Male, Age: 51, Race: Caucasian, Ethnicity: Not
Hispanic)``; ``Intensity`` is added only with ``intensity=True``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from desta.data.records import AudioRecord
from desta.data.sources._common import (
    audio_duration,
    check_root,
    gender_word,
    layout_error,
    read_delimited,
    reject,
)

SENTENCES = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
EMOTIONS = {
    "ANG": "Anger",
    "DIS": "Disgust",
    "FEA": "Fear",
    "HAP": "Happy",
    "NEU": "Neutral",
    "SAD": "Sad",
}
LEVELS = {"LO": "Low", "MD": "Medium", "HI": "High", "XX": "Unspecified"}


def read_crema_d(
    root: str | os.PathLike,
    *,
    rejects: list[dict] | None = None,
    probe: bool = True,
    intensity: bool = False,
    corpus: str = "CREMA-D",
) -> Iterator[AudioRecord]:
    root = check_root(root, corpus)
    audio_dir = root / "AudioWAV" if (root / "AudioWAV").is_dir() else root
    files = sorted(audio_dir.glob("*_*_*_*.wav"))
    if not files:
        raise layout_error(
            corpus, "ROOT/AudioWAV/<actor>_<SEN>_<EMO>_<LV>.wav (+ VideoDemographics.csv)", root
        )
    demo: dict[str, dict[str, str]] = {}
    demo_file = next(
        (
            p
            for p in (root / "VideoDemographics.csv", audio_dir.parent / "VideoDemographics.csv")
            if p.is_file()
        ),
        None,
    )
    if demo_file:
        demo = {r.get("ActorID", ""): r for r in read_delimited(demo_file, ",")}
    for audio in files:
        parts = audio.stem.split("_")
        if len(parts) != 4 or parts[1] not in SENTENCES or parts[2] not in EMOTIONS:
            reject(rejects, corpus, audio, "file name is not <actor>_<SEN>_<EMO>_<LV>")
            continue
        actor, sent, emo, level = parts
        ok, duration = audio_duration(audio, corpus, rejects, probe=probe)
        if not ok:
            continue
        attrs = {"Emotion": EMOTIONS[emo]}
        if intensity and level in LEVELS:
            attrs["Intensity"] = LEVELS[level]
        row = demo.get(actor, {})
        gender = gender_word(row.get("Sex"))
        if gender:
            attrs["Gender"] = gender
        for key in ("Age", "Race", "Ethnicity"):
            if row.get(key):
                attrs[key] = row[key]
        yield AudioRecord(
            id=audio.stem,
            audio=str(audio),
            corpus=corpus,
            duration=duration,
            transcript=SENTENCES[sent],
            attributes=attrs,
            language="en",
            kind="speech",
        )

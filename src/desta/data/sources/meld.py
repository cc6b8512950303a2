"""MELD (Multimodal EmotionLines Dataset).

::

    ROOT/{train,dev,test}_sent_emo.csv   Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,
                                         Utterance_ID,Season,Episode,StartTime,EndTime
    ROOT/train_splits/dia<D>_utt<U>.mp4            (audio extracted to .wav/.flac next to it also works)
    ROOT/dev_splits_complete/dia<D>_utt<U>.mp4
    ROOT/output_repeated_splits_test/dia<D>_utt<U>.mp4

MELD has no gender column; ``Gender`` is given for the six main characters of *Friends* only.
Attributes as the official seed ``Take it. (Emotion:Neutral, Sentiment:Neutral, Gender: Female,
Duration: 2s)`` (written with the usual ``": "``). The duration is ``EndTime - StartTime``
(``HH:MM:SS,mmm``), so no audio header is read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from desta.data.describe import format_duration
from desta.data.records import AudioRecord
from desta.data.sources._common import check_root, find_audio, layout_error, read_delimited, reject

SPLITS = {
    "train": ("train_sent_emo.csv", ("train_splits", "train")),
    "dev": ("dev_sent_emo.csv", ("dev_splits_complete", "dev_splits", "dev")),
    "test": ("test_sent_emo.csv", ("output_repeated_splits_test", "test_splits", "test")),
}
MAIN_CAST = {
    "Rachel": "Female",
    "Monica": "Female",
    "Phoebe": "Female",
    "Ross": "Male",
    "Chandler": "Male",
    "Joey": "Male",
}
_EXTS = (".wav", ".flac", ".mp3", ".mp4")


def _seconds(stamp: str) -> float:
    hms, _, ms = stamp.strip().replace(".", ",").partition(",")
    h, m, s = (int(x) for x in hms.split(":"))
    return h * 3600 + m * 60 + s + (int(ms) / 10 ** len(ms) if ms else 0.0)


def fix_mojibake(text: str) -> str:
    """Undo MELD's UTF-8-read-as-cp1252 text (``Iâ\\x80\\x99m`` -> ``I’m``) where possible."""
    if "\u00e2" in text or "\u00c3" in text:
        try:
            return text.encode("cp1252", errors="strict").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            try:
                return text.encode("latin-1").decode("utf-8")
            except (UnicodeEncodeError, UnicodeDecodeError):
                pass
    return text.replace("\u0092", "\u2019").replace("\u0085", "...")


def read_meld(
    root: str | os.PathLike,
    *,
    rejects: list[dict] | None = None,
    splits: tuple[str, ...] = ("train", "dev", "test"),
    duration_attribute: bool = True,
    corpus: str = "MELD",
) -> Iterator[AudioRecord]:
    root = check_root(root, corpus)
    tables = [(s, root / SPLITS[s][0], SPLITS[s][1]) for s in splits if (root / SPLITS[s][0]).is_file()]
    if not tables:
        raise layout_error(
            corpus, "ROOT/{train,dev,test}_sent_emo.csv + ROOT/train_splits/dia<D>_utt<U>.mp4", root
        )
    for split, table, folders in tables:
        dirs = [root / d for d in folders if (root / d).is_dir()]
        for row in read_delimited(table, ","):
            try:
                uid = f"dia{int(row['Dialogue_ID'])}_utt{int(row['Utterance_ID'])}"
                duration = _seconds(row["EndTime"]) - _seconds(row["StartTime"])
                text = fix_mojibake(row["Utterance"]).strip()
            except (KeyError, ValueError) as err:
                reject(rejects, corpus, table, f"bad row {row.get('Sr No.', '?')}: {err!r}")
                continue
            audio: Path | None = None
            for d in dirs:
                audio = find_audio(d / uid, _EXTS)
                if audio:
                    break
            if audio is None:
                reject(rejects, corpus, (dirs[0] if dirs else root) / uid, "audio file not found")
                continue
            if duration <= 0:
                reject(rejects, corpus, audio, "EndTime is not after StartTime")
                continue
            attrs = {
                "Emotion": row.get("Emotion", "").capitalize(),
                "Sentiment": row.get("Sentiment", "").capitalize(),
            }
            gender = MAIN_CAST.get(row.get("Speaker", "").strip())
            if gender:
                attrs["Gender"] = gender
            if duration_attribute:
                attrs["Duration"] = format_duration(duration)
            yield AudioRecord(
                id=f"{split}/{uid}",
                audio=str(audio),
                corpus=corpus,
                duration=duration,
                transcript=text,
                attributes={k: v for k, v in attrs.items() if v},
                language="en",
                kind="speech",
            )

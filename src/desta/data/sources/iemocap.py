"""IEMOCAP (release 1.0 layout).

::

    ROOT/Session<n>/sentences/wav/<dialog>/<utt>.wav                 e.g. Ses01F_impro01_F000.wav
    ROOT/Session<n>/dialog/EmoEvaluation/<dialog>.txt   "[6.2901 - 8.2357]<TAB><utt><TAB>neu<TAB>[2.5, 2.5, 2.5]"
    ROOT/Session<n>/dialog/transcriptions/<dialog>.txt  "<utt> [006.2901-008.2357]: Excuse me."

The speaker's gender is the letter before the number of the utterance id (``..._F000`` -> Female).
Emotion codes map to words (``neu`` -> ``Neutral``); ``xxx`` (no majority) leaves ``Emotion`` out.
The duration is the EmoEvaluation span, so no audio header is read. Attributes as the official seed
``Excuse me? (Emotion: Neutral, Gender: Female, Pitch: ..., Volume: ..., Speaking speed: ...,
Duration: 2s)``; pitch, volume and speed come from :func:`desta.data.attributes.enrich`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from desta.data.describe import format_duration
from desta.data.records import AudioRecord
from desta.data.sources._common import check_root, layout_error, reject

EMOTIONS = {
    "neu": "Neutral",
    "hap": "Happy",
    "exc": "Excited",
    "ang": "Angry",
    "sad": "Sad",
    "fru": "Frustrated",
    "fea": "Fearful",
    "sur": "Surprised",
    "dis": "Disgusted",
    "oth": "Other",
}
_EVAL = re.compile(r"^\[(\d+\.?\d*)\s*-\s*(\d+\.?\d*)\]\s+(\S+)\s+(\w+)")
_TRANS = re.compile(r"^(\S+)\s+\[[^\]]*\]:\s?(.*)$")


def read_iemocap(
    root: str | os.PathLike,
    *,
    rejects: list[dict] | None = None,
    duration_attribute: bool = True,
    corpus: str = "IEMOCAP",
) -> Iterator[AudioRecord]:
    root = check_root(root, corpus)
    sessions = sorted(p for p in root.glob("Session*") if (p / "dialog" / "EmoEvaluation").is_dir())
    if not sessions:
        raise layout_error(corpus, "ROOT/Session<n>/dialog/EmoEvaluation/<dialog>.txt + sentences/wav/", root)
    for session in sessions:
        for evaluation in sorted((session / "dialog" / "EmoEvaluation").glob("*.txt")):
            dialog = evaluation.stem
            texts: dict[str, str] = {}
            trans = session / "dialog" / "transcriptions" / f"{dialog}.txt"
            if trans.is_file():
                for line in trans.read_text(encoding="utf-8", errors="replace").splitlines():
                    m = _TRANS.match(line.strip())
                    if m:
                        texts[m.group(1)] = m.group(2).strip()
            for line in evaluation.read_text(encoding="utf-8", errors="replace").splitlines():
                m = _EVAL.match(line.strip())
                if not m:
                    continue
                start, end, uid, code = float(m.group(1)), float(m.group(2)), m.group(3), m.group(4)
                audio = session / "sentences" / "wav" / dialog / f"{uid}.wav"
                if not audio.is_file():
                    reject(rejects, corpus, audio, "audio file not found")
                    continue
                text = texts.get(uid, "")
                if not text:
                    reject(rejects, corpus, audio, "no transcript line")
                    continue
                duration = max(0.0, end - start)
                attrs = {}
                if code in EMOTIONS:
                    attrs["Emotion"] = EMOTIONS[code]
                letter = uid.rsplit("_", 1)[-1][:1]
                if letter in ("F", "M"):
                    attrs["Gender"] = "Female" if letter == "F" else "Male"
                if duration_attribute:
                    attrs["Duration"] = format_duration(duration)
                yield AudioRecord(
                    id=uid,
                    audio=str(audio),
                    corpus=corpus,
                    duration=duration,
                    transcript=text,
                    attributes=attrs,
                    language="en",
                    kind="speech",
                )

"""VCTK (0.92 and the older 0.80 release).

::

    ROOT/speaker-info.txt          "ID  AGE  GENDER  ACCENTS  REGION  COMMENTS" (p225 or 225)
    ROOT/txt/<spk>/<spk>_<nnn>.txt
    ROOT/wav48_silence_trimmed/<spk>/<spk>_<nnn>_mic1.flac      (0.92; mic1 or mic2)
    ROOT/wav48/<spk>/<spk>_<nnn>.wav                            (0.80)

Attributes as the official seed ``(Gender: Female, Pitch:low, Accent: newzealand, Age: 23, Emotion:
neutral)``: ``Gender``, ``Accent`` (lower case, spaces removed), ``Age``, ``Emotion: neutral`` (read
speech). ``Pitch`` is not in the corpus; :func:`desta.data.attributes.enrich` computes it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from desta.data.records import AudioRecord
from desta.data.sources._common import audio_duration, check_root, gender_word, layout_error, reject


def _speaker_info(path: Path) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if len(parts) < 3 or parts[0].upper() == "ID" or not re.fullmatch(r"p?\d+|s\d+", parts[0]):
            continue
        spk = parts[0] if parts[0][0] in "ps" else f"p{parts[0]}"
        out[spk] = {
            "age": parts[1],
            "gender": parts[2],
            "accent": parts[3].lower() if len(parts) > 3 else "",
        }
    return out


def read_vctk(
    root: str | os.PathLike,
    *,
    rejects: list[dict] | None = None,
    probe: bool = True,
    mic: str = "mic1",
    corpus: str = "VCTK",
) -> Iterator[AudioRecord]:
    """One record per utterance with a transcript (speaker p315 has none and is reported)."""
    root = check_root(root, corpus)
    txt_root = root / "txt"
    wav_root = next((root / d for d in ("wav48_silence_trimmed", "wav48") if (root / d).is_dir()), None)
    if wav_root is None or not txt_root.is_dir():
        raise layout_error(
            corpus,
            "ROOT/txt/<spk>/<spk>_<nnn>.txt + ROOT/wav48_silence_trimmed/<spk>/<spk>_<nnn>_mic1.flac",
            root,
        )
    speakers = _speaker_info(root / "speaker-info.txt")
    for spk_dir in sorted(p for p in wav_root.iterdir() if p.is_dir()):
        spk = spk_dir.name
        info = speakers.get(spk, {})
        files = sorted(spk_dir.glob(f"*_{mic}.flac")) or sorted(spk_dir.glob("*.wav"))
        for audio in files:
            uid = audio.stem[: -len(f"_{mic}")] if audio.stem.endswith(f"_{mic}") else audio.stem
            txt = txt_root / spk / f"{uid}.txt"
            if not txt.is_file():
                reject(rejects, corpus, audio, f"no transcript {txt}")
                continue
            text = " ".join(txt.read_text(encoding="utf-8", errors="replace").split())
            if not text:
                reject(rejects, corpus, audio, "empty transcript")
                continue
            ok, duration = audio_duration(audio, corpus, rejects, probe=probe)
            if not ok:
                continue
            attrs = {}
            gender = gender_word(info.get("gender"))
            if gender:
                attrs["Gender"] = gender
            if info.get("accent"):
                attrs["Accent"] = info["accent"]
            if info.get("age"):
                attrs["Age"] = info["age"]
            attrs["Emotion"] = "neutral"
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

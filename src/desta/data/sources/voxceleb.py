"""VoxCeleb1.

::

    ROOT/wav/<id1xxxx>/<youtube_id>/<nnnnn>.wav
    ROOT/vox1_meta.csv     tab-separated: VoxCeleb1 ID, VGGFace1 ID, Gender (m/f), Nationality, Set

VoxCeleb has no transcripts (the official seed's text came from ASR); ``transcripts`` may name a
JSONL/TSV file mapping ids (``id10001/1zcIwhmdeo4/00001``) to text. Attributes: ``Gender``
(``Male``/``Female``), ``Nationality`` with ``nationality=True``, and ``Duration``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from desta.data.describe import format_duration
from desta.data.records import AudioRecord
from desta.data.sources._common import audio_duration, check_root, gender_word, layout_error


def _meta(path: Path) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = [p.strip() for p in line.split("\t")]
        if len(parts) >= 3 and parts[0].startswith("id"):
            out[parts[0]] = {"gender": parts[2], "nationality": parts[3] if len(parts) > 3 else ""}
    return out


def _transcripts(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        if path.suffix == ".jsonl":
            obj = json.loads(line)
            out[str(obj["id"])] = str(obj.get("text") or obj.get("transcript") or "")
        else:
            key, _, text = line.partition("\t")
            out[key.strip()] = text.strip()
    return out


def read_voxceleb1(
    root: str | os.PathLike,
    *,
    rejects: list[dict] | None = None,
    probe: bool = True,
    transcripts: str | os.PathLike | None = None,
    nationality: bool = False,
    corpus: str = "VoxCeleb1",
) -> Iterator[AudioRecord]:
    root = check_root(root, corpus)
    wav = root / "wav" if (root / "wav").is_dir() else root
    speakers = sorted(p for p in wav.glob("id1*") if p.is_dir())
    if not speakers:
        raise layout_error(corpus, "ROOT/wav/<id1xxxx>/<youtube_id>/<nnnnn>.wav", root)
    meta_file = next(
        (p for p in (root / "vox1_meta.csv", root.parent / "vox1_meta.csv") if p.is_file()), None
    )
    meta = _meta(meta_file) if meta_file else {}
    texts = _transcripts(Path(transcripts)) if transcripts else {}
    for spk in speakers:
        info = meta.get(spk.name, {})
        for audio in sorted(spk.glob("*/*.wav")):
            uid = f"{spk.name}/{audio.parent.name}/{audio.stem}"
            ok, duration = audio_duration(audio, corpus, rejects, probe=probe)
            if not ok:
                continue
            attrs = {}
            gender = gender_word(info.get("gender"))
            if gender:
                attrs["Gender"] = gender
            if nationality and info.get("nationality"):
                attrs["Nationality"] = info["nationality"]
            if duration is not None:
                attrs["Duration"] = format_duration(duration)
            yield AudioRecord(
                id=uid,
                audio=str(audio),
                corpus=corpus,
                duration=duration,
                transcript=texts.get(uid, ""),
                attributes=attrs,
                kind="speech",
            )

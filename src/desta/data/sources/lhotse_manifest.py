"""Lhotse manifests, parsed as plain JSON (``lhotse`` itself is not needed).

``root`` is either a folder holding ``*recordings*.jsonl[.gz]`` and ``*supervisions*.jsonl[.gz]``
(and/or ``*cuts*.jsonl[.gz]``), or one such file. Records:

- supervisions + recordings: one record per supervision (its ``start``/``duration`` into the file);
- cuts (``MonoCut`` rows with an inline ``recording``): one record per cut, text = its supervisions' text;
- recordings alone: one record per recording.

Mapping: ``text`` -> transcript; ``gender`` -> ``Gender`` (``Female``/``Male``); ``speaker`` ->
``Speaker`` (unless ``speaker_attribute=False``); ``language`` -> ISO code when it is a known
name (``English`` -> ``en``) or already a code; ``custom`` fields -> attributes with capitalised
names (``emotion`` -> ``Emotion``). Relative ``source`` paths are tried as given, then relative to
the manifest's folder. Only ``file`` sources can be read; ``url``/``command``/``memory`` are reported.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from desta.data.records import AudioRecord, read_jsonl
from desta.data.sources._common import check_root, gender_word, layout_error, reject

LANGUAGES = {
    "english": "en",
    "mandarin": "zh",
    "chinese": "zh",
    "french": "fr",
    "german": "de",
    "spanish": "es",
    "italian": "it",
    "japanese": "ja",
    "korean": "ko",
    "russian": "ru",
    "portuguese": "pt",
    "dutch": "nl",
    "arabic": "ar",
}


def _language(value: Any) -> str | None:
    if not value:
        return None
    text = str(value).strip()
    if text.lower() in LANGUAGES:
        return LANGUAGES[text.lower()]
    if 2 <= len(text) <= 3 and text.isalpha():
        return text.lower()
    return None


def _manifests(root: Path, kind: str) -> list[Path]:
    if root.is_file():
        return [root] if kind in root.name else []
    return sorted(p for p in root.iterdir() if kind in p.name and p.name.endswith((".jsonl", ".jsonl.gz")))


def _audio_path(recording: dict[str, Any], manifest: Path) -> tuple[str | None, str]:
    sources = recording.get("sources") or []
    if not sources:
        return None, "recording has no sources"
    src = sources[0]
    if src.get("type", "file") != "file":
        return None, f"source type {src.get('type')!r} is not supported (only 'file')"
    path = Path(str(src.get("source", "")))
    if not path.is_absolute() and not path.exists() and (manifest.parent / path).exists():
        path = manifest.parent / path
    if not path.is_file():
        return None, f"audio file not found: {path}"
    return str(path), ""


def _attributes(sup: dict[str, Any], speaker_attribute: bool) -> dict[str, str]:
    attrs: dict[str, str] = {}
    gender = gender_word(sup.get("gender"))
    if gender:
        attrs["Gender"] = gender
    if speaker_attribute and sup.get("speaker"):
        attrs["Speaker"] = str(sup["speaker"])
    for key, value in (sup.get("custom") or {}).items():
        if value in (None, "") or isinstance(value, (dict, list)):
            continue
        name = key.replace("_", " ")
        attrs[name[:1].upper() + name[1:]] = str(value)
    return attrs


def read_lhotse(
    root: str | os.PathLike,
    *,
    rejects: list[dict] | None = None,
    speaker_attribute: bool = True,
    corpus: str | None = None,
    kind: str = "speech",
) -> Iterator[AudioRecord]:
    root = check_root(root, "lhotse")
    rec_files, sup_files, cut_files = (_manifests(root, k) for k in ("recordings", "supervisions", "cuts"))
    if not rec_files and not cut_files:
        raise layout_error(
            "Lhotse",
            "ROOT/*recordings*.jsonl[.gz] (+ *supervisions*.jsonl[.gz]) or ROOT/*cuts*.jsonl[.gz]",
            root,
        )
    name = corpus or (root.name if root.is_dir() else root.name.split("_")[0].split(".")[0])
    recordings: dict[str, tuple[dict[str, Any], Path]] = {}
    for f in rec_files:
        for rec in read_jsonl(f):
            if "id" not in rec:
                reject(rejects, name, f, "recording without id")
                continue
            recordings[str(rec["id"])] = (rec, f)
    if sup_files:
        for f in sup_files:
            for sup in read_jsonl(f):
                try:
                    rec, manifest = recordings[str(sup["recording_id"])]
                    start, duration = float(sup["start"]), float(sup["duration"])
                except (KeyError, TypeError, ValueError) as err:
                    reject(rejects, name, f, f"supervision {sup.get('id', '?')}: missing or bad field {err}")
                    continue
                audio, why = _audio_path(rec, manifest)
                if audio is None:
                    reject(rejects, name, manifest, f"recording {rec['id']}: {why}")
                    continue
                yield AudioRecord(
                    id=str(sup.get("id") or f"{rec['id']}-{start:.2f}"),
                    audio=audio,
                    corpus=name,
                    start=start,
                    duration=duration,
                    transcript=" ".join(str(sup.get("text") or "").split()),
                    attributes=_attributes(sup, speaker_attribute),
                    language=_language(sup.get("language")),
                    kind=kind,
                )
    elif rec_files:
        for rid, (rec, manifest) in recordings.items():
            audio, why = _audio_path(rec, manifest)
            if audio is None:
                reject(rejects, name, manifest, f"recording {rid}: {why}")
                continue
            yield AudioRecord(
                id=rid, audio=audio, corpus=name, duration=_float_or_none(rec.get("duration")), kind=kind
            )
    for f in cut_files:
        yield from _cuts(f, name, kind, speaker_attribute, rejects)


def _float_or_none(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _cuts(
    path: Path, name: str, kind: str, speaker_attribute: bool, rejects: list[dict] | None
) -> Iterator[AudioRecord]:
    for cut in read_jsonl(path):
        rec = cut.get("recording")
        if not isinstance(rec, dict):
            reject(rejects, name, path, f"cut {cut.get('id', '?')}: no inline recording (not a MonoCut?)")
            continue
        audio, why = _audio_path(rec, path)
        if audio is None:
            reject(rejects, name, path, f"cut {cut.get('id', '?')}: {why}")
            continue
        sups = sorted(cut.get("supervisions") or [], key=lambda s: float(s.get("start", 0.0)))
        first = sups[0] if sups else {}
        try:
            start, duration = float(cut.get("start", 0.0)), float(cut["duration"])
        except (KeyError, TypeError, ValueError) as err:
            reject(rejects, name, path, f"cut {cut.get('id', '?')}: missing or bad field {err}")
            continue
        yield AudioRecord(
            id=str(cut.get("id") or f"{rec.get('id')}-{start:.2f}"),
            audio=audio,
            corpus=name,
            start=start,
            duration=duration,
            transcript=" ".join(" ".join(str(s.get("text") or "") for s in sups).split()),
            attributes=_attributes(first, speaker_attribute),
            language=_language(first.get("language")),
            kind=kind,
        )

"""Generic table reader: one row per clip in a JSONL, CSV or TSV file (``.jsonl.gz`` too).

Column roles are configurable; every other column (or only ``attribute_columns``) becomes a seed
attribute, named as the column or as ``attribute_names`` renames it. A JSONL row may also carry an
``attributes`` object. Relative audio paths are resolved against ``audio_root`` (default: the table's
folder). Example::

    audio,text,emotion,gender
    clips/a.wav,Hello there.,Happy,Female

gives ``AudioRecord(audio=".../clips/a.wav", transcript="Hello there.", attributes={"emotion": "Happy",
"gender": "Female"})``; pass ``attribute_names={"emotion": "Emotion", "gender": "Gender"}`` for the seed
spelling.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from desta.data.records import AudioRecord, read_jsonl
from desta.data.sources._common import audio_duration, check_root, read_delimited, reject
from desta.errors import DeSTAError

_KINDS = ("speech", "sound", "music")


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    name = path.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz", ".json")):
        yield from read_jsonl(path)
    elif name.endswith(".csv"):
        yield from read_delimited(path, ",")
    elif name.endswith((".tsv", ".txt")):
        yield from read_delimited(path, "\t")
    else:
        raise DeSTAError(f"table source: {path} is not .jsonl, .jsonl.gz, .csv or .tsv")


def _float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


def read_table(
    root: str | os.PathLike,
    *,
    rejects: list[dict] | None = None,
    probe: bool = True,
    audio_column: str = "audio",
    transcript_column: str = "text",
    caption_column: str = "caption",
    id_column: str = "id",
    duration_column: str = "duration",
    start_column: str = "start",
    language_column: str = "language",
    kind_column: str = "kind",
    attribute_columns: Sequence[str] | None = None,
    attribute_names: Mapping[str, str] | None = None,
    audio_root: str | os.PathLike | None = None,
    corpus: str | None = None,
    kind: str = "speech",
) -> Iterator[AudioRecord]:
    """Rows -> records; a row without audio, with a missing file or bad numbers is reported, not fatal."""
    path = check_root(root, "table")
    if path.is_dir():
        raise DeSTAError(f"table source: {path} is a folder; pass the .jsonl/.csv/.tsv file itself")
    base = Path(audio_root) if audio_root is not None else path.parent
    corpus = corpus or path.name.split(".")[0]
    names = dict(attribute_names or {})
    roles = {audio_column, transcript_column, caption_column, id_column, duration_column, start_column}
    roles |= {language_column, kind_column, "attributes", "corpus"}
    if transcript_column == "text":
        roles |= {"transcript", "sentence"}
    for n, row in enumerate(_rows(path), 1):
        where = f"{path}:{n}"
        audio_value = row.get(audio_column)
        if not audio_value:
            reject(rejects, corpus, where, f"row has no {audio_column!r} value")
            continue
        audio = Path(str(audio_value))
        if not audio.is_absolute():
            audio = base / audio
        try:
            duration = _float(row.get(duration_column))
            start = _float(row.get(start_column)) or 0.0
        except (TypeError, ValueError):
            reject(rejects, corpus, where, f"non-numeric {duration_column!r} or {start_column!r}")
            continue
        ok, probed = audio_duration(audio, corpus, rejects, probe=probe and duration is None)
        if not ok:
            continue
        if duration is None and probed is not None:
            duration = max(0.0, probed - start)
        row_kind = str(row.get(kind_column) or kind)
        if row_kind not in _KINDS:
            reject(rejects, corpus, where, f"kind {row_kind!r} is not one of {_KINDS}")
            continue
        attrs: dict[str, str] = {}
        nested = row.get("attributes")
        if isinstance(nested, Mapping):
            attrs.update({str(k): str(v) for k, v in nested.items() if v not in (None, "")})
        columns = attribute_columns if attribute_columns is not None else [k for k in row if k not in roles]
        for col in columns:
            value = row.get(col)
            if value not in (None, "") and not isinstance(value, (dict, list)):
                attrs[names.get(col, col)] = str(value)
        transcript = row.get(transcript_column)
        if transcript is None and transcript_column == "text":
            transcript = row.get("transcript") or row.get("sentence")
        yield AudioRecord(
            id=str(row.get(id_column) or audio_value),
            audio=str(audio),
            corpus=str(row.get("corpus") or corpus),
            start=start,
            duration=duration,
            transcript=" ".join(str(transcript or "").split()),
            caption=" ".join(str(row.get(caption_column) or "").split()),
            attributes=attrs,
            language=str(row[language_column]) if row.get(language_column) else None,
            kind=row_kind,
        )

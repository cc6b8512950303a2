"""Immutable records for audio clips and training samples, and their JSONL shards.

An :class:`AudioRecord` is one clip (or one segment of a file) with everything known about it: where
the audio is, which part of the file, the corpus, the transcript and metadata attributes. A
:class:`Sample` is one training row in the official DeSTA2.5 training JSONL layout (``messages`` with
``audios`` entries, plus ``response``), with the auxiliary DeSTA-AQA5M fields.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desta.errors import DeSTAError


@dataclass(frozen=True)
class AudioRecord:
    """One audio clip.

    Attributes:
        id: unique within its corpus, stable across runs (used for resumption and dedup).
        audio: path to the audio file (absolute, or relative to the manifest's ``data_root``).
        corpus: source corpus name, e.g. ``"LibriSpeech"``.
        start: offset into the file in seconds.
        duration: clip length in seconds, or ``None`` when not yet measured.
        transcript: spoken content, if known ("" for none).
        caption: a free-text description for non-speech audio (AudioCaps, Clotho, ...).
        attributes: ordered metadata, e.g. ``{"Gender": "Female", "Emotion": "Neutral"}``; values are
            strings as they should appear in the seed description.
        language: ISO 639-1 code of the spoken language, if known.
        kind: ``"speech"``, ``"sound"`` or ``"music"``.
    """

    id: str
    audio: str
    corpus: str
    start: float = 0.0
    duration: float | None = None
    transcript: str = ""
    caption: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    language: str | None = None
    kind: str = "speech"

    def with_(self, **changes: Any) -> AudioRecord:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AudioRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise DeSTAError(f"AudioRecord got unknown fields {sorted(unknown)}; known: {sorted(names)}")
        if "id" not in d or "audio" not in d or "corpus" not in d:
            raise DeSTAError(f"AudioRecord needs 'id', 'audio' and 'corpus'; got keys {sorted(d)}")
        d = dict(d)
        d["attributes"] = {str(k): str(v) for k, v in (d.get("attributes") or {}).items()}
        return cls(**d)


@dataclass(frozen=True)
class Sample:
    """One training row, compatible with the official training JSONL and DeSTA-AQA5M rows.

    ``messages`` is a list of ``{"role", "content"}`` dicts; a content holding ``<|AUDIO|>`` carries
    ``"audios": [{"audio": path, "text": transcript}]``. ``response`` is the training target.
    """

    messages: list[dict[str, Any]]
    response: str
    id: str = ""
    dataset: str = ""
    seed_description: str = ""
    prompt: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "id": self.id,
            "dataset": self.dataset,
            "messages": self.messages,
            "response": self.response,
            "seed_description": self.seed_description,
            "prompt": self.prompt,
        }
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Sample:
        if "messages" not in d or "response" not in d:
            raise DeSTAError(f"a training row needs 'messages' and 'response'; got keys {sorted(d)}")
        known = {"id", "dataset", "messages", "response", "seed_description", "prompt"}
        return cls(
            messages=d["messages"],
            response=d["response"],
            id=str(d.get("id", "")),
            dataset=str(d.get("dataset", "")),
            seed_description=str(d.get("seed_description", "")),
            prompt=str(d.get("prompt", "")),
            extra={k: v for k, v in d.items() if k not in known},
        )


def _open(path: Path, mode: str):
    if path.suffix == ".gz":
        return gzip.open(path, mode + "t", encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def read_jsonl(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Yield the JSON objects of a ``.jsonl`` (or ``.jsonl.gz``) file; errors name file and line.

    A truncated last line (a writer killed mid-line) is skipped, not fatal.
    """
    path = Path(path)
    if not path.exists():
        raise DeSTAError(f"{path}: no such file")
    with _open(path, "r") as f:
        lines = f.readlines()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            if i == len(lines) and not line.endswith("\n"):
                return  # torn final line from an interrupted writer
            raise DeSTAError(f"{path}:{i}: not valid JSON ({err.msg})") from None
        if not isinstance(obj, dict):
            raise DeSTAError(f"{path}:{i}: expected a JSON object, got {type(obj).__name__}")
        yield obj


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows atomically (temp file + rename); returns the number written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with _open(tmp, "w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    os.replace(tmp, path)
    return n


def read_records(path: str | os.PathLike) -> Iterator[AudioRecord]:
    for d in read_jsonl(path):
        yield AudioRecord.from_dict(d)


def write_records(path: str | os.PathLike, records: Iterable[AudioRecord]) -> int:
    return write_jsonl(path, (r.to_dict() for r in records))


def read_samples(path: str | os.PathLike) -> Iterator[Sample]:
    for d in read_jsonl(path):
        yield Sample.from_dict(d)

"""desta's predictions file (``OUT/predictions.jsonl``) and the run fingerprint beside it.

One line per attempt::

    {"id", "response", "error", "model", "fingerprint", "answer"?}

``response`` is the model's raw text (None when the attempt failed); ``answer`` is what the task's
prediction step made of it (e.g. DeSTA2.5's prefix removal for MMAU), stored beside the raw text so
that scorers see both and never post-process themselves. ``fingerprint`` identifies the model and
decoding setup (`run_fingerprint`); ``OUT/run.json`` keeps the full description. Files written before
fingerprints existed (no ``fingerprint`` / ``answer`` fields) still read.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PREDICTIONS = "predictions.jsonl"
RUN_INFO = "run.json"


@dataclass(frozen=True)
class PredictionFile:
    """responses: id -> raw text (None when the last attempt failed); answers: id -> post-processed
    answer where the prediction step stored one; errors: id -> message; corrupt: lines that could not
    be parsed (a write cut by a kill); models / fingerprints: the distinct values seen."""

    responses: dict[str, str | None]
    answers: dict[str, str]
    errors: dict[str, str]
    corrupt: int
    models: tuple[str, ...] = ()
    fingerprints: tuple[str, ...] = ()


def run_fingerprint(description: Mapping[str, Any]) -> str:
    """A short stable hash of what makes predictions comparable (model, decoding, prompt mode, task)."""
    text = json.dumps(description, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def read_predictions(path: str | os.PathLike) -> PredictionFile:
    """Read a predictions JSONL; a later success for an id overrides an earlier failure."""
    responses: dict[str, str | None] = {}
    answers: dict[str, str] = {}
    errors: dict[str, str] = {}
    models: set[str] = set()
    prints: set[str] = set()
    corrupt = 0
    p = Path(path)
    if not p.exists():
        return PredictionFile({}, {}, {}, 0)
    with open(p, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                item_id = str(rec["id"])
            except (ValueError, KeyError, TypeError):
                corrupt += 1
                continue
            if rec.get("model") is not None:
                models.add(str(rec["model"]))
            if rec.get("fingerprint"):
                prints.add(str(rec["fingerprint"]))
            response = rec.get("response")
            if response is None:
                if responses.get(item_id) is None:
                    responses[item_id] = None
                    errors[item_id] = str(rec.get("error") or "no response")
                continue
            responses[item_id] = str(response)
            errors.pop(item_id, None)
            if rec.get("answer") is not None:
                answers[item_id] = str(rec["answer"])
            else:
                answers.pop(item_id, None)
    return PredictionFile(responses, answers, errors, corrupt, tuple(sorted(models)), tuple(sorted(prints)))


def append_records(path: Path, records: Sequence[Mapping[str, Any]]) -> None:
    """Append records durably; a last line cut by a kill is closed first so it stays one bad line."""
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            cut = f.read(1) != b"\n"
        if cut:
            with open(path, "a", encoding="utf-8") as f:
                f.write("\n")
    with open(path, "a", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(dict(rec), ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_run_info(out_dir: Path) -> dict[str, Any] | None:
    path = out_dir / RUN_INFO
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def write_run_info(out_dir: Path, info: Mapping[str, Any]) -> None:
    (out_dir / RUN_INFO).write_text(
        json.dumps(dict(info), indent=2, ensure_ascii=False, default=str), encoding="utf-8"
    )

"""Loading helpers shared by the task modules (JSON / JSONL / parquet records, audio references)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from desta.eval.base import DataLayoutError


def read_json_records(path: Path) -> list[dict[str, Any]]:
    """A JSON list or a JSONL file -> list of dicts."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    data = json.loads(text)
    if isinstance(data, dict):
        data = data.get("data") or data.get("results") or list(data.values())
    if not isinstance(data, list):
        raise DataLayoutError(f"{path}: expected a JSON list of records")
    return data


def read_parquet_records(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Rows of Hugging Face parquet files (audio columns stay ``{"bytes", "path"}`` dicts)."""
    try:
        import pyarrow.parquet as pq
    except ImportError as err:  # pragma: no cover - pyarrow is present wherever pandas is
        raise DataLayoutError(
            "reading Hugging Face parquet files needs pyarrow: pip install pyarrow"
        ) from err
    rows: list[dict[str, Any]] = []
    for p in sorted(paths):
        rows.extend(pq.read_table(p).to_pylist())
    return rows


def audio_source(value: Any, root: Path) -> str | bytes:
    """A metadata audio reference -> a path under ``root`` or encoded bytes (HF ``{"bytes", "path"}``)."""
    if isinstance(value, dict):
        if value.get("bytes"):
            return bytes(value["bytes"])
        value = value.get("path") or ""
    text = str(value)
    if text.startswith("./"):
        text = text[2:]
    return text if os.path.isabs(text) else str(root / text)


def load_from_hub(repo_id: str, split: str | None, target: Path) -> Path:  # pragma: no cover - needs a hub
    """Download a Hugging Face dataset snapshot (for users with hub access); returns the local folder."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, repo_type="dataset", local_dir=str(target)))

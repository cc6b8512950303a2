"""Training data: JSONL rows (official layout) -> audio windows, log-mel, ids and labels.

Rows whose audio is missing or unreadable, or that do not fit ``max_seq_length``, are skipped and
counted by reason; they never stop a run. Batches are built from a seeded permutation per epoch, so
a resumed run sees exactly the same order.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from desta.errors import AudioError, DeSTAError
from desta.model.processor import DeSTAProcessor, Encoded, SampleTooLong


def read_rows(path: str | Path, max_rows: int = 0) -> list[dict[str, Any]]:
    """Read training rows; rows missing ``messages`` or ``response`` raise with their line number."""
    from desta.data.records import read_jsonl

    rows = []
    for i, row in enumerate(read_jsonl(path), 1):
        if not isinstance(row.get("messages"), list) or not isinstance(row.get("response"), str):
            raise DeSTAError(f"{path}:{i}: a training row needs 'messages' (list) and 'response' (string)")
        rows.append(row)
        if max_rows and len(rows) >= max_rows:
            break
    if not rows:
        raise DeSTAError(f"{path}: no training rows")
    return rows


def resolve_audio(path: str, data_root: str) -> Path:
    """Join with ``data_root``; like the official loader, try a ``.wav`` extension if missing."""
    p = Path(path)
    if not p.is_absolute() and data_root:
        p = Path(data_root) / p
    if not p.exists() and p.suffix.lower() != ".wav" and p.with_suffix(".wav").exists():
        p = p.with_suffix(".wav")
    return p


@dataclass
class Item:
    """One encoded row: ids/labels plus its audio windows (16 kHz) in slot order."""

    index: int
    encoded: Encoded
    windows: list[np.ndarray]
    keys: list[str]  # cache keys per window (path + window index)
    row: dict[str, Any]


@dataclass
class Skipped:
    index: int
    reason: str


class TrainDataset(torch.utils.data.Dataset):
    def __init__(
        self, rows: list[dict[str, Any]], processor: DeSTAProcessor, data_root: str, max_seq_length: int
    ) -> None:
        self.rows, self.processor = rows, processor
        self.data_root, self.max_seq_length = data_root, max_seq_length

    def __len__(self) -> int:
        return len(self.rows)

    def approx_length(self, i: int) -> int:
        """A cheap length estimate for bucketing (characters / 4 + queries per audio)."""
        row = self.rows[i]
        chars = len(row["response"]) + sum(len(m.get("content", "")) for m in row["messages"])
        n_audio = sum(len(m.get("audios") or []) for m in row["messages"])
        return chars // 4 + n_audio * self.processor.n_queries

    def __getitem__(self, i: int) -> Item | Skipped:
        row = self.rows[i]
        messages, paths = [], []
        for m in row["messages"]:
            audios = []
            for a in (m.get("audios") or []) if isinstance(m, dict) else []:
                path = resolve_audio(str(a.get("audio", "")) if isinstance(a, dict) else "", self.data_root)
                if not path.exists():
                    return Skipped(i, "missing audio file")
                paths.append(path)
                audios.append({**a, "audio": str(path)})
            messages.append({**m, "audios": audios} if isinstance(m, dict) else m)
        try:
            out = self.processor(
                [messages],
                responses=[row["response"]],
                max_length=self.max_seq_length,
                padding_side=None,
                return_features=False,  # features are computed on the training device, per batch
            )
        except AudioError as err:
            return Skipped(i, f"unreadable audio: {str(err).split(': ', 1)[-1][:60]}")
        except SampleTooLong:
            return Skipped(i, "longer than max_seq_length")
        except DeSTAError as err:
            return Skipped(i, f"bad row: {str(err)[:60]}")
        keys = [f"{path}#{k}" for path, n in zip(paths, out.audio_windows[0]) for k in range(n)]
        return Item(i, out.encoded[0], out.windows, keys, row)


def batch_order(
    dataset: TrainDataset, batch_size: int, seed: int, epoch: int, bucketing: bool
) -> list[list[int]]:
    """Deterministic batches for one epoch (drop_last, as officially).

    With bucketing, rows are shuffled, grouped in pools of 50 batches, sorted by length inside a pool,
    cut into batches, and the batches shuffled again.
    """
    rng = random.Random(seed * 1000003 + epoch)
    idx = list(range(len(dataset)))
    rng.shuffle(idx)
    if bucketing:
        pool = batch_size * 50
        batches = []
        for s in range(0, len(idx), pool):
            chunk = sorted(idx[s : s + pool], key=dataset.approx_length)
            batches += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
        batches = [b for b in batches if len(b) == batch_size]
        rng.shuffle(batches)
        return batches
    return [idx[k : k + batch_size] for k in range(0, len(idx) - batch_size + 1, batch_size)]


def collate(items: list[Item | Skipped], processor: DeSTAProcessor) -> dict[str, Any]:
    """Keep the good items; report skips by reason. Audio stays as waveforms (features on device)."""
    good = [x for x in items if isinstance(x, Item)]
    skipped = Counter(x.reason for x in items if isinstance(x, Skipped))
    out: dict[str, Any] = {"skipped": skipped, "items": good}
    if good:
        out.update(processor.collate([x.encoded for x in good], padding_side="right"))
    return out

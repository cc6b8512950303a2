"""A persistent response cache keyed by a hash of the whole request (model, messages, sampling params).

SQLite in WAL mode: safe for several processes on one machine (Ray actors, a resumed run next to an old
one), and every ``put_many`` is one committed transaction, so a killed process loses at most the batch
it was writing. Only successful responses are cached; failures are always retried on the next run.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from desta.data.backends import BackendResult


class ResponseCache:
    """``get_many(keys) -> {key: BackendResult}``, ``put_many({key: BackendResult})``."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self.hits = 0
        self.misses = 0

    def get_many(self, keys: list[str]) -> dict[str, BackendResult]:
        found: dict[str, BackendResult] = {}
        for start in range(0, len(keys), 500):  # SQLite's bound-parameter limit
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, value in self._db.execute(
                f"SELECT key, value FROM responses WHERE key IN ({marks})", chunk
            ):
                found[key] = BackendResult(**json.loads(value))
        self.hits += len(found)
        self.misses += len(set(keys)) - len(found)
        return found

    def put_many(self, items: dict[str, BackendResult]) -> None:
        rows: list[tuple[str, str]] = []
        for key, r in items.items():
            if not r.ok:
                continue
            value: dict[str, Any] = {
                "text": r.text,
                "finish_reason": r.finish_reason,
                "prompt_tokens": r.prompt_tokens,
                "completion_tokens": r.completion_tokens,
            }
            rows.append((key, json.dumps(value, ensure_ascii=False)))
        if rows:
            with self._db:  # one transaction
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO responses (key, value) VALUES (?, ?)", rows)

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

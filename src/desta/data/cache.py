"""A persistent response cache keyed by a hash of the whole request (model, messages, sampling params).

Stored in a :class:`desta.endpoints.DiskCache` (SQLite in WAL mode): safe for several processes on one
machine (Ray actors, a resumed run next to an old one), and every ``put_many`` is one committed
transaction, so a killed process loses at most the batch it was writing. Only successful responses are
cached; failures are always retried on the next run.
"""

from __future__ import annotations

import os

from desta.data.backends import BackendResult
from desta.endpoints import DiskCache


class ResponseCache:
    """``get_many(keys) -> {key: BackendResult}``, ``put_many({key: BackendResult})``."""

    def __init__(self, path: str | os.PathLike) -> None:
        self._store = DiskCache(path)
        self.hits = 0
        self.misses = 0

    def get_many(self, keys: list[str]) -> dict[str, BackendResult]:
        found = {k: BackendResult(**v) for k, v in self._store.get_many(keys).items()}
        self.hits += len(found)
        self.misses += len(set(keys)) - len(found)
        return found

    def put_many(self, items: dict[str, BackendResult]) -> None:
        self._store.put_many(
            {
                key: {
                    "text": r.text,
                    "finish_reason": r.finish_reason,
                    "prompt_tokens": r.prompt_tokens,
                    "completion_tokens": r.completion_tokens,
                }
                for key, r in items.items()
                if r.ok
            }
        )

    def __len__(self) -> int:
        return len(self._store)

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

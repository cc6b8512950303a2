"""What travels on the wire: the on-disk cache, request keys, ``Retry-After``, error bodies, answers."""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from desta.endpoints.types import Completion
from desta.errors import DeSTAError


class DiskCache:
    """SQLite key -> JSON text store in WAL mode (safe for several processes; one transaction per put)."""

    def __init__(self, path: str | os.PathLike) -> None:
        from pathlib import Path

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
        except sqlite3.DatabaseError as err:
            self._db.close()
            raise DeSTAError(
                f"response cache {path} is not a usable SQLite file ({err}); move it away to start a new cache"
            ) from None
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        with self._lock:
            for start in range(0, len(keys), 500):  # SQLite's bound-parameter limit
                chunk = list(keys[start : start + 500])
                sql = f"SELECT key, value FROM responses WHERE key IN ({','.join('?' * len(chunk))})"
                found.update((k, json.loads(v)) for k, v in self._db.execute(sql, chunk))
        return found

    def put_many(self, items: Mapping[str, Any]) -> None:
        rows = [(k, json.dumps(v, ensure_ascii=False)) for k, v in items.items()]
        if rows:
            with self._lock, self._db:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO responses (key, value) VALUES (?, ?)", rows)

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        self._db.close()


def request_key(body: Mapping[str, Any]) -> str:
    """sha256 of the request body with sorted keys: what the cache is keyed by."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds (a number or an HTTP date); ``None`` when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def server_message(data: bytes) -> str:
    """The ``error.message`` of an OpenAI-style error body, else the start of the body."""
    try:
        obj = json.loads(data)
        err = obj.get("error") if isinstance(obj, dict) else None
        msg = err.get("message") if isinstance(err, dict) else (err or (obj or {}).get("detail"))
        if msg:
            return str(msg)[:300]
    except (ValueError, AttributeError):
        pass
    return data[:300].decode(errors="replace").replace("\n", " ")


def model_not_found(data: bytes) -> bool:
    try:
        err = json.loads(data).get("error") or {}
        return isinstance(err, dict) and err.get("code") == "model_not_found"
    except (ValueError, AttributeError):
        return False


def parse_completion(data: bytes, attempts: int) -> Completion:
    """A ``chat.completion`` body -> :class:`Completion`; ``ValueError`` if it is not one."""
    try:
        obj = json.loads(data)
        choices = obj["choices"]
        texts = tuple(str(c["message"].get("content") or "").strip() for c in choices)
        reasons = tuple(str(c.get("finish_reason") or "stop") for c in choices)
        usage = obj.get("usage") or {}
        prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as err:
        raise ValueError(f"malformed chat completion ({type(err).__name__}: {err})") from None
    if not texts:
        raise ValueError("malformed chat completion (no choices)")
    return Completion(texts, reasons, prompt, completion, attempts)


def completion_json(c: Completion) -> dict[str, Any]:
    return {"texts": list(c.texts), "finish_reasons": list(c.finish_reasons),
            "prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens}  # fmt: skip


def completion_from_json(obj: Mapping[str, Any]) -> Completion:
    """A cached :func:`completion_json` back as a :class:`Completion` (``cached``, no tries)."""
    return Completion(
        texts=tuple(obj["texts"]),
        finish_reasons=tuple(obj["finish_reasons"]),
        prompt_tokens=int(obj.get("prompt_tokens", 0)),
        completion_tokens=int(obj.get("completion_tokens", 0)),
        attempts=0,
        cached=True,
    )

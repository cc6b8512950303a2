"""An output folder of a generation run: its lock, its shard files and the keys they finish.

    out/.lock                   flock'ed by the run that writes the folder (holds its pid)
    out/shard-00000.jsonl ...   kept training rows
    out/rejects.jsonl           dropped requests

The lock is an exclusive ``fcntl.flock`` on ``out/.lock``: the kernel releases it when the holder
exits, however it exits (SIGKILL included), so a stale lock cannot outlive its run.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from desta.errors import DeSTAError

SHARD_PATTERN = "shard-{:05d}.jsonl"
REJECTS = "rejects.jsonl"
CACHE = "cache.sqlite"
LOCK = ".lock"


class OutputLockedError(DeSTAError):
    """Another run holds the output folder."""


class OutputLock:
    """Exclusive use of ``out_dir`` for one run, as a context manager.

    Args:
        out_dir: the output folder (created if missing).
        wait: block until the holder finishes instead of raising :class:`OutputLockedError`.
        on_wait: called once with the holder's pid (or ``None`` if unknown) before blocking.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        *,
        wait: bool = False,
        on_wait: Callable[[int | None], None] | None = None,
    ) -> None:
        self.out = Path(out_dir)
        self.wait = wait
        self.on_wait = on_wait
        self._fd: int | None = None

    def __enter__(self) -> OutputLock:
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise DeSTAError(f"cannot use {self.out} as the output folder: {err.strerror or err}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = lock_holder(self.out)
                if not self.wait:
                    raise OutputLockedError(
                        f"output folder {self.out} is in use by another generation run "
                        f"(pid {holder if holder is not None else 'unknown'}); let it finish, "
                        "or pass --wait to start when it does"
                    ) from None
                if self.on_wait is not None:
                    self.on_wait(holder)
                fcntl.flock(fd, fcntl.LOCK_EX)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None


def lock_holder(out_dir: str | os.PathLike) -> int | None:
    """The pid written by the run that holds (or last held) ``out_dir``, if readable."""
    try:
        return int((Path(out_dir) / LOCK).read_text().strip())
    except (OSError, ValueError):
        return None


def _truncate_torn_tail(path: Path) -> None:
    """Cut a final line that has no newline (a writer killed mid-line)."""
    size = path.stat().st_size
    if size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        block = 1 << 16
        pos = size
        while pos > 0:
            start = max(0, pos - block)
            f.seek(start)
            chunk = f.read(pos - start)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                f.truncate(start + nl + 1)
                return
            pos = start
        f.truncate(0)


def _iter_keys(path: Path, field_path: tuple[str, ...]) -> Iterator[tuple[str, dict]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            obj = json.loads(line)
            value: Any = obj
            for name in field_path:
                value = value.get(name, {}) if isinstance(value, dict) else {}
            if isinstance(value, str):
                yield value, obj


def shard_paths(out_dir: str | os.PathLike) -> list[Path]:
    return sorted(Path(out_dir).glob("shard-*.jsonl"))


def finished_keys(out_dir: str | os.PathLike) -> set[str]:
    """Keys of requests with a row in a shard or a permanent reject (torn tails are cut first)."""
    out = Path(out_dir)
    done: set[str] = set()
    for path in shard_paths(out):
        _truncate_torn_tail(path)
        done.update(k for k, _ in _iter_keys(path, ("meta", "key")))
    rej = out / REJECTS
    if rej.exists():
        _truncate_torn_tail(rej)
        done.update(k for k, obj in _iter_keys(rej, ("key",)) if not obj.get("retryable"))
    return done


class ShardWriter:
    """Appends rows to ``shard-NNNNN.jsonl`` files of at most ``shard_size`` rows, fsync per call."""

    def __init__(self, out_dir: str | os.PathLike, shard_size: int) -> None:
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.shard_size = shard_size
        existing = shard_paths(self.out)
        self.index = int(existing[-1].stem.split("-")[1]) if existing else 0
        self.count = 0
        if existing:
            _truncate_torn_tail(existing[-1])
            with open(existing[-1], "rb") as f:
                self.count = sum(1 for _ in f)

    def _append(self, path: Path, lines: list[str]) -> None:
        with open(path, "a", encoding="utf-8") as f:
            f.write("".join(lines))
            f.flush()
            os.fsync(f.fileno())

    def write(self, rows: list[dict[str, Any]]) -> None:
        lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in rows]
        while lines:
            if self.count >= self.shard_size:
                self.index, self.count = self.index + 1, 0
            room = self.shard_size - self.count
            part, lines = lines[:room], lines[room:]
            self._append(self.out / SHARD_PATTERN.format(self.index), part)
            self.count += len(part)

    def write_rejects(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self._append(self.out / REJECTS, [json.dumps(r, ensure_ascii=False) + "\n" for r in rows])

"""``desta ask --keep-alive 10m``: a local ``desta serve`` that later asks find and reuse.

The first ask starts ``desta serve MODEL --port P --idle-exit 10m`` in the background (its own session,
so it outlives the command) and records it in ``$DESTA_CACHE/keepalive/<key>.json``; later asks with
the same model and device find the record, check the server answers ``/health``, and send their
question to it (no imports of torch or transformers, no model load). The server stops itself after the
idle time; ``desta stop`` stops every such server at once (what ``ollama stop`` does for ollama users).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from desta.errors import DeSTAError

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
START_TIMEOUT_S = 600.0  # a first model conversion can take minutes on a small CPU


def parse_duration(text: str) -> float:
    """``"10m"`` -> 600.0, ``"90s"`` -> 90.0, ``"1h"`` -> 3600.0, ``"45"`` -> 45.0 (seconds)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text).lower())
    if m is None or float(m.group(1)) <= 0:
        raise DeSTAError(f"duration {text!r}: expected a positive number with s, m or h, e.g. 10m, 90s, 1h")
    return float(m.group(1)) * _UNITS.get(m.group(2) or "s", 1.0)


def state_dir() -> Path:
    from desta.model.vendored import cache_dir

    return cache_dir() / "keepalive"


def _state_path(model: str | None, device: str) -> Path:
    key = hashlib.sha1(f"{model or 'desta-tiny'}|{device}".encode()).hexdigest()[:12]
    return state_dir() / f"{key}.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url.removesuffix("/v1") + "/health", timeout=timeout) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def find_server(model: str | None, device: str = "cpu") -> str | None:
    """The ``/v1`` URL of a running keep-alive server for ``model`` on ``device``; a stale record (the
    process gone or not answering) is removed."""
    path = _state_path(model, device)
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if _alive(int(state.get("pid", 0))) and _healthy(state["url"]):
        return str(state["url"])
    path.unlink(missing_ok=True)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(model: str | None, idle_s: float, device: str = "cpu", *, log=None,
                 serve_args: tuple[str, ...] = ()) -> str:  # fmt: skip
    """Start ``desta serve`` in the background with ``--idle-exit``; returns its ``/v1`` URL once it
    answers ``/health``. Raises :class:`DeSTAError` with the end of its log if it stops first."""
    path = _state_path(model, device)
    path.parent.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/v1"
    log_path = path.with_suffix(".log")
    cmd = [sys.executable, "-m", "desta", "serve", *([model] if model else []), "--port", str(port),
           "--device", device, "--idle-exit", f"{idle_s:g}", *serve_args]  # fmt: skip
    with log_path.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)  # fmt: skip
    if log:
        log(f"[keep-alive] starting desta serve on {url} (stops {idle_s:g} s after the last question;"
            " `desta stop` stops it now)")  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-1500:]
            raise DeSTAError(f"the keep-alive server exited with status {proc.returncode}; its log ({log_path}):\n{tail}")
        if _healthy(url, timeout=1.0):
            state = {"pid": proc.pid, "url": url, "model": model or "desta-tiny", "device": device,
                     "idle_exit_s": idle_s, "log": str(log_path), "started": time.time()}  # fmt: skip
            path.write_text(json.dumps(state, indent=2))
            return url
        time.sleep(0.2)
    proc.terminate()
    raise DeSTAError(f"the keep-alive server did not answer within {START_TIMEOUT_S:g} s; see {log_path}")


def ensure_server(model: str | None, idle_s: float, device: str = "cpu", *, log=None,
                  serve_args: tuple[str, ...] = ()) -> str:  # fmt: skip
    """A running keep-alive server's URL for ``model``, started when there is none."""
    return find_server(model, device) or start_server(model, idle_s, device, log=log, serve_args=serve_args)


def running_servers() -> list[dict[str, Any]]:
    """The recorded keep-alive servers whose process is alive."""
    out = []
    for path in sorted(state_dir().glob("*.json")) if state_dir().is_dir() else []:
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if _alive(int(state.get("pid", 0))):
            out.append({**state, "state_file": str(path)})
        else:
            path.unlink(missing_ok=True)
    return out


def stop_servers(timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """Stop every keep-alive server (SIGTERM, then SIGKILL after ``timeout_s``); returns what was stopped."""
    stopped = running_servers()
    for s in stopped:
        try:
            os.killpg(int(s["pid"]), signal.SIGTERM)  # its own session: the server and its children
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout_s
    for s in stopped:
        while _alive(int(s["pid"])) and time.monotonic() < deadline:
            _reap(int(s["pid"]))
            time.sleep(0.1)
        if _alive(int(s["pid"])):
            os.killpg(int(s["pid"]), signal.SIGKILL)
        Path(s["state_file"]).unlink(missing_ok=True)
    return stopped


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our own child (a server started by this process), so it stops being alive."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass

"""Servers the benchmarks start: a free local port, and waiting until an OpenAI-compatible server answers."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float, poll: float = 1.0) -> float:
    """Seconds until ``GET url/v1/models`` answers 200; exits when ``proc`` dies or ``timeout`` passes."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            pass
        time.sleep(poll)
    raise SystemExit(f"{url} not ready after {timeout:.0f} s")

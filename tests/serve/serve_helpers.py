"""Helpers for the server tests: tiny wav bytes, base64, free ports and a live uvicorn server."""

from __future__ import annotations

import base64
import io
import socket
import threading
import time

import numpy as np
import soundfile as sf


def wav_bytes(seconds: float = 0.5, sr: int = 16000, freq: float = 440.0) -> bytes:
    """A mono 16-bit sine wave encoded as wav."""
    t = np.arange(int(seconds * sr)) / sr
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def audio_part(seconds: float = 0.5) -> dict:
    return {"type": "input_audio", "input_audio": {"data": b64(wav_bytes(seconds)), "format": "wav"}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn serving an app in a background thread on 127.0.0.1:<free port>, configured exactly as
    ``desta serve`` configures it (timeouts, connection limit, header deadline) from the app's settings."""

    def __init__(self, app) -> None:
        import dataclasses

        import uvicorn

        from desta.serve.server import uvicorn_config

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        settings = dataclasses.replace(app.state.settings, host="127.0.0.1", port=self.port)
        self.server = uvicorn.Server(uvicorn_config(app, settings, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("live server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def request_bytes(body: bytes, path: str = "/v1/chat/completions", length: int | None = None) -> bytes:
    """A raw HTTP/1.1 POST (keep-alive); ``length`` overrides Content-Length (to send less than it says)."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\n\r\n"
    )
    return head.encode() + body


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of one response read from ``sock``."""
    import http.client

    resp = http.client.HTTPResponse(sock)
    resp.begin()
    body = resp.read()
    headers = {k.lower(): v for k, v in resp.getheaders()}
    resp.fp = None  # keep the socket open for the next request on it
    return resp.status, headers, body


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the peer closes ``sock`` (reading and discarding data), or None if it stays open."""
    start = time.monotonic()
    sock.settimeout(0.05)
    while time.monotonic() - start < seconds:
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - start
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - start
    return None

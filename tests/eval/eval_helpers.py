"""Helpers for the eval tests: tiny WAV files, a scripted predictor, a fake OpenAI-compatible server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf


def write_wav(path: Path, seconds: float = 0.2, sr: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr)
    return path


def wav_bytes(seconds: float = 0.2, sr: int = 16000) -> bytes:
    import io

    buf = io.BytesIO()
    t = np.arange(int(seconds * sr)) / sr
    sf.write(buf, (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr, format="WAV")
    return buf.getvalue()


class ScriptedPredictor:
    """Answers each conversation with ``answer(conversation)``; records what it saw.

    The audio of every conversation is decoded (as a real model would), so a broken file raises.
    """

    name = "scripted"

    def __init__(self, answer: Callable[[list[dict[str, Any]]], str], decode_audio: bool = True) -> None:
        self.answer = answer
        self.decode_audio = decode_audio
        self.seen: list[list[dict[str, Any]]] = []

    @property
    def settings(self) -> dict[str, Any]:
        return {"backend": "scripted"}

    def predict(self, conversations: Sequence[list[dict[str, Any]]]) -> list[str]:
        from desta.audio import decode_audio_bytes, load_audio

        out = []
        for conv in conversations:
            if self.decode_audio:
                for msg in conv:
                    for a in msg.get("audios") or []:
                        src = a["audio"]
                        decode_audio_bytes(src) if isinstance(src, bytes) else load_audio(src)
            self.seen.append(conv)
            out.append(self.answer(conv))
        return out


def user_text(conv: list[dict[str, Any]]) -> str:
    return next(m["content"] for m in conv if m["role"] == "user")


class FakeOpenAI:
    """A local HTTP server speaking ``POST /v1/chat/completions``.

    ``reply(body) -> list[str] | float`` gives the choices' texts, or a float = seconds to sleep before
    answering (to provoke client timeouts); ``fail_next`` forces an HTTP status for the next N requests;
    ``models``: what ``GET /v1/models`` lists (None: that route answers 404, as some servers do).
    """

    def __init__(self, reply: Callable[[dict[str, Any]], Any], models: Sequence[str] | None = None) -> None:
        self.reply = reply
        self.models = list(models) if models is not None else None
        self.requests: list[dict[str, Any]] = []
        self.model_lists = 0
        self.fail_next: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/") != "/v1/models" or outer.models is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                outer.model_lists += 1
                data = json.dumps(
                    {"object": "list", "data": [{"id": m, "object": "model"} for m in outer.models]}
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data.encode())

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                outer.requests.append(body)
                if outer.fail_next:
                    code = outer.fail_next.pop(0)
                    self.send_response(code)
                    self.end_headers()
                    self.wfile.write(b'{"error": "scripted"}')
                    return
                result = outer.reply(body)
                if isinstance(result, float):
                    time.sleep(result)
                    result = ["late"]
                payload = {
                    "id": "x",
                    "object": "chat.completion",
                    "choices": [
                        {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                        for i, t in enumerate(result)
                    ],
                }
                data = json.dumps(payload).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_judge(url: str, tmp_path: Path | None = None, **kwargs: Any):
    from desta.eval.judge import Judge, JudgeOptions

    cache = str(tmp_path / "judgments.sqlite") if tmp_path else None
    opts = {"timeout_s": 5.0, "max_retries": 1, "backoff_s": 0.01, "cache_path": cache, **kwargs}
    return Judge(JudgeOptions(base_url=url, **opts))

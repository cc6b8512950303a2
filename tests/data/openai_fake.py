"""A fake OpenAI-compatible server on 127.0.0.1 for generation tests (uvicorn in a thread).

It checks the API key (401) and the model (404 ``model_not_found``) like a real server, answers
``GET /v1/models``, and writes answers that pass the data filters and grounding checks: it reads the
transcript and gender back out of the seed description in the prompt (``[00:00-00:02] words
(Gender: Female)``). ``gate`` holds every chat request until it is set; ``refuse`` makes every chat
request a 400; ``revoke_after=N`` changes the key after N chat requests (a key revoked mid-run);
``models_status=501`` makes ``GET /v1/models`` answer that status (a minimal server or proxy that
implements only ``POST /v1/chat/completions``). ``models_requests`` counts the ``GET /v1/models`` asked.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

_DESCRIPTION = re.compile(r"<start_audio>\[[^\]]*\]\s*(.*?)\s*\(Gender:\s*(\w+)\)<end_audio>", re.S)


def grounded_answer(prompt: str) -> str:
    """An answer that states the transcript and the gender found in the prompt's seed description."""
    m = _DESCRIPTION.search(prompt)
    if m is None:
        return "The speaker sounds calm and clear."
    transcript, gender = m.group(1), m.group(2).lower()
    who = {"female": "woman", "male": "man"}.get(gender, "person")
    return f'A {who} says "{transcript}" in a calm voice, in English.'


def _error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": "invalid_request_error", "code": code}}, status
    )


class FakeOpenAIServer:
    """``with FakeOpenAIServer(key="k", model="m") as server: server.url`` (``http://127.0.0.1:PORT/v1``)."""

    def __init__(
        self,
        *,
        key: str = "right-key",
        model: str = "tiny-llm",
        refuse: bool = False,
        revoke_after: int | None = None,
        models_status: int | None = None,
    ) -> None:
        self.key = key
        self.revoke_after = revoke_after
        self.model = model
        self.refuse = refuse
        self.models_status = models_status
        self.models_requests = 0
        self.gate: threading.Event | None = None
        self.chat_requests = 0
        self.unauthorized = 0
        self.app = self._build()

    def _authorized(self, request: Request) -> bool:
        ok = request.headers.get("authorization") == f"Bearer {self.key}"
        self.unauthorized += not ok
        return ok

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        async def models(request: Request) -> Any:
            self.models_requests += 1
            if self.models_status is not None:
                return _error(self.models_status, "Not Implemented", "not_implemented")
            if not self._authorized(request):
                return _error(401, "Incorrect API key provided", "invalid_api_key")
            return {"object": "list", "data": [{"id": self.model, "object": "model"}]}

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Any:
            self.chat_requests += 1
            if self.revoke_after is not None and self.chat_requests > self.revoke_after:
                self.key = "revoked"
            if not self._authorized(request):
                return _error(401, "Incorrect API key provided", "invalid_api_key")
            body = await request.json()
            if body.get("model") != self.model:
                return _error(404, f"The model `{body.get('model')}` does not exist.", "model_not_found")
            if self.refuse:
                return _error(
                    400, "This model's maximum context length is 16 tokens", "context_length_exceeded"
                )
            while self.gate is not None and not self.gate.is_set():
                await asyncio.sleep(0.02)
            text = grounded_answer(body["messages"][-1]["content"])
            return {
                "id": f"cmpl-{self.chat_requests}",
                "object": "chat.completion",
                "model": self.model,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 40, "completion_tokens": len(text.split()), "total_tokens": 50},
            }

        return app

    def __enter__(self) -> FakeOpenAIServer:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self._server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="error")
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.time() + 30
        while not self._server.started and time.time() < deadline:
            time.sleep(0.02)
        if not self._server.started:
            raise RuntimeError("fake OpenAI server did not start")
        self.url = f"http://127.0.0.1:{port}/v1"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.gate is not None:
            self.gate.set()
        self._server.should_exit = True
        self._thread.join(timeout=10)

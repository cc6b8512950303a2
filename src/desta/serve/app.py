"""The OpenAI-compatible HTTP layer: ``create_app(engine, settings) -> FastAPI``.

Routes: ``POST /v1/chat/completions`` (JSON or ``stream: true`` server-sent events),
``GET /v1/models`` and ``GET /health``. The app holds no model logic: it validates, converts OpenAI
messages to desta conversations (``desta.serve.messages``), and hands them to a
:class:`~desta.serve.engine.DynamicBatcher` over the engine. Every refusal is an OpenAI-style error
body ``{"error": {"message", "type", "param", "code"}}`` with a 4xx status; nothing a client sends
can stop the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from desta.errors import DeSTAError
from desta.serve.engine import DynamicBatcher, Engine, StreamEnd
from desta.serve.errors import QueueFullError, RequestError
from desta.serve.messages import to_conversation
from desta.serve.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    ModelCard,
    ModelList,
    Usage,
)
from desta.serve.settings import ServeSettings

_CONTENT_TYPES = "text, input_audio, audio_url"


def build_options(request: ChatCompletionRequest, settings: ServeSettings) -> Any:
    """Map OpenAI sampling fields to ``desta.GenerationOptions`` (no temperature or 0: greedy)."""
    from desta.infer.options import GenerationOptions

    max_tokens = request.max_completion_tokens or request.max_tokens or settings.default_max_tokens
    if max_tokens > settings.max_new_tokens_limit:
        raise RequestError(
            f"max_tokens {max_tokens} is over this server's limit of {settings.max_new_tokens_limit}",
            param="max_tokens",
            code="max_tokens_too_large",
        )
    if request.n != 1:
        raise RequestError("only n=1 is supported", param="n", code="unsupported_parameter")
    stop = request.stop
    stop = (stop,) if isinstance(stop, str) else tuple(stop or ())
    if len(stop) > 4:
        raise RequestError("at most 4 stop sequences are allowed", param="stop")
    sample = request.temperature is not None and request.temperature > 0
    return GenerationOptions(
        max_new_tokens=max_tokens,
        do_sample=sample,
        temperature=request.temperature if sample else 1.0,
        top_p=request.top_p if (sample and request.top_p is not None) else 1.0,
        top_k=request.top_k or 0,
        seed=request.seed,
        stop=stop,
    )


def _clean_loc(loc: tuple) -> str:
    """``messages.0.content.list[...].1.text`` -> ``messages.0.content.1.text`` (drop union branch names)."""
    keep = [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p in _BRANCH_NAMES))]
    return ".".join(keep)


_BRANCH_NAMES = frozenset({"str", "int", "float", "bool", "none", "list", "dict"})


def _validation_message(err: ValidationError) -> RequestError:
    errors = err.errors(include_url=False)
    tagged = [e for e in errors if e["type"] in ("union_tag_invalid", "union_tag_not_found")]
    first = tagged[0] if tagged else max(errors, key=lambda e: len(e["loc"]))
    loc = _clean_loc(first["loc"])
    if first["type"] == "union_tag_invalid":
        tag = (first.get("ctx") or {}).get("tag")
        return RequestError(
            f"unknown content part type {tag!r} at {loc}; supported types: {_CONTENT_TYPES}",
            code="unsupported_content_type",
            param=loc,
        )
    if first["type"] == "union_tag_not_found":
        return RequestError(
            f"content part at {loc} has no 'type'", code="unsupported_content_type", param=loc
        )
    return RequestError(f"invalid request at {loc or 'body'}: {first['msg']}", param=loc or None)


async def parse_request(request: Request) -> ChatCompletionRequest:
    body = await request.body()
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RequestError(f"request body is not valid JSON ({err})", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise RequestError("request body must be a JSON object", code="invalid_json")
    try:  # JSON escapes can smuggle lone surrogates ("\ud800") that no UTF-8 text may hold
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise RequestError(
            "request body holds invalid Unicode (a lone surrogate escape)", code="invalid_json"
        ) from None
    try:
        return ChatCompletionRequest.model_validate(payload)
    except ValidationError as err:
        raise _validation_message(err) from None


class _BodyLimit:
    """ASGI middleware: refuse bodies over ``max_bytes`` (by Content-Length or as they stream in)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _error(self) -> RequestError:
        return RequestError(
            f"request body is larger than {self.max_bytes} bytes", status=413, code="body_too_large"
        )

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    err = self._error()
                    await JSONResponse(err.body(), status_code=err.status)(scope, receive, send)
                    return
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise self._error()
            return message

        await self.app(scope, limited, send)


def create_app(engine: Engine, settings: ServeSettings | None = None) -> FastAPI:
    """Build the server around ``engine``; the batcher starts and stops with the app's lifespan."""
    settings = settings or ServeSettings()
    model_name = settings.served_model_name or engine.name
    known_names = {model_name, engine.name, *settings.extra_model_names}
    created = int(time.time())
    batcher = DynamicBatcher(
        engine,
        max_batch=settings.max_batch_size,
        window_s=settings.batch_window_ms / 1000,
        max_wait_s=settings.batch_max_wait_ms / 1000,
        max_queue=settings.max_queue,
    )
    admitted = 0  # requests between parsing and their answer: bounded by max_queue

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(title="desta", summary="OpenAI-compatible DeSTA2.5 audio chat server", lifespan=lifespan)
    app.state.batcher = batcher
    app.state.settings = settings
    app.add_middleware(_BodyLimit, max_bytes=settings.max_body_bytes)

    @app.exception_handler(RequestError)
    async def _request_error(_: Request, err: RequestError) -> JSONResponse:
        headers = {"Retry-After": "1"} if isinstance(err, QueueFullError) else None
        return JSONResponse(err.body(), status_code=err.status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        error = RequestError(
            str(err.detail), status=err.status_code, code="not_found" if err.status_code == 404 else None
        )
        return JSONResponse(error.body(), status_code=err.status_code, headers=getattr(err, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, err: Exception) -> JSONResponse:
        error = RequestError(
            f"internal error: {type(err).__name__}: {err}",
            status=500,
            code="internal_error",
            type="server_error",
        )
        return JSONResponse(error.body(), status_code=500)

    def check_auth(request: Request) -> None:
        if settings.api_key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            token.strip().encode(), settings.api_key.encode()
        ):
            raise RequestError(
                "missing or wrong API key; send 'Authorization: Bearer <key>'",
                status=401,
                code="invalid_api_key",
                type="authentication_error",
            )

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "model": model_name, "queued": batcher.queued, "in_flight": admitted}

    @app.get("/v1/models")
    async def models(request: Request) -> dict:
        check_auth(request)
        return ModelList(data=[ModelCard(id=model_name, created=created)]).model_dump()

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        nonlocal admitted
        check_auth(request)
        if admitted >= settings.max_queue:
            raise QueueFullError(settings.max_queue)
        admitted += 1
        batcher.incoming += 1  # the batcher may wait for this request while it is decoded
        incoming = True
        release = True
        try:
            req = await parse_request(request)
            if req.model is not None and req.model not in known_names:
                raise RequestError(
                    f"model {req.model!r} is not served here; use {model_name!r} (see GET /v1/models)",
                    status=404,
                    code="model_not_found",
                    param="model",
                )
            options = build_options(req, settings)
            converted = await asyncio.to_thread(to_conversation, req.messages, settings)
            batcher.incoming -= 1
            incoming = False
            request_id = f"chatcmpl-{uuid.uuid4().hex}"
            if req.stream:
                include_usage = bool(req.stream_options and req.stream_options.include_usage)
                items = await batcher.stream(
                    converted.conversation, options, timeout=settings.request_timeout_s
                )
                release = False  # the stream releases its slot when it ends

                async def events() -> AsyncIterator[str]:
                    nonlocal admitted
                    try:
                        async for line in _sse(items, request_id, model_name, include_usage):
                            yield line
                    finally:
                        admitted -= 1

                return StreamingResponse(
                    events(),
                    media_type="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                )
            try:
                result = await batcher.generate(
                    converted.conversation, options, timeout=settings.request_timeout_s
                )
            except asyncio.TimeoutError:
                raise RequestError(
                    f"the request took longer than {settings.request_timeout_s:.0f} s",
                    status=504,
                    code="timeout",
                    type="timeout_error",
                ) from None
            except DeSTAError as err:  # the model refused this input (e.g. unusable audio)
                if isinstance(err, RequestError):
                    raise
                raise RequestError(str(err), code="invalid_input") from None
            return ChatCompletion(
                id=request_id,
                created=int(time.time()),
                model=model_name,
                choices=[
                    Choice(
                        index=0,
                        message=AssistantMessage(content=result.text),
                        finish_reason=result.finish_reason,
                    )
                ],
                usage=Usage(
                    prompt_tokens=result.prompt_tokens,
                    completion_tokens=result.completion_tokens,
                    total_tokens=result.prompt_tokens + result.completion_tokens,
                ),
            ).model_dump()
        finally:
            if incoming:
                batcher.incoming -= 1
            if release:
                admitted -= 1

    return app


def _event(obj: dict) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


async def _sse(
    items: AsyncIterator[Any], request_id: str, model: str, include_usage: bool
) -> AsyncIterator[str]:
    """OpenAI chunk events: role first, one event per piece, a finish event, optional usage, [DONE]."""
    created = int(time.time())

    def chunk(
        delta: Delta, finish: str | None = None, usage: Usage | None = None, choices: bool = True
    ) -> str:
        body = ChatCompletionChunk(
            id=request_id,
            created=created,
            model=model,
            choices=[ChunkChoice(delta=delta, finish_reason=finish)] if choices else [],
            usage=usage,
        )
        data = body.model_dump(exclude_none=True)
        if include_usage:
            data.setdefault("usage", None)  # OpenAI sends "usage": null on every chunk but the last
        return _event(data)

    yield chunk(Delta(role="assistant", content=""))
    try:
        async for item in items:
            if isinstance(item, StreamEnd):
                yield chunk(Delta(), finish=item.finish_reason)
                if include_usage:
                    prompt = item.prompt_tokens or 0
                    completion = (
                        item.completion_tokens
                        if item.completion_tokens is not None
                        else item.completion_pieces
                    )
                    yield chunk(
                        Delta(),
                        usage=Usage(
                            prompt_tokens=prompt,
                            completion_tokens=completion,
                            total_tokens=prompt + completion,
                        ),
                        choices=False,
                    )
            else:
                yield chunk(Delta(content=item))
    except asyncio.TimeoutError:
        yield _event(
            RequestError(
                "the stream took too long and was cut", status=504, code="timeout", type="timeout_error"
            ).body()
        )
    except Exception as err:  # noqa: BLE001 - the stream has started: report in-band
        yield _event(
            RequestError(
                f"generation failed: {err}", status=500, code="generation_failed", type="server_error"
            ).body()
        )
    yield "data: [DONE]\n\n"

"""The OpenAI-compatible HTTP layer: ``create_app(engine, settings) -> FastAPI``.

Routes: ``POST /v1/chat/completions`` (JSON or ``stream: true`` server-sent events),
``GET /v1/models`` and ``GET /health``. The app holds no model logic: it reads the body under a
deadline, parses it within limits (``desta.serve.parse``), converts OpenAI messages to desta
conversations (``desta.serve.messages``), and hands them to a
:class:`~desta.serve.engine.DynamicBatcher` over the engine (a :class:`desta.infer.engine.Engine`; a
bare ``DeSTAModel`` is wrapped in ``LocalEngine``). Every refusal is an OpenAI-style error
body ``{"error": {"message", "type", "param", "code"}}`` with a 4xx status; an unexpected failure is
a 500 that names no path and keeps the connection open; nothing a client sends can stop the server.

A request takes a queue slot only once its body has arrived, so slow uploads cannot crowd out other
clients. A client that disconnects while its request waits or runs has its work cancelled (see
:class:`~desta.serve.engine.DynamicBatcher`).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from desta.errors import DeSTAError
from desta.infer.engine import Engine, as_engine
from desta.serve.engine import DynamicBatcher
from desta.serve.errors import QueueFullError, RequestError
from desta.serve.messages import to_conversation
from desta.serve.parse import build_options, check_prompt_length, parse_request, read_body
from desta.serve.schemas import AssistantMessage, ChatCompletion, Choice, ModelCard, ModelList, Usage
from desta.serve.settings import ServeSettings
from desta.serve.sse import internal_error, sse_events

CLIENT_CLOSED = 499  # nginx's status for "client closed the request"; no one reads it


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
                    response = JSONResponse(err.body(), status_code=err.status, headers=_close_headers(err))
                    await response(scope, receive, send)
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


def _close_headers(err: RequestError) -> dict[str, str] | None:
    """Headers of an error answer; a body that was not read to its end ends the connection."""
    if isinstance(err, QueueFullError):
        return {"Retry-After": "1"}
    if err.status in (408, 413):
        return {"Connection": "close"}
    return None


class _Stream(StreamingResponse):
    """A streaming response that runs ``on_close`` however it ends, even if never iterated (a
    client that left before the first event): the stream's queue slot and job are always released."""

    def __init__(self, content: AsyncIterator[str], on_close: Callable[[], Awaitable[None]], **kw: Any):
        super().__init__(content, **kw)
        self._on_close = on_close

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with contextlib.suppress(RuntimeError):  # already closed or still running elsewhere
                await self.body_iterator.aclose()
            await self._on_close()


async def _until_disconnect(receive: Callable[[], Awaitable[dict]]) -> None:
    """Returns when the client has gone (after the body, the server's ``receive`` only reports that)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def create_app(engine: Engine, settings: ServeSettings | None = None) -> FastAPI:
    """Build the server around ``engine``; the batcher starts and stops with the app's lifespan."""
    settings = settings or ServeSettings()
    engine = as_engine(engine)
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
    admitted = 0  # requests between their body's arrival and their answer: bounded by max_queue

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
    app.state.engine = engine
    app.add_middleware(_BodyLimit, max_bytes=settings.max_body_bytes)

    def error_response(err: RequestError) -> JSONResponse:
        return JSONResponse(err.body(), status_code=err.status, headers=_close_headers(err))

    @app.exception_handler(RequestError)
    async def _request_error(_: Request, err: RequestError) -> JSONResponse:
        return error_response(err)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        error = RequestError(
            str(err.detail), status=err.status_code, code="not_found" if err.status_code == 404 else None
        )
        return JSONResponse(error.body(), status_code=err.status_code, headers=getattr(err, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, err: Exception) -> JSONResponse:
        return error_response(internal_error(err))  # last resort: the route answers its own 500s

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
        try:
            return await answer(request)
        except ClientDisconnect:
            return Response(status_code=CLIENT_CLOSED)
        except RequestError as err:
            return error_response(err)
        except DeSTAError as err:  # the model refused this input (e.g. unusable audio)
            return error_response(RequestError(str(err), code="invalid_input"))
        except Exception as err:  # noqa: BLE001 - answered here, so the keep-alive connection survives
            return error_response(internal_error(err))

    async def answer(request: Request) -> Any:
        nonlocal admitted
        check_auth(request)
        body = await read_body(request, settings.body_timeout_s)
        req = parse_request(body, settings)
        if req.model is not None and req.model not in known_names:
            raise RequestError(
                f"model {req.model!r} is not served here; use {model_name!r} (see GET /v1/models)",
                status=404,
                code="model_not_found",
                param="model",
            )
        options = build_options(req, settings)
        await asyncio.to_thread(check_prompt_length, req, engine, settings)
        if admitted >= settings.max_queue:
            raise QueueFullError(settings.max_queue)
        admitted += 1
        batcher.incoming += 1  # the batcher may wait for this request while it is decoded
        incoming = True
        release = True
        gone = asyncio.ensure_future(_until_disconnect(request.receive))
        try:
            converted = await asyncio.to_thread(to_conversation, req.messages, settings)
            batcher.incoming -= 1
            incoming = False
            if gone.done():
                return Response(status_code=CLIENT_CLOSED)
            request_id = f"chatcmpl-{uuid.uuid4().hex}"
            if req.stream:
                include_usage = bool(req.stream_options and req.stream_options.include_usage)
                items = await batcher.stream(
                    converted.conversation, options, timeout=settings.request_timeout_s
                )
                release = False  # the stream releases its slot when it ends
                gone.cancel()  # from here Starlette watches the connection and cancels the stream

                async def closed() -> None:
                    nonlocal admitted
                    await items.aclose()  # cancels the job, whether it is queued or running
                    admitted -= 1

                return _Stream(
                    sse_events(items, request_id, model_name, include_usage),
                    on_close=closed,
                    media_type="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                )
            work = asyncio.ensure_future(
                batcher.generate(converted.conversation, options, timeout=settings.request_timeout_s)
            )
            await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():  # the client left: its job is skipped or its call told to stop
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await work
                return Response(status_code=CLIENT_CLOSED)
            try:
                result = work.result()
            except asyncio.TimeoutError:
                raise RequestError(
                    f"the request took longer than {settings.request_timeout_s:g} s",
                    status=504,
                    code="timeout",
                    type="timeout_error",
                ) from None
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
            gone.cancel()
            if incoming:
                batcher.incoming -= 1
            if release:
                admitted -= 1

    return app

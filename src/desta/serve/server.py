"""Run the OpenAI-compatible server with uvicorn (what ``desta serve`` calls)."""

from __future__ import annotations

import sys
from typing import Any

from desta.infer.engine import Engine
from desta.serve.settings import ServeSettings

HEADER_BYTES_LIMIT = 16 * 1024
"""Largest request line + headers (h11's ``max_incomplete_event_size``); beyond it uvicorn answers 400."""


def make_engine(
    model: str | None = None,
    *,
    device: str = "cpu",
    fake: bool = False,
    engine: str = "local",
    server: str | None = None,
) -> Engine:
    """The engine to serve: the registry's ``engine`` (:data:`desta.infer.registry.ENGINES`; ``local``:
    ``desta.load_model(model)`` in a ``LocalEngine``), or the deterministic fake engine for trials."""
    if fake:
        from desta.serve.fake import FakeEngine

        return FakeEngine()
    from desta.infer.registry import EngineOptions
    from desta.infer.registry import make_engine as make_registered

    return make_registered(engine, model, EngineOptions(device=device, server=server))


def uvicorn_config(app: Any, settings: ServeSettings, log_level: str = "info") -> Any:
    """The ``uvicorn.Config`` of ``desta serve``: connection limits and per-connection timeouts.

    Idle keep-alive connections close after ``keep_alive_timeout_s``, connections that do not send
    their headers in ``header_timeout_s`` are closed, and beyond ``max_connections`` open connections
    uvicorn answers 503 before reading any body (a hard memory bound).
    """
    import uvicorn

    from desta.serve.protocol import header_deadline_protocol

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        lifespan="on",
        http=header_deadline_protocol(settings.header_timeout_s),
        timeout_keep_alive=settings.keep_alive_timeout_s,
        limit_concurrency=settings.max_connections,
        h11_max_incomplete_event_size=HEADER_BYTES_LIMIT,
        timeout_graceful_shutdown=10,
    )


def run_server(engine: Engine, settings: ServeSettings) -> None:
    """Serve ``engine`` until interrupted. Blocks."""
    import uvicorn

    from desta.serve.app import create_app

    app: Any = create_app(engine, settings)
    name = settings.served_model_name or engine.name
    idle = f"; stops after {settings.idle_exit_s:g} s without requests" if settings.idle_exit_s > 0 else ""
    print(
        f"desta: serving {name!r} at http://{settings.host}:{settings.port}/v1 "
        f"(auth {'on' if settings.api_key else 'off'}; Ctrl-C stops{idle})",
        file=sys.stderr,
    )
    tracker = None
    if settings.idle_exit_s > 0:
        from desta.serve.idle import IdleTracker

        app = tracker = IdleTracker(app)
    server = uvicorn.Server(uvicorn_config(app, settings))
    if tracker is not None:
        from desta.serve.idle import exit_when_idle

        exit_when_idle(server, tracker, settings.idle_exit_s)
    server.run()

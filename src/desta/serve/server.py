"""Run the OpenAI-compatible server with uvicorn (what ``desta serve`` calls)."""

from __future__ import annotations

import sys

from desta.serve.engine import Engine, load_engine
from desta.serve.settings import ServeSettings


def make_engine(model: str | None = None, *, device: str = "cpu", fake: bool = False) -> Engine:
    """The model to serve: ``desta.load_model(model)``, or the deterministic fake engine for trials."""
    if fake:
        from desta.serve.fake import FakeEngine

        return FakeEngine()
    return load_engine(model, device=device)


def run_server(engine: Engine, settings: ServeSettings) -> None:
    """Serve ``engine`` until interrupted. Blocks."""
    import uvicorn

    from desta.serve.app import create_app

    app = create_app(engine, settings)
    name = settings.served_model_name or engine.name
    print(
        f"desta: serving {name!r} at http://{settings.host}:{settings.port}/v1 "
        f"(auth {'on' if settings.api_key else 'off'}; Ctrl-C stops)",
        file=sys.stderr,
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        timeout_keep_alive=5,
        # connections beyond this get 503 from uvicorn before any body is read: a hard memory bound
        limit_concurrency=settings.max_queue * 2 + 32,
        timeout_graceful_shutdown=10,
    )

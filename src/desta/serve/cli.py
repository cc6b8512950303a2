"""``desta serve`` (OpenAI-compatible server) and ``desta demo-web`` (Gradio page)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from desta.infer.keepalive import parse_duration
from desta.serve.settings import MiB, ServeSettings


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    return ServeSettings(
        host=args.host,
        port=args.port,
        api_key=args.api_key or os.environ.get("DESTA_API_KEY") or None,
        allowed_audio_dir=Path(args.allowed_audio_dir) if args.allowed_audio_dir else None,
        served_model_name=args.served_model_name,
        max_body_bytes=int(args.max_body_mb * MiB),
        max_audio_seconds=args.max_audio_seconds,
        max_audios_per_request=args.max_audios,
        max_new_tokens_limit=args.max_tokens_limit,
        max_batch_size=args.max_batch_size,
        batch_window_ms=args.batch_window_ms,
        batch_max_wait_ms=args.batch_max_wait_ms,
        max_queue=args.max_queue,
        request_timeout_s=args.timeout,
        max_prompt_tokens=args.max_prompt_tokens,
        body_timeout_s=args.body_timeout,
        header_timeout_s=args.header_timeout,
        keep_alive_timeout_s=args.keep_alive_timeout,
        max_connections=args.max_connections,
        idle_exit_s=parse_duration(args.idle_exit) if args.idle_exit else 0.0,
    )


def _serve(args: argparse.Namespace) -> int:
    from desta.serve.server import make_engine, run_server

    settings = settings_from_args(args)
    run_server(_engine(args, make_engine), settings)
    return 0


def _demo_web(args: argparse.Namespace) -> int:
    from desta.serve.server import make_engine
    from desta.serve.web import launch_demo

    launch_demo(_engine(args, make_engine), host=args.host, port=args.port)
    return 0


def _engine(args: argparse.Namespace, make_engine):
    return make_engine(args.model, device=args.device, fake=args.fake, engine=args.engine, server=args.server)


def _engine_flags(p: argparse.ArgumentParser) -> None:
    from desta.infer.registry import ENGINES, engines_help

    p.add_argument(
        "--engine", default="local", choices=list(ENGINES), metavar="NAME",
        help=f"what answers (default: %(default)s): {engines_help()}",
    )  # fmt: skip
    p.add_argument("--server", default=None, metavar="URL", help="the server the endpoint engine asks")


def register(subparsers: argparse._SubParsersAction) -> None:
    d = ServeSettings()
    p = subparsers.add_parser(
        "serve",
        help="OpenAI-compatible chat server with audio input",
        description="Serve MODEL at http://HOST:PORT/v1 (POST /v1/chat/completions, GET /v1/models, GET /health).",
    )
    p.add_argument(
        "model", nargs="?", default=None, help="model name or checkpoint folder (default: desta-tiny)"
    )
    p.add_argument("--host", default=d.host, help="interface to bind (default: %(default)s, loopback only)")
    p.add_argument("--port", type=int, default=d.port, help="TCP port (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="torch device of the model (default: %(default)s)")
    p.add_argument(
        "--api-key", default=None, help="require 'Authorization: Bearer KEY' (or set DESTA_API_KEY)"
    )
    p.add_argument(
        "--allowed-audio-dir", default=None, help="folder from which audio_url may name local files"
    )
    p.add_argument(
        "--served-model-name", default=None, help="name to show in /v1/models (default: the model's)"
    )
    flags = [
        ("--max-batch-size", int, d.max_batch_size, "requests per generate call"),
        ("--batch-window-ms", float, d.batch_window_ms, "wait this long for more requests to batch (ms)"),
        ("--batch-max-wait-ms", float, d.batch_max_wait_ms, "wait for requests still being decoded (ms)"),
        ("--max-queue", int, d.max_queue, "requests waiting for the model before answering 429"),
        ("--max-body-mb", float, d.max_body_bytes / MiB, "largest request body (MiB)"),
        ("--max-audio-seconds", float, d.max_audio_seconds, "decoded audio per request (s)"),
        ("--max-audios", int, d.max_audios_per_request, "audio parts per request"),
        ("--max-tokens-limit", int, d.max_new_tokens_limit, "largest max_tokens a client may ask for"),
        ("--max-prompt-tokens", int, d.max_prompt_tokens, "tokens of client text per request"),
        ("--timeout", float, d.request_timeout_s, "per-request timeout, queueing included (s)"),
        ("--body-timeout", float, d.body_timeout_s, "time for a request body to arrive (s; 408 beyond)"),
        ("--header-timeout", float, d.header_timeout_s, "time for a connection to send its headers (s)"),
        ("--keep-alive-timeout", float, d.keep_alive_timeout_s, "idle keep-alive connections close (s)"),
        ("--max-connections", int, d.max_connections, "open connections before answering 503"),
    ]
    for flag, kind, default, text in flags:
        p.add_argument(flag, type=kind, default=default, help=f"{text} (default: %(default)s)")
    p.add_argument(
        "--idle-exit", default=None, metavar="DURATION",
        help="stop after this long without a request, e.g. 10m, 90s, 1h (default: never)",
    )  # fmt: skip
    p.add_argument("--fake", action="store_true", help="serve a deterministic echo engine (protocol trials)")
    _engine_flags(p)
    p.set_defaults(func=_serve)

    w = subparsers.add_parser("demo-web", help="browser demo: upload or record audio and chat (Gradio)")
    w.add_argument(
        "model", nargs="?", default=None, help="model name or checkpoint folder (default: desta-tiny)"
    )
    w.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    w.add_argument("--port", type=int, default=7860, help="TCP port (default: %(default)s)")
    w.add_argument("--device", default="cpu", help="torch device of the model (default: %(default)s)")
    w.add_argument("--fake", action="store_true", help="use the deterministic echo engine")
    _engine_flags(w)
    w.set_defaults(func=_demo_web)

"""`desta ask` and `desta transcribe`: answer a question about audio from the command line."""

from __future__ import annotations

import argparse
import sys

from desta.infer.engine import server_base_url
from desta.infer.registry import ENGINES, engines_help
from desta.model.options import GenerationOptions
from desta.model.precision import PRECISIONS

__all__ = ["ASK_OPTIONS", "ask_options", "register", "server_base_url"]

# `desta ask`'s decoding defaults: greedy, 256 new tokens; temperature and top_p apply with --sample
ASK_OPTIONS = GenerationOptions(max_new_tokens=256, temperature=0.7, top_p=0.9)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ask", help="ask a question about one or more audio files")
    p.add_argument("audio", nargs="+", help="audio file(s) (wav/flac/ogg/mp3); the last argument is the question")
    p.add_argument("--model", default=None, help="model folder or hub id (default: the embedded desta-tiny)")
    p.add_argument("--system", default=None, help="system prompt")
    p.add_argument("--transcript", default=None, help="use this transcript instead of Whisper ASR (one audio)")
    d = ASK_OPTIONS
    p.add_argument("--max-new-tokens", type=int, default=d.max_new_tokens, help="longest answer, in tokens")
    p.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--temperature", type=float, default=d.temperature, help="sampling temperature (with --sample)")
    p.add_argument("--top-p", type=float, default=d.top_p, help="nucleus sampling mass (with --sample)")
    p.add_argument("--seed", type=int, default=d.seed, help="sampling seed (with --sample)")
    p.add_argument("--device", default="cpu", help="where the model runs, e.g. cpu or cuda")
    p.add_argument(
        "--precision", default="auto", choices=PRECISIONS,
        help="LLM precision: auto = bf16 on GPU, fp32 on CPU; fast = bf16 also on CPUs that compute it natively",
    )  # fmt: skip
    p.add_argument("--no-stream", action="store_true", help="print the answer at the end instead of streaming it")
    p.add_argument("--show-transcript", action="store_true", help="also print the Whisper transcript(s)")
    p.add_argument(
        "--server", default=None, metavar="URL",
        help="ask a running OpenAI-compatible server (e.g. `desta serve`: http://127.0.0.1:8000, /v1 is added "
        "when the URL has no path) instead of loading a model here; --model names the served model "
        "(default: the first one it lists)",
    )  # fmt: skip
    p.add_argument(
        "--engine", default=None, choices=list(ENGINES), metavar="NAME",
        help=f"what answers (default: endpoint with --server or --keep-alive, else local): {engines_help()}",
    )  # fmt: skip
    p.add_argument(
        "--keep-alive", default=None, metavar="DURATION",
        help="answer through a local `desta serve` kept running in the background until DURATION (e.g. 10m) "
        "after the last question: the first ask starts it, later asks reuse it without loading a model; "
        "`desta stop` stops it",
    )  # fmt: skip
    p.set_defaults(func=run_ask)

    s = sub.add_parser("stop", help="stop the background servers `desta ask --keep-alive` started")
    s.set_defaults(func=run_stop)


def run_stop(args: argparse.Namespace) -> int:
    from desta.infer.keepalive import stop_servers

    stopped = stop_servers()
    for s in stopped:
        print(f"stopped desta serve {s['model']} ({s['url']}, pid {s['pid']})")
    if not stopped:
        print("no keep-alive server is running")
    return 0


def ask_options(args: argparse.Namespace) -> GenerationOptions:
    """The decoding options of a `desta ask` command line (greedy unless --sample)."""
    return GenerationOptions(
        max_new_tokens=args.max_new_tokens,
        do_sample=args.sample,
        temperature=args.temperature if args.sample else 1.0,
        top_p=args.top_p if args.sample else 1.0,
        seed=args.seed,
    )


def _engine(args: argparse.Namespace):
    """The engine `desta ask` runs, made by the registry (:data:`desta.infer.registry.ENGINES`): a running
    server with --server (no model load here, a second or so per question), else the model loaded in this
    process, or the one --engine names."""
    from desta.errors import DeSTAError
    from desta.infer.registry import EngineOptions, make_engine

    if args.keep_alive and args.server:
        raise DeSTAError("--keep-alive starts and reuses its own local server; drop --server (or --keep-alive)")
    name = args.engine or ("endpoint" if args.server or args.keep_alive else "local")
    if (args.server or args.keep_alive) and name != "endpoint":
        raise DeSTAError(f"--server and --keep-alive answer through the endpoint engine, not {name!r}")
    if name == "endpoint" and not (args.server or args.keep_alive):
        raise DeSTAError("the endpoint engine needs --server URL (or --keep-alive)")
    if args.keep_alive:
        from desta.infer.keepalive import ensure_server, parse_duration

        if args.show_transcript or args.transcript is not None:
            raise DeSTAError("--show-transcript and --transcript need a local model; drop --keep-alive to use them")
        idle = parse_duration(args.keep_alive)
        args.server = ensure_server(args.model, idle, args.device, log=lambda m: print(m, file=sys.stderr))
        args.model = None  # the server serves exactly that model: ask it for the one it lists
    options = EngineOptions(device=args.device, precision=args.precision, server=args.server)
    if name == "endpoint":
        from desta.endpoints import RetryPolicy

        if args.show_transcript or args.transcript is not None:
            raise DeSTAError("--show-transcript and --transcript need a local model; drop --server to use them")
        # interactive: a server that is not there fails in about a second instead of a minute of backoff
        options = EngineOptions(server=args.server, retry=RetryPolicy(max_attempts=2, initial_delay=0.5))
    if name == "local":
        import torch

        torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    engine = make_engine(name, args.model, options)
    if name == "local" and engine.model.config.untrained:
        print("[untrained adapter: answers come from random connector weights]", file=sys.stderr)
    return engine


def run_ask(args: argparse.Namespace) -> int:
    from desta.audio import load_audio
    from desta.errors import DeSTAError
    from desta.messages import conversation

    if len(args.audio) < 2:
        raise DeSTAError('give at least one audio file and a question: desta ask clip.wav "What is said?"')
    *audios, question = args.audio
    for a in audios:  # fail on a bad file before spending time loading the model
        load_audio(a)
    if args.transcript is not None and len(audios) != 1:
        raise DeSTAError(f"--transcript applies to one audio file, got {len(audios)}")
    conv = conversation(question, audios, system=args.system, transcript=args.transcript)
    options = ask_options(args)
    engine = _engine(args)
    try:
        if args.show_transcript or args.no_stream:
            result = engine.generate([conv], options)[0]
            if args.show_transcript:
                for t in result.transcripts:
                    print(f"[transcript] {t}", file=sys.stderr)
            print(result.text)
            return 0
        for piece in engine.stream(conv, options):
            print(piece, end="", flush=True)
        print()
        return 0
    finally:
        engine.close()

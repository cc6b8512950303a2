"""`desta ask` and `desta transcribe`: answer a question about audio from the command line."""

from __future__ import annotations

import argparse
import sys

from desta.model.precision import PRECISIONS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ask", help="ask a question about one or more audio files")
    p.add_argument("audio", nargs="+", help="audio file(s) (wav/flac/ogg/mp3); the last argument is the question")
    p.add_argument("--model", default=None, help="model folder or hub id (default: the embedded desta-tiny)")
    p.add_argument("--system", default=None, help="system prompt")
    p.add_argument("--transcript", default=None, help="use this transcript instead of Whisper ASR (one audio)")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--top-p", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--precision", default="auto", choices=PRECISIONS,
        help="LLM precision: auto = bf16 on GPU, fp32 on CPU; fast = bf16 also on CPUs that compute it natively",
    )  # fmt: skip
    p.add_argument("--no-stream", action="store_true", help="print the answer at the end instead of streaming it")
    p.add_argument("--show-transcript", action="store_true", help="also print the Whisper transcript(s)")
    p.set_defaults(func=run_ask)


def run_ask(args: argparse.Namespace) -> int:
    import torch

    import desta
    from desta.audio import load_audio
    from desta.errors import DeSTAError
    from desta.messages import conversation

    if len(args.audio) < 2:
        raise DeSTAError('give at least one audio file and a question: desta ask clip.wav "What is said?"')
    *audios, question = args.audio
    for a in audios:  # fail on a bad file before spending time loading the model
        load_audio(a)
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    from desta.model.precision import resolve_dtype

    model = desta.load_model(args.model, device=args.device, llm_dtype=resolve_dtype(args.precision, args.device))
    if model.config.untrained:
        print("[untrained adapter: answers come from random connector weights]", file=sys.stderr)
    if args.transcript is not None and len(audios) != 1:
        raise DeSTAError(f"--transcript applies to one audio file, got {len(audios)}")
    conv = conversation(question, audios, system=args.system, transcript=args.transcript)
    options = desta.GenerationOptions(
        max_new_tokens=args.max_new_tokens,
        do_sample=args.sample,
        temperature=args.temperature if args.sample else 1.0,
        top_p=args.top_p if args.sample else 1.0,
        seed=args.seed,
    )
    if args.show_transcript or args.no_stream:
        result = model.generate([conv], options)[0]
        if args.show_transcript:
            for t in result.transcripts:
                print(f"[transcript] {t}", file=sys.stderr)
        print(result.text)
        return 0
    for piece in model.stream(conv, options):
        print(piece, end="", flush=True)
    print()
    return 0

"""desta-tiny on the CPU: time to first token and tokens/s when answering a question about a 5 s clip.

The clip is the bundled example (5.3 s of read speech). The model is loaded once (not timed); each
repeat runs the whole path a user waits for: audio loading, Whisper features, VAD, Whisper ASR,
the real-length encoder pass and connector, the LLM prefill and decoding, streamed through
``model.stream``. Goal (issue 7): an answer in under 3 s on one core.

    python bench/tiny_latency.py [--threads 1] [--repeats 5] [--max-new-tokens 64] [--precision fast]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import write_result  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--model", default=None, help="default: the packaged desta-tiny")
    ap.add_argument("--precision", default="auto", help="LLM precision (desta.model.precision): auto or fast")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import desta
    from desta.model.load import example_clip

    t = time.perf_counter()
    from desta.model.precision import resolve_dtype

    model = desta.load_model(args.model, llm_dtype=resolve_dtype(args.precision, "cpu"))
    load_s = time.perf_counter() - t
    question = "What is said, and is the speaker a man or a woman?"
    # no system message: the model's default one, as `desta ask` in the README sends
    conv = [{"role": "user", "content": f"<|AUDIO|>\n{question}", "audios": [{"audio": example_clip()}]}]
    tok = model.tokenizer
    runs, follow_ups = [], []
    answer = ""
    for r in range(args.repeats + 1):  # the first run warms up (VAD session, kernels) and is not counted
        model.clear_transcript_cache()  # a new clip each time: ASR runs, as for a user's first question
        t0 = time.perf_counter()
        first = None
        pieces = []
        for piece in model.stream(conv, max_new_tokens=args.max_new_tokens):
            if first is None and piece:
                first = time.perf_counter() - t0
            pieces.append(piece)
        total = time.perf_counter() - t0
        answer = "".join(pieces)
        n_tokens = len(tok(answer, add_special_tokens=False)["input_ids"])
        decode_s = max(1e-9, total - (first or total))
        if r:
            runs.append({"ttft_s": first, "total_s": total, "tokens": n_tokens, "decode_tokens_per_s": (n_tokens - 1) / decode_s})
        print(f"run {r}{' (warm-up)' if not r else ''}: first token {first:.2f} s, answer {total:.2f} s, {n_tokens} tokens")
        if r:  # a follow-up question about the same clip reuses its transcript (ASR cache)
            t0 = time.perf_counter()
            it = model.stream(conv, max_new_tokens=args.max_new_tokens)
            next(it)
            follow_ups.append(time.perf_counter() - t0)
            for _ in it:
                pass

    # where the time to first token goes
    stages = {}
    model.clear_transcript_cache()
    t = time.perf_counter()
    prepared = model.prepare([conv])
    stages["prepare_audio_asr_s"] = time.perf_counter() - t
    t = time.perf_counter()
    with torch.no_grad():
        feats = model.generator.audio_features(prepared.mel)
    stages["encoder_connector_s"] = time.perf_counter() - t
    figures = {
        "model": args.model or "desta-tiny (packaged)",
        "clip": "bundled example.wav, 5.3 s read speech",
        "question": question,
        "threads": args.threads,
        "llm_precision": args.precision,
        "llm_dtype": str(model.llm_model.dtype),
        "max_new_tokens": args.max_new_tokens,
        "load_s": round(load_s, 2),
        "ttft_s_median": round(statistics.median(r["ttft_s"] for r in runs), 3),
        "answer_s_median": round(statistics.median(r["total_s"] for r in runs), 3),
        "ttft_s_follow_up_same_clip_median": round(statistics.median(follow_ups), 3),
        "decode_tokens_per_s_median": round(statistics.median(r["decode_tokens_per_s"] for r in runs), 1),
        "tokens": runs[-1]["tokens"],
        "goal_answer_s": 3.0,
        "stages_one_run": {k: round(v, 3) for k, v in stages.items()},
        "audio_feature_shape": list(feats.shape) if feats is not None else None,
        "answer": answer,
        "runs": runs,
    }
    path = write_result("tiny_latency" if args.precision == "auto" else f"tiny_latency_{args.precision}", figures)
    print(
        f"desta-tiny, {args.threads} thread(s): first token {figures['ttft_s_median']} s, whole answer "
        f"{figures['answer_s_median']} s ({figures['tokens']} tokens, {figures['decode_tokens_per_s_median']} tok/s) -> {path}"
    )


if __name__ == "__main__":
    main()

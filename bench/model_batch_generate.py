"""Batched vs one-at-a-time generation on real offline backbones (1 thread, greedy).

Model: whisper-base + SmolLM2-135M-Instruct (offline PyPI packages) with an untrained adapter of
desta-tiny's shape (2 Q-Former layers, intermediate 1536). 16 short real clips with user transcripts
(no ASR), max_new_tokens 32. The script asserts that both ways give the same token ids, then reports
the end-to-end throughput ratio and the ratio for the LLM generation part alone (front end = audio
loading + Whisper encoder + connector, measured separately and subtracted). Target: >= 4x.

Writes ``bench/results/model_batch_generate.json``.

    python bench/model_batch_generate.py [--clips 16] [--max-new-tokens 32]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import write_result  # noqa: E402

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
ASTERISK = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
QUESTIONS = [
    "What does the speaker say?",
    "Describe the speaker's voice.",
    "Summarise the audio in one sentence.",
    "Is the speaker happy or sad?",
]


def clips(n: int) -> list[tuple[str, str]]:
    """(path, transcript) pairs: LibriVox sentences with their references, then Asterisk prompts."""
    out: list[tuple[str, str]] = []
    if (LIBRIVOX / "transcription").exists():
        for line in (LIBRIVOX / "transcription").read_text().splitlines():
            m = re.match(r"<s>(.*)</s>\s*\((.+)\)", line.strip())
            if m:
                out.append((str(LIBRIVOX / f"{m.group(2)}.wav"), m.group(1).strip()))
    for p in sorted(ASTERISK.glob("*.wav")):
        if len(out) >= n:
            break
        if "-" in p.stem and not p.stem[0].isdigit():
            out.append((str(p), p.stem.replace("-", " ")))  # the file name is the label
    if len(out) < n:
        raise SystemExit(
            f"only {len(out)} clips found; install pocketsphinx-testdata and asterisk-core-sounds-en-wav"
        )
    return out[:n]


def conversation(i: int, path: str, text: str) -> list[dict]:
    return [
        {
            "role": "user",
            "content": f"<|AUDIO|>\n{QUESTIONS[i % len(QUESTIONS)]}",
            "audios": [{"audio": path, "text": text}],
        }
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument(
        "--real-length", action="store_true", help="pad_audio_to_30s=False (encode real clip lengths)"
    )
    args = ap.parse_args()
    torch.set_num_threads(1)

    from desta.infer.options import GenerationOptions
    from desta.model.config import DeSTAConfig
    from desta.model.load import build_model

    t0 = time.perf_counter()
    cfg = DeSTAConfig(
        encoder_model_id="offline:whisper-base",
        llm_model_id="offline:smollm2-135m-instruct",
        qformer_num_hidden_layers=2,
        qformer_intermediate_size=1536,
        untrained=True,
        name="desta-tiny-shape-untrained",
        pad_audio_to_30s=not args.real_length,
    )
    model = build_model(cfg, seed=0)
    print(f"built model in {time.perf_counter() - t0:.1f} s; taps {model.config.taps}")
    convs = [conversation(i, p, t) for i, (p, t) in enumerate(clips(args.clips))]
    opts = GenerationOptions(max_new_tokens=args.max_new_tokens)

    model.generate(convs[:1], opts)  # warm-up

    # front end alone (audio + encoder + connector), one by one and batched
    with torch.no_grad():
        t0 = time.perf_counter()
        for c in convs:
            model.generator.audio_features(model.prepare([c]).mel)
        front_single = time.perf_counter() - t0
        t0 = time.perf_counter()
        model.generator.audio_features(model.prepare(convs).mel)
        front_batch = time.perf_counter() - t0

    t0 = time.perf_counter()
    single = [model.generate([c], opts)[0] for c in convs]
    t_single = time.perf_counter() - t0
    t0 = time.perf_counter()
    batch = model.generate(convs, opts)
    t_batch = time.perf_counter() - t0

    same = [a.token_ids == b.token_ids for a, b in zip(single, batch)]
    tokens = sum(r.completion_tokens for r in batch)
    gen_single, gen_batch = t_single - front_single, t_batch - front_batch
    figures = {
        "clips": args.clips,
        "pad_audio_to_30s": not args.real_length,
        "max_new_tokens": args.max_new_tokens,
        "completion_tokens": tokens,
        "identical_outputs": sum(same),
        "one_by_one_s": t_single,
        "batched_s": t_batch,
        "throughput_ratio_end_to_end": t_single / t_batch,
        "front_end_one_by_one_s": front_single,
        "front_end_batched_s": front_batch,
        "generation_only_one_by_one_s": gen_single,
        "generation_only_batched_s": gen_batch,
        "throughput_ratio_generation_only": gen_single / gen_batch,
        "tokens_per_s_one_by_one": tokens / t_single,
        "tokens_per_s_batched": tokens / t_batch,
        "target": ">= 4x (batched vs one at a time)",
        "sample_outputs": [r.text for r in batch[:3]],
    }
    print(
        f"{tokens} tokens; one by one {t_single:.1f} s, batched {t_batch:.1f} s -> x{t_single / t_batch:.2f} end to end"
    )
    print(
        f"front end (encoder+connector) {front_single:.1f} s vs {front_batch:.1f} s; generation only "
        f"{gen_single:.1f} s vs {gen_batch:.1f} s -> x{gen_single / gen_batch:.2f}"
    )
    print(f"identical outputs: {sum(same)}/{len(same)}")
    path = write_result("model_batch_generate" + ("_real_length" if args.real_length else ""), figures)
    print(f"wrote {path}")
    if not all(same):
        bad = [i for i, s in enumerate(same) if not s]
        print(f"MISMATCH in clips {bad}: {[single[i].text for i in bad]} vs {[batch[i].text for i in bad]}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

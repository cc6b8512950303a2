"""Request building, backends (fake, OpenAI-compatible over loopback), retries, cache and filters."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from desta.data.backends import (
    BackendResult,
    FakeBackend,
    OpenAIBackend,
    RetryPolicy,
    TransientBackendError,
    generate_with_retries,
    make_backend,
)
from desta.data.cache import ResponseCache
from desta.data.filters import FilterConfig, check_response
from desta.data.generate import (
    GENERATION_SYSTEM_PROMPT,
    TRAINING_SYSTEM_PROMPT,
    PromptFormat,
    SamplingParams,
    build_request,
    cache_key,
    derive_seed,
    generation_messages,
    to_sample,
    training_messages,
)
from desta.data.records import AudioRecord
from desta.endpoints import EndpointUnavailableError
from desta.errors import BackboneUnavailableError, DeSTAError


@dataclass(frozen=True)
class Instr:
    text: str
    category: str
    kinds: tuple[str, ...] = ("speech",)


class ListPool:
    """A tiny deterministic instruction pool: the seed picks an item."""

    items = ("What is the speaker's emotion?", "Describe the audio.", "Transcribe the speech.")

    def sample(self, seed: int, kind: str = "speech") -> Instr:
        return Instr(self.items[seed % len(self.items)], f"cat{seed % len(self.items)}", (kind,))


def describe(rec: AudioRecord) -> str:
    return f"[00:00-00:02] {rec.transcript} (Gender: {rec.attributes.get('Gender', '?')})"


REC = AudioRecord(
    id="a1",
    audio="clips/a1.wav",
    corpus="Toy",
    duration=2.0,
    transcript="Excuse me?",
    attributes={"Gender": "Female"},
)


def test_training_and_generation_messages_golden():
    train = training_messages(REC, "What is the speaker's emotion?")
    assert train == [
        {"role": "system", "content": TRAINING_SYSTEM_PROMPT},
        {
            "role": "user",
            "content": "<|AUDIO|>\nWhat is the speaker's emotion?",
            "audios": [{"audio": "clips/a1.wav", "text": "Excuse me?"}],
        },
    ]
    gen = generation_messages(train, ["[00:00-00:02] Excuse me? (Gender: Female)"])
    assert gen == [
        {"role": "system", "content": GENERATION_SYSTEM_PROMPT},
        {
            "role": "user",
            "content": "<start_audio>[00:00-00:02] Excuse me? (Gender: Female)<end_audio>\nWhat is the speaker's emotion?",
        },
    ]


def test_prompt_format_variants_and_empty_transcript():
    fmt = PromptFormat(instruction_first=True, tags_in_content=True, training_system="")
    rec = REC.with_(transcript="")
    train = training_messages(rec, "Describe it.", fmt)
    assert train == [
        {
            "role": "user",
            "content": "Describe it.\n<start_audio><|AUDIO|><end_audio>",
            "audios": [{"audio": "clips/a1.wav", "text": " "}],
        }
    ]
    gen = generation_messages(train, ["D"], fmt)
    assert gen[1]["content"] == "Describe it.\n<start_audio>D<end_audio>"
    with pytest.raises(DeSTAError):
        generation_messages(train, [], fmt)
    with pytest.raises(DeSTAError):
        generation_messages(train, ["a", "b"], fmt)


def test_build_request_deterministic_and_sample_row():
    r1 = build_request(REC, 0, seed=7, pool=ListPool(), describe=describe)
    r2 = build_request(REC, 0, seed=7, pool=ListPool(), describe=describe)
    r3 = build_request(REC, 1, seed=7, pool=ListPool(), describe=describe)
    assert r1 == r2 and r1.key == "Toy/a1#0" and r3.key == "Toy/a1#1"
    assert r1.seed == derive_seed(7, "Toy/a1#0") != r3.seed
    assert r1.instruction == ListPool.items[r1.seed % 3]
    row = to_sample(r1, "She sounds calm.", model="m").to_dict()
    assert set(row) == {"id", "dataset", "messages", "response", "seed_description", "prompt", "meta"}
    assert row["id"] == "a1" and row["dataset"] == "Toy" and row["response"] == "She sounds calm."
    assert row["seed_description"] == "[00:00-00:02] Excuse me? (Gender: Female)"
    assert row["prompt"] == r1.instruction and row["messages"][1]["content"] == f"<|AUDIO|>\n{r1.instruction}"
    assert row["meta"]["key"] == "Toy/a1#0" and row["meta"]["attributes"] == {"Gender": "Female"}


def test_cache_key_covers_model_messages_and_params():
    msgs = [{"role": "user", "content": "hi"}]
    p = SamplingParams(max_new_tokens=8)
    base = cache_key("m", msgs, p)
    assert len(base) == 64 and base == cache_key("m", [dict(msgs[0])], SamplingParams(max_new_tokens=8))
    assert base != cache_key("m2", msgs, p)
    assert base != cache_key("m", [{"role": "user", "content": "hi!"}], p)
    assert base != cache_key("m", msgs, SamplingParams(max_new_tokens=9))
    assert base != cache_key("m", msgs, SamplingParams(max_new_tokens=8, seed=1))


def test_cache_roundtrip_and_failures_not_cached(tmp_path):
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        cache.put_many(
            {
                "a": BackendResult(text="x", finish_reason="length", completion_tokens=3),
                "b": BackendResult.failed("HTTP 500", retryable=True),
            }
        )
        got = cache.get_many(["a", "b", "c"])
        assert got == {"a": BackendResult(text="x", finish_reason="length", completion_tokens=3)}
        assert (cache.hits, cache.misses, len(cache)) == (1, 2, 1)
    with ResponseCache(tmp_path / "c.sqlite") as again:  # persistent
        assert again.get_many(["a"])["a"].text == "x"


def test_retries_transient_items_with_backoff():
    fails = {"flaky": 2}

    def fail(conv):
        content = conv[-1]["content"]
        if content == "bad":
            return BackendResult.failed("HTTP 400: context length exceeded", retryable=False)
        if content in fails and fails[content] > 0:
            fails[content] -= 1
            return BackendResult.failed("HTTP 503", retryable=True)
        return None

    backend = FakeBackend(fail=fail)
    sleeps: list[float] = []
    batch = [[{"role": "user", "content": c}] for c in ("ok", "flaky", "bad")]
    policy = RetryPolicy(max_attempts=5, initial_delay=1.0, multiplier=2.0, jitter=0.0)
    results, attempts = generate_with_retries(
        backend, batch, [SamplingParams()] * 3, policy, sleep=sleeps.append
    )
    assert [r.ok for r in results] == [True, True, False]
    assert results[2].error == "HTTP 400: context length exceeded" and not results[2].retryable
    assert attempts == [1, 3, 1]
    assert sleeps == [1.0, 2.0]
    assert backend.calls == 5


def test_retries_give_up_and_whole_batch_exceptions():
    class Down:
        name, model_id, calls = "down", "m", 0

        def generate(self, batch, params):
            self.calls += 1
            raise TransientBackendError("connection refused")

    sleeps: list[float] = []
    backend = Down()
    results, attempts = generate_with_retries(
        backend,
        [[{"role": "user", "content": "x"}]],
        [SamplingParams()],
        RetryPolicy(max_attempts=3, jitter=0.0),
        sleep=sleeps.append,
    )
    assert not results[0].ok and results[0].retryable and "connection refused" in results[0].error
    assert attempts == [3] and backend.calls == 3 and sleeps == [1.0, 2.0]


@pytest.mark.parametrize(
    ("text", "finish", "reason"),
    [
        ("", "stop", "empty"),
        ("   ", "stop", "empty"),
        ("The speaker sounds", "length", "truncated"),
        ("I'm sorry, but I can't listen to audio.", "stop", "refusal"),
        ("As an AI, I have no ears.", "stop", "refusal"),
        ("According to the description, she is angry.", "stop", "leak"),
        ("Based on the text, the speaker is male.", "stop", "leak"),
        ("The metadata says 2 seconds.", "stop", "leak"),
        ("The seed description mentions a dog.", "stop", "leak"),
        ("You hear <start_audio> a dog.", "stop", "leak"),
        ("The speaker sounds calm and says 'Excuse me?'.", "stop", None),
        ("A dog barks twice, then a car passes.", "stop", None),
    ],
)
def test_filters(text, finish, reason):
    assert check_response(text, finish) == reason


def test_filter_config_is_configurable():
    cfg = FilterConfig(
        min_chars=5, drop_truncated=False, max_chars=20, refusal_patterns=(), leak_patterns=(r"\bbanana\b",)
    )
    assert check_response("abc", "stop", cfg) == "empty"
    assert check_response("cut off here", "length", cfg) is None
    assert check_response("x" * 21, "stop", cfg) == "too_long"
    assert check_response("As an AI, hi", "stop", cfg) is None
    assert check_response("a Banana!", "stop", cfg) == "leak"


def test_vllm_backend_without_vllm_is_a_clear_error():
    pytest.importorskip("desta.data.backends")
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(BackboneUnavailableError, match="pip install vllm"):
            make_backend("vllm", "some/model")
    with pytest.raises(DeSTAError, match="unknown backend"):
        make_backend("nope", "m")


# ------------------------------------------------------------------ OpenAI-compatible fake server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def fake_openai_server():
    """A FastAPI OpenAI-compatible server on 127.0.0.1 in a thread: echoes, fails on command."""
    app = FastAPI()
    state = {"flaky": 0, "seen": []}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        state["seen"].append(body)
        last = body["messages"][-1]["content"]
        if last == "too long":
            return JSONResponse(
                {"error": {"message": "maximum context length is 8192 tokens"}}, status_code=400
            )
        if last == "flaky" and state["flaky"] > 0:
            state["flaky"] -= 1
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=503)
        if last == "slow":
            import asyncio

            await asyncio.sleep(2.0)
        text = f"echo: {last}"
        finish = "length" if body["max_tokens"] < 3 else "stop"
        return {
            "id": "x",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        }

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}/v1", state
    server.should_exit = True
    thread.join(timeout=10)


def test_openai_backend_against_local_server(fake_openai_server):
    url, state = fake_openai_server
    state["flaky"] = 1
    fast = RetryPolicy(max_attempts=2, initial_delay=0.01, jitter=0.0)
    backend = OpenAIBackend(model_id="tiny", base_url=url, concurrency=4, timeout=0.5, retry=fast)
    try:
        batch = [[{"role": "user", "content": c}] for c in ("hello", "too long", "flaky", "slow")]
        params = [SamplingParams(max_new_tokens=16, seed=i) for i in range(4)]
        res = backend.generate(batch, params)
        assert res[0] == BackendResult(
            text="echo: hello", finish_reason="stop", prompt_tokens=5, completion_tokens=2
        )
        # refused for this prompt only: permanent, with the server's own message
        assert not res[1].ok and not res[1].retryable and res[1].attempts == 1
        assert res[1].error == "HTTP 400: maximum context length is 8192 tokens"
        # a 503 is retried inside the client (the flaky budget was 1): the second try answers
        assert res[2].text == "echo: flaky" and res[2].attempts == 2
        # a timeout on every try stays retryable for a later run
        assert not res[3].ok and res[3].retryable and res[3].attempts == 2
        assert res[3].error.startswith("timeout: no answer within 0.5 s")
        sent = [b for b in state["seen"] if b["messages"][-1]["content"] == "hello"][-1]
        assert (sent["model"], sent["max_tokens"], sent["seed"], sent["temperature"]) == ("tiny", 16, 0, 0.7)
        # the pipeline's retry loop does not retry again what the client already retried
        results, attempts = generate_with_retries(
            backend, batch[3:], params[3:], RetryPolicy(jitter=0.0), sleep=lambda s: None
        )
        assert not results[0].ok and attempts == [2]
        short = backend.generate([[{"role": "user", "content": "x"}]], SamplingParams(max_new_tokens=2))
        assert short[0].finish_reason == "length"
    finally:
        backend.close()


def test_openai_backend_connection_refused_aborts():
    fast = RetryPolicy(max_attempts=3, initial_delay=0.01)
    url = f"http://127.0.0.1:{_free_port()}/v1"
    backend = OpenAIBackend(model_id="m", base_url=url, timeout=2.0, retry=fast)
    try:
        with pytest.raises(EndpointUnavailableError, match="failed after 3 tries: connection error"):
            backend.generate([[{"role": "user", "content": "x"}]], SamplingParams())
        with pytest.raises(EndpointUnavailableError):
            backend.check()
    finally:
        backend.close()


def test_fake_backend_reply_is_deterministic():
    b = FakeBackend()
    conv = [{"role": "user", "content": "abc"}]
    a1 = b.generate([conv], SamplingParams(seed=3))[0].text
    assert a1 == b.generate([conv], SamplingParams(seed=3))[0].text and "seed 3" in a1
    assert json.dumps(a1)


@pytest.mark.parametrize(
    ("answer", "attributes", "instruction", "reason"),
    [
        ("Seven of clubs (Source: Real human recording)", {"Source": "Real human recording"}, "", "leak"),
        ("Its level: high.", {"Noise Level": "Noisy"}, "", None),  # "level:" alone is not the field
        ("Noise  level: noisy, a crowd.", {"Noise Level": "Noisy"}, "", "leak"),
        ("A dog barks (Audio category: dog).", {"Audio category": "dog"}, "", "leak"),
        ("The source is a real recording.", {"Source": "Real human recording"}, "", None),  # no field
        ("Source: a bell. Location: a church.", {"Source": "bell"},
         "Answer in the format 'Source: ..., Location: ...' to describe the main sound.", None),  # asked for
        ("Opensource: yes", {"Source": "x"}, "", None),  # a word that ends in the name is not the field
        ("Seven of clubs (Speaker: p225)", {"Source": "x"}, "", None),  # not this record's field
    ],
)
def test_leak_filter_rejects_any_field_of_the_records_own_description(answer, attributes, instruction, reason):
    from desta.data.filters import attribute_leak, screen_response

    rec = AudioRecord(id="a", audio="a.wav", corpus="Toy", duration=1.0, attributes=attributes)
    assert screen_response(answer, "stop", FilterConfig(), record=rec, instruction=instruction)[1] == reason
    assert (attribute_leak(answer, rec, instruction) is not None) == (reason == "leak")
    off = FilterConfig(attribute_fields=False)
    assert screen_response(answer, "stop", off, record=rec, instruction=instruction)[1] is None

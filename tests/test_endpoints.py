"""desta.endpoints: error classes, retries (backoff, Retry-After, transient only), cache, models, threads.

Most tests answer through the client's ``transport`` hook (exact control, no sockets); the live ones
talk to ``desta serve``'s own app with the fake engine on 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from desta.endpoints import (
    Completion,
    EndpointClient,
    EndpointOptions,
    EndpointUnavailableError,
    RequestError,
    RetryPolicy,
    TransientEndpointError,
    retry_after_seconds,
)
from desta.errors import DeSTAError

FAST = RetryPolicy(max_attempts=4, initial_delay=0.001, multiplier=1.0, jitter=0.0)
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


def completion(text: str = "hello", n: int = 1) -> bytes:
    choices = [{"index": i, "message": {"role": "assistant", "content": f" {text}{i or ''} "}, "finish_reason": "stop"}
               for i in range(n)]  # fmt: skip
    return json.dumps({"choices": choices, "usage": {"prompt_tokens": 7, "completion_tokens": 2}}).encode()


def error(message: str, code: str = "") -> bytes:
    return json.dumps({"error": {"message": message, "code": code}}).encode()


class Script:
    """A transport that answers from a script: a list of (status, headers, body) or exceptions, then OK."""

    def __init__(self, *steps) -> None:
        self.steps = list(steps)
        self.calls: list[tuple[str, str, dict | None]] = []
        self.times: list[float] = []

    def __call__(self, method, path, payload):
        self.calls.append((method, path, json.loads(payload) if payload else None))
        self.times.append(time.monotonic())
        step = self.steps.pop(0) if self.steps else (200, {}, completion())
        if isinstance(step, BaseException):
            raise step
        return step


def client(transport, **options) -> EndpointClient:
    return EndpointClient(EndpointOptions(retry=options.pop("retry", FAST), **options), transport=transport)


def test_success_parses_choices_usage_and_sends_the_body():
    t = Script((200, {}, completion("yes", n=2)))
    with client(t) as c:
        got = c.chat(BODY)
    assert got == Completion(("yes", "yes1"), ("stop", "stop"), 7, 2, attempts=1)
    assert got.text == "yes" and t.calls == [("POST", "/chat/completions", BODY)]
    assert c.stats.tries == 1 and c.stats.retries == 0


@pytest.mark.parametrize("status", [408, 409, 425, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried_then_succeed(status):
    t = Script((status, {}, error("busy")), (status, {}, error("busy")))
    with client(t) as c:
        got = c.chat(BODY)
    assert got.text == "hello" and got.attempts == 3 and len(t.calls) == 3 and c.stats.retries == 2


@pytest.mark.parametrize(
    ("status", "hint"), [(401, "check the API key"), (403, "check the API key"), (404, "check the base URL")]
)
def test_endpoint_wide_statuses_raise_at_once(status, hint):
    t = Script((status, {}, error("nope")))
    with client(t) as c, pytest.raises(EndpointUnavailableError, match=hint) as err:
        c.chat(BODY)
    assert err.value.status == status and err.value.reason == f"HTTP {status}: nope" and len(t.calls) == 1


def test_model_not_found_code_is_endpoint_wide_even_on_400():
    t = Script((400, {}, error("The model `x` does not exist.", code="model_not_found")))
    with client(t) as c, pytest.raises(EndpointUnavailableError, match="does not exist"):
        c.chat(BODY)


@pytest.mark.parametrize("status", [400, 413, 422])
def test_per_request_refusal_is_not_retried(status):
    t = Script((status, {}, error("maximum context length is 8192 tokens")))
    with client(t) as c, pytest.raises(RequestError) as err:
        c.chat(BODY)
    assert err.value.reason == f"HTTP {status}: maximum context length is 8192 tokens" and len(t.calls) == 1


def test_transient_that_persists_becomes_transient_error():
    t = Script(*[(503, {}, error("overloaded"))] * 4)
    with client(t) as c, pytest.raises(TransientEndpointError) as err:
        c.chat(BODY)
    assert err.value.attempts == 4 and err.value.reason == "HTTP 503: overloaded" and len(t.calls) == 4


def test_timeouts_are_retried_and_then_transient():
    t = Script(*[TimeoutError()] * 4)
    with client(t, timeout_s=3) as c, pytest.raises(TransientEndpointError, match="no answer within 3 s"):
        c.chat(BODY)
    assert len(t.calls) == 4


def test_connection_refused_after_retries_is_endpoint_wide():
    t = Script(*[ConnectionRefusedError("refused")] * 4)
    with (
        client(t) as c,
        pytest.raises(EndpointUnavailableError, match="failed after 4 tries: connection error"),
    ):
        c.chat(BODY)
    assert len(t.calls) == 4


def test_backoff_is_exponential_and_retry_after_is_honoured():
    policy = RetryPolicy(max_attempts=4, initial_delay=0.05, multiplier=2.0, max_delay=10, jitter=0.0)
    t = Script((503, {}, b""), (503, {}, b""), (429, {"Retry-After": "0.4"}, b""))
    with client(t, retry=policy) as c:
        assert c.chat(BODY).attempts == 4
    gaps = [b - a for a, b in zip(t.times, t.times[1:])]
    # backoff 0.05 then 0.1; the third wait follows Retry-After (0.4 s) instead of the backoff (0.2 s)
    assert 0.05 <= gaps[0] < 0.1 + 0.15 and 0.1 <= gaps[1] < 0.2 + 0.15 and 0.4 <= gaps[2] < 0.4 + 0.3


def test_retry_after_is_capped_by_max_delay():
    policy = RetryPolicy(max_attempts=2, initial_delay=0.01, max_delay=0.2, jitter=0.0)
    t = Script((429, {"Retry-After": "3600"}, b""))
    with client(t, retry=policy) as c:
        t0 = time.monotonic()
        c.chat(BODY)
    assert time.monotonic() - t0 < 1.0


def test_retry_after_parsing():
    assert retry_after_seconds("2.5") == 2.5 and retry_after_seconds("-3") == 0.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0


def test_chat_many_keeps_order_and_returns_per_request_errors():
    def answer(method, path, payload):
        text = json.loads(payload)["messages"][0]["content"]
        if text == "long":
            return 400, {}, error("too long")
        return 200, {}, completion(text)

    bodies = [{**BODY, "messages": [{"role": "user", "content": c}]} for c in ("a", "long", "b")]
    with client(answer) as c:
        got = c.chat_many(bodies)
    assert got[0].text == "a" and isinstance(got[1], RequestError) and got[2].text == "b"
    assert c.stats.failures == 1


def test_chat_many_raises_an_endpoint_wide_error():
    t = Script((200, {}, completion()), (401, {}, error("bad key")))
    with client(t, max_connections=1) as c, pytest.raises(EndpointUnavailableError, match="bad key"):
        c.chat_many([BODY, BODY, BODY, BODY])


def test_malformed_answer_is_transient_not_a_crash():
    t = Script((200, {}, b"<html>proxy error</html>"))
    with client(t) as c, pytest.raises(TransientEndpointError, match="malformed chat completion"):
        c.chat(BODY)


def test_cache_answers_repeats_across_clients_and_skips_failures(tmp_path):
    path = str(tmp_path / "cache.sqlite")
    t = Script((400, {}, error("refused")))
    bodies = [BODY, {**BODY, "max_tokens": 9}]
    with client(t, cache_path=path) as c:
        first = c.chat_many(bodies)
        assert isinstance(first[0], RequestError) and first[1].text == "hello"
        again = c.chat_many(bodies)  # the refusal is asked again, the answer comes from the cache
    assert again[0].text == "hello" and again[1].cached and again[1].attempts == 0 and len(t.calls) == 3
    with client(Script(RuntimeError("must not be called")), cache_path=path) as c2:
        assert [r.text for r in c2.chat_many(bodies)] == ["hello", "hello"] and c2.stats.cached == 2


def test_a_broken_cache_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "cache.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DeSTAError, match=f"response cache {bad} is not a usable SQLite file"):
        EndpointClient(EndpointOptions(cache_path=str(bad)))


def test_list_models_and_check_model():
    models = json.dumps({"object": "list", "data": [{"id": "a"}, {"id": "b"}]}).encode()
    with client(Script((200, {}, models), (200, {}, models))) as c:
        assert c.list_models() == ["a", "b"]
        with pytest.raises(EndpointUnavailableError, match="model 'z' is not served by .*it serves: a, b"):
            c.check_model("z")
    tags = json.dumps({"data": [{"id": "llama3:latest"}]}).encode()
    with client(Script((200, {}, tags))) as c:
        c.check_model("llama3")  # Ollama lists the tag and serves the bare name
    with client(Script((404, {}, b"not found"))) as c:
        c.check_model("z")  # no /models on this server: the chat requests will tell
    with (
        client(Script((401, {}, error("bad key")))) as c,
        pytest.raises(EndpointUnavailableError, match="GET /models"),
    ):
        c.check_model("a")


def test_shared_between_threads():
    def answer(method, path, payload):
        return 200, {}, completion(json.loads(payload)["messages"][0]["content"])

    with client(answer) as c, ThreadPoolExecutor(8) as pool:
        texts = list(
            pool.map(
                lambda i: c.chat({**BODY, "messages": [{"role": "user", "content": str(i)}]}).text, range(64)
            )
        )
    assert texts == [str(i) for i in range(64)]


def test_bad_options_are_clear_errors():
    with pytest.raises(DeSTAError, match="must look like http"):
        EndpointOptions(base_url="127.0.0.1:8000")
    with pytest.raises(DeSTAError, match="max_connections"):
        EndpointOptions(max_connections=0)
    with pytest.raises(DeSTAError, match="retry policy"):
        RetryPolicy(max_attempts=0)


# ------------------------------------------------------------------------- live, on 127.0.0.1


@pytest.fixture(scope="module")
def desta_server():
    """``desta serve``'s app with the fake engine and an API key, in a thread on a free port."""
    import uvicorn

    from desta.serve.app import create_app
    from desta.serve.fake import FakeEngine
    from desta.serve.settings import ServeSettings

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(FakeEngine(), ServeSettings(api_key="k-1"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    assert server.started
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(timeout=10)


def test_live_server_chat_models_and_errors(desta_server):
    opts = dict(base_url=desta_server, retry=FAST)
    with EndpointClient(EndpointOptions(api_key="k-1", **opts)) as c:
        assert c.list_models() == ["fake-desta"]
        c.check_model("fake-desta")
        body = {"model": "fake-desta", "messages": [{"role": "user", "content": "tell me"}], "max_tokens": 32}
        many = c.chat_many([body] * 20)
        assert all(r.text == "echo: tell me | audios=0 | seconds=0.00" for r in many)
        with pytest.raises(EndpointUnavailableError) as err:
            c.chat({**body, "model": "other"})
        assert err.value.status == 404
    with (
        EndpointClient(EndpointOptions(api_key="wrong", **opts)) as c,
        pytest.raises(EndpointUnavailableError) as err,
    ):
        c.chat(body)
    assert err.value.status == 401 and "API key" in str(err.value)


def test_live_connection_refused_is_endpoint_wide():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    opts = EndpointOptions(
        base_url=f"http://127.0.0.1:{port}/v1", retry=RetryPolicy(max_attempts=2, initial_delay=0.01)
    )
    with EndpointClient(opts) as c, pytest.raises(EndpointUnavailableError, match="ClientConnectorError"):
        c.chat(BODY)

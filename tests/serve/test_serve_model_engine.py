"""The real embedded model behind the server (``desta.infer.engine.LocalEngine``): stream usage, cancel,
default prompt."""

from __future__ import annotations

import json
import os
import threading

import pytest
from fastapi.testclient import TestClient
from serve_helpers import audio_part

from desta.infer.engine import Engine, LocalEngine, as_engine
from desta.serve.app import create_app
from desta.serve.settings import ServeSettings

URL = "/v1/chat/completions"


@pytest.fixture(scope="module")
def model():
    import desta

    return desta.load_model(os.environ.get("DESTA_SERVE_TEST_MODEL") or None)


def _usage_of_stream(lines: list[str]) -> dict:
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert events[-1]["choices"] == []
    return events[-1]["usage"]


@pytest.mark.slow
def test_stream_usage_reports_the_real_prompt_tokens(model):
    body = {
        "messages": [
            {"role": "user", "content": [audio_part(1.0), {"type": "text", "text": "Describe it."}]}
        ],
        "max_tokens": 6,
    }
    with TestClient(create_app(model, ServeSettings())) as client:
        plain = client.post(URL, json=body).json()["usage"]
        stream_body = body | {"stream": True, "stream_options": {"include_usage": True}}
        with client.stream("POST", URL, json=stream_body) as resp:
            usage = _usage_of_stream([line for line in resp.iter_lines() if line])
    assert plain["prompt_tokens"] > 64  # 64 audio slots + transcript + template
    assert usage == plain


@pytest.mark.slow
def test_local_engine_forwards_cancel_and_counts_tokens(model):
    from desta import GenerationOptions

    engine = as_engine(model)
    assert isinstance(engine, LocalEngine) and isinstance(engine, Engine) and as_engine(engine) is engine
    assert engine.name == model.name
    assert engine.count_tokens("hello world") == len(
        model.tokenizer("hello world", add_special_tokens=False)["input_ids"]
    )
    conv = [{"role": "user", "content": "Count from one to fifty."}]
    options = GenerationOptions(max_new_tokens=40)
    stop = threading.Event()
    stop.set()
    (result,) = engine.generate([conv], options, cancel=stop)
    assert result.completion_tokens <= 1
    assert len(list(engine.stream(conv, options, cancel=stop))) <= 1


@pytest.mark.slow
def test_no_system_message_means_the_models_default(model):
    """The server adds no system prompt of its own: no system message = the model's trained default."""
    from desta import GenerationOptions
    from desta.serve.messages import to_conversation
    from desta.serve.schemas import ChatCompletionRequest

    engine = as_engine(model)
    assert engine.default_system_prompt == model.config.system_prompt
    body = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 5}
    with TestClient(create_app(engine, ServeSettings())) as client:
        out = client.post(URL, json=body).json()
    conv = to_conversation(ChatCompletionRequest.model_validate(body).messages, ServeSettings()).conversation
    assert [m["role"] for m in conv] == ["user"]
    (direct,) = model.generate([conv], GenerationOptions(max_new_tokens=5))
    assert out["choices"][0]["message"]["content"] == direct.text
    assert out["usage"]["prompt_tokens"] == direct.prompt_tokens
    if model.config.system_prompt:  # the default is really in the prompt (it costs tokens)
        with_own = [{"role": "system", "content": "x"}, *conv]
        (other,) = model.generate([with_own], GenerationOptions(max_new_tokens=5))
        assert direct.prompt_tokens > other.prompt_tokens

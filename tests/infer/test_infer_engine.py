"""desta.infer.engine: the local model and an OpenAI-compatible endpoint behind one Engine protocol."""

from __future__ import annotations

import pytest

from desta.infer.engine import EndpointEngine, Engine, LocalEngine
from desta.model.options import GenerationOptions
from helpers import sine, tiny_desta


def _conv(question: str, audio=None) -> list[dict]:
    from desta.messages import conversation

    return conversation(question, [] if audio is None else [audio])


def test_local_engine_is_the_model():
    model = tiny_desta(seed=5)
    engine = LocalEngine(model)
    assert isinstance(engine, Engine) and engine.name == model.name
    conv = _conv("What is said?", (sine(1.0), 16000))
    opts = GenerationOptions(max_new_tokens=6)
    got = engine.generate([conv], opts)[0]
    assert got == model.generate([conv], opts)[0]
    pieces = engine.stream(conv, opts)
    text = ""
    while True:
        try:
            text += next(pieces)
        except StopIteration as stop:
            result = stop.value
            break
    assert text == got.text == result.text


def test_endpoint_engine_answers_like_the_server(tmp_path):
    from desta.serve.app import create_app
    from desta.serve.fake import FakeEngine
    from desta.serve.settings import ServeSettings
    from serve.serve_helpers import LiveServer

    with LiveServer(create_app(FakeEngine(), ServeSettings())) as server:
        engine = EndpointEngine(f"{server.url}/v1")
        try:
            assert isinstance(engine, Engine) and engine.name  # the model the server lists
            a, b = _conv("First?", (sine(1.0), 16000)), _conv("Second?")
            greedy = GenerationOptions(max_new_tokens=16)
            results = engine.generate([a, b], greedy)
            assert [r.text for r in results] == [
                "echo: First? | audios=1 | seconds=1.00",
                "echo: Second? | audios=0 | seconds=0.00",
            ]
            assert list(engine.stream(a, greedy)) == [results[0].text]
            body = engine.body(a, greedy)
            assert body["temperature"] == 0.0 and "top_p" not in body and body["max_tokens"] == 16
            sampled = engine.body(a, GenerationOptions(do_sample=True, temperature=0.5, top_p=0.8, seed=3))
            assert (sampled["temperature"], sampled["top_p"], sampled["seed"]) == (0.5, 0.8, 3)
        finally:
            engine.close()
        with pytest.raises(Exception, match="other"):
            EndpointEngine(f"{server.url}/v1", "other")

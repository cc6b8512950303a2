"""desta.infer.generation: the one generation path (stream equals generate, stop strings, cancel)."""

from __future__ import annotations

import threading

import pytest

from desta.infer.options import GenerationOptions
from helpers import sine, tiny_desta


@pytest.fixture(scope="module")
def model():
    return tiny_desta(seed=5)


def _conv(q: str = "Say something."):
    return [{"role": "user", "content": f"<|AUDIO|>\n{q}", "audios": [{"audio": sine(0.5), "text": "hello there"}]}]


def _drain(it):
    pieces = []
    try:
        while True:
            pieces.append(next(it))
    except StopIteration as done:
        return pieces, done.value


def test_stream_joins_to_generate_and_returns_the_result(model):
    opts = GenerationOptions(max_new_tokens=24)
    want = model.generate(_conv(), opts)[0]
    pieces, result = _drain(model.stream(_conv(), opts))
    assert "".join(pieces) == want.text
    assert result.text == want.text and result.token_ids == want.token_ids
    assert result.prompt_tokens == want.prompt_tokens > 0 and result.completion_tokens == len(want.token_ids)


def test_stream_cuts_at_a_stop_string_as_generate_does(model):
    full = model.generate(_conv(), GenerationOptions(max_new_tokens=24))[0].text
    assert len(full) > 6, full
    stop = full[3:6]  # a stop string inside the answer (possibly spanning streamed pieces)
    opts = GenerationOptions(max_new_tokens=24, stop=(stop,))
    want = model.generate(_conv(), opts)[0]
    pieces, result = _drain(model.stream(_conv(), opts))
    assert "".join(pieces) == want.text == full[: full.index(stop)].strip()
    assert stop not in "".join(pieces) and result.finish_reason == "stop"


def test_cancel_stops_generate_at_the_next_token(model):
    cancel = threading.Event()
    cancel.set()
    out = model.generate(_conv(), GenerationOptions(max_new_tokens=50), cancel=cancel)[0]
    assert out.completion_tokens <= 1 and out.finish_reason in ("cancelled", "stop")


def test_closing_a_stream_stops_decoding(model):
    calls = []
    hook = model.llm_model.register_forward_hook(lambda *_: calls.append(1))
    try:
        it = model.stream(_conv(), GenerationOptions(max_new_tokens=300, repetition_penalty=1.0))
        next(it)
        it.close()  # the consumer leaves: decoding must stop at the next token, not run 300 steps
        threads = [t for t in threading.enumerate() if t.daemon and "run" in t.name]
        for t in threads:
            t.join(timeout=30)
        assert len(calls) < 50, f"{len(calls)} decoding steps after the consumer left"
    finally:
        hook.remove()

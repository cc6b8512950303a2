"""desta.infer.text_llm: a text-only LLM is the same Engine with no audio, and the one text generation
that eval's TextLLMPredictor and the data pipeline's transformers backend run."""

from __future__ import annotations

import threading

import pytest

from desta.errors import DeSTAError
from desta.infer.engine import Engine
from desta.infer.text_llm import TextLLMEngine
from desta.model.options import GenerationOptions
from helpers import smollm2_tokenizer, tiny_llm

QUESTIONS = ["Name three colours.", "What is two plus two?", "Write one line about rain, please."]


def _engine() -> TextLLMEngine:
    return TextLLMEngine(tiny_llm(seed=3), smollm2_tokenizer(), "tiny-text")


def _conv(q: str) -> list[dict]:
    return [{"role": "user", "content": q}]


def test_text_llm_is_an_engine_and_batches_like_single_calls():
    engine = _engine()
    assert isinstance(engine, Engine)
    opts = GenerationOptions(max_new_tokens=8)
    batch = engine.generate([_conv(q) for q in QUESTIONS], opts)
    single = [engine.generate([_conv(q)], opts)[0] for q in QUESTIONS]
    assert [r.text for r in batch] == [r.text for r in single]
    assert all(r.prompt_tokens > 5 and r.completion_tokens <= 8 for r in batch)
    pieces = engine.stream(_conv(QUESTIONS[0]), opts)
    assert "".join(pieces) == single[0].text
    with pytest.raises(DeSTAError, match="cannot take audio"):
        engine.generate([[{"role": "user", "content": "x", "audios": [{"audio": "a.wav"}]}]], opts)
    stop = threading.Event()
    stop.set()
    assert engine.generate([_conv("hi")], opts, cancel=stop)[0].finish_reason == "cancelled"


def test_eval_and_data_run_the_same_text_generation():
    from desta.data.backends import TransformersBackend
    from desta.eval.predictors import TextLLMPredictor

    engine = _engine()
    opts = GenerationOptions(max_new_tokens=8)
    want = [r.text for r in engine.generate([_conv(q) for q in QUESTIONS], opts)]
    pred = TextLLMPredictor(engine.model, engine.tokenizer, "tiny-text", opts)
    assert isinstance(pred.engine, TextLLMEngine)
    assert pred.predict([_conv(q) for q in QUESTIONS]) == want
    assert pred.settings == {"backend": "text-llm", "do_sample": False, "max_new_tokens": 8}
    backend = TransformersBackend("tiny-text", model=engine.model, tokenizer=engine.tokenizer)
    got = backend.generate([_conv(q) for q in QUESTIONS], GenerationOptions(max_new_tokens=8, temperature=0.0))
    assert [r.text for r in got] == want

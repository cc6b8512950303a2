"""desta.infer.registry: engines by name. A new engine is one file plus one registry line, and then
`desta ask --engine`, `desta eval --engine` and `desta serve --engine` run it."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys

import pytest

from desta.errors import DeSTAError
from desta.infer.engine import Engine
from desta.infer.registry import ENGINES, EngineEntry, EngineOptions, make_engine

ONE_FILE = '''
from desta.model.options import GenerationResult


class EchoEngine:
    name = "echo"

    def generate(self, conversations, options, *, cancel=None):
        return [GenerationResult(text="echo: " + c[-1]["content"].split("\\n")[-1]) for c in conversations]

    def stream(self, conversation, options, *, cancel=None):
        result = self.generate([conversation], options)[0]
        yield result.text
        return result

    def close(self):
        pass


def load(model, options):
    return EchoEngine()
'''


@pytest.fixture
def echo(tmp_path, monkeypatch):
    """The new engine: one file (on sys.path) and one line in ENGINES."""
    (tmp_path / "echo_engine.py").write_text(ONE_FILE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(ENGINES, "echo", EngineEntry("echo_engine:load", "answers with the question"))
    yield
    sys.modules.pop("echo_engine", None)


def test_every_registered_factory_exists():
    assert {"local", "endpoint", "text-llm", "vllm"} <= set(ENGINES)
    for name, entry in ENGINES.items():
        module, _, function = entry.factory.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), name
    with pytest.raises(DeSTAError, match="unknown engine 'nope'"):
        make_engine("nope")
    with pytest.raises(DeSTAError, match="needs a server URL"):
        make_engine("endpoint")
    if importlib.util.find_spec("vllm") is None:
        with pytest.raises(DeSTAError, match="needs vllm"):
            make_engine("vllm", "exported/")


def test_the_endpoint_engine_from_the_registry():
    from desta.model.options import GenerationOptions
    from desta.serve.app import create_app
    from desta.serve.fake import FakeEngine
    from desta.serve.settings import ServeSettings
    from serve.serve_helpers import LiveServer

    with LiveServer(create_app(FakeEngine(), ServeSettings())) as server:
        engine = make_engine("endpoint", None, EngineOptions(server=server.url))
        try:
            assert isinstance(engine, Engine) and engine.name == "fake-desta"
            (result,) = engine.generate([[{"role": "user", "content": "hi there"}]], GenerationOptions(max_new_tokens=8))
            assert result.text.startswith("echo: hi there")
        finally:
            engine.close()


def test_a_new_engine_is_one_file_and_one_line(echo, tmp_path, capsys):
    from desta.cli import main
    from eval.eval_helpers import write_wav

    clip = write_wav(tmp_path / "a.wav")
    assert main(["ask", "--engine", "echo", "--no-stream", str(clip), "What is said?"]) == 0
    assert capsys.readouterr().out.strip() == "echo: What is said?"

    from desta.serve.server import make_engine as serve_engine

    assert serve_engine(engine="echo").name == "echo"

    records = [{
        "id": "q1", "audio_id": "./test-mini-audios/q1.wav", "question": "Who speaks?", "choices": ["Man", "Woman"],
        "answer": "Man", "task": "speech", "difficulty": "easy", "sub-category": "x", "split": "test-mini",
    }]  # fmt: skip
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mmau-test-mini.json").write_text(json.dumps(records))
    write_wav(tmp_path / "data" / "test-mini-audios" / "q1.wav")
    out = tmp_path / "out"
    argv = ["eval", "mmau", "--data", str(tmp_path / "data"), "--engine", "echo", "--out", str(out), "--no-plots"]
    assert main(argv) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["model"] == "echo" and run["decoding"]["backend"] == "echo"
    (line,) = (out / "predictions.jsonl").read_text().splitlines()
    assert json.loads(line)["response"].startswith("echo: Who speaks?")

"""The OpenAI-compatible audio endpoint predictor and the CLI, against a local fake server."""

from __future__ import annotations

import base64
import json

from eval_helpers import write_wav

from desta.cli import main
from desta.eval.predictors import OpenAIEndpointPredictor


def test_endpoint_predictor_sends_input_audio_parts(tmp_path, fake_openai):
    server = fake_openai(lambda body: ["The correct answer is: Man"])
    wav = write_wav(tmp_path / "a.wav", seconds=0.25, sr=8000)  # resampled to 16 kHz before sending
    pred = OpenAIEndpointPredictor(server.url, "peer-model", max_retries=0)
    conv = [
        {"role": "system", "content": "Focus."},
        {
            "role": "user",
            "content": "<|AUDIO|>\n\nWho speaks?",
            "audios": [{"audio": str(wav), "text": None}],
        },
    ]
    assert pred.predict([conv]) == ["The correct answer is: Man"]
    body = server.requests[0]
    assert body["model"] == "peer-model" and body["temperature"] == 0.0 and body["max_tokens"] == 512
    parts = body["messages"][1]["content"]
    assert parts[0]["type"] == "input_audio" and parts[1] == {"type": "text", "text": "Who speaks?"}
    data = base64.b64decode(parts[0]["input_audio"]["data"])
    assert data[:4] == b"RIFF" and int.from_bytes(data[24:28], "little") == 16000


def test_cli_runs_mmau_against_an_endpoint_then_rescores(tmp_path, fake_openai, capsys):
    records = [
        {
            "id": "q1",
            "audio_id": "./test-mini-audios/q1.wav",
            "question": "Who speaks?",
            "choices": ["Man", "Woman"],
            "answer": "Man",
            "task": "speech",
            "difficulty": "easy",
            "sub-category": "x",
            "split": "test-mini",
        }
    ]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mmau-test-mini.json").write_text(json.dumps(records))
    write_wav(tmp_path / "data" / "test-mini-audios" / "q1.wav")
    server = fake_openai(lambda body: ["The correct answer is: Man"], models=["peer-audio"])
    out = tmp_path / "out"
    # no --endpoint-model: the one model GET /v1/models lists is used (and recorded)
    rc = main(["eval", "mmau", "--data", str(tmp_path / "data"), "--endpoint", server.url, "--out", str(out)])
    assert rc == 0 and server.requests[0]["model"] == "peer-audio"
    assert json.loads((out / "run.json").read_text())["model"] == "peer-audio"
    assert json.loads((out / "scores.json").read_text())["metrics"]["accuracy"] == 100.0
    assert (out / "report.md").exists() and (out / "predictions.jsonl").exists()
    rc = main(
        ["eval", "mmau", "--data", str(tmp_path / "data"), "--rescore", "--out", str(out), "--no-plots"]
    )
    assert rc == 0 and len(server.requests) == 1
    assert main(["eval", "nope", "--data", "x"]) == 1
    assert "unknown task 'nope'" in capsys.readouterr().err


def test_endpoint_model_discovery_errors_name_the_choice(fake_openai):
    import pytest

    from desta.eval.base import EvalError

    many = fake_openai(lambda body: ["x"], models=["a", "b"])
    with pytest.raises(EvalError, match="serves 2 models \\(a, b\\); pick one with --endpoint-model"):
        OpenAIEndpointPredictor(many.url)
    none = fake_openai(lambda body: ["x"])  # GET /models answers 404
    with pytest.raises(EvalError, match="could not list its models.*--endpoint-model"):
        OpenAIEndpointPredictor(none.url)

"""The server over the real embedded model (desta-tiny): same answers as calling `generate` directly."""

from __future__ import annotations

import json
import os

import pytest
from fastapi.testclient import TestClient
from serve_helpers import audio_part

from desta.serve.app import create_app
from desta.serve.settings import ServeSettings

URL = "/v1/chat/completions"


@pytest.fixture(scope="module")
def model():
    import desta

    # DESTA_SERVE_TEST_MODEL=untrained runs this on the tiny architecture before trained weights exist
    return desta.load_model(os.environ.get("DESTA_SERVE_TEST_MODEL") or None)


@pytest.mark.slow
def test_real_model_matches_direct_generate(model):
    from desta import GenerationOptions
    from desta.serve.messages import to_conversation
    from desta.serve.schemas import ChatCompletionRequest

    body = {
        "messages": [
            {"role": "user", "content": [audio_part(1.0), {"type": "text", "text": "Describe the audio."}]},
        ],
        "max_tokens": 8,
    }
    with TestClient(create_app(model, ServeSettings())) as client:
        resp = client.post(URL, json=body)
        assert resp.status_code == 200, resp.text
        out = resp.json()
        with client.stream("POST", URL, json=body | {"stream": True}) as sresp:
            lines = [line for line in sresp.iter_lines() if line]
    conv = to_conversation(ChatCompletionRequest.model_validate(body).messages, ServeSettings()).conversation
    (direct,) = model.generate([conv], GenerationOptions(max_new_tokens=8))
    assert out["model"] == model.name
    assert out["choices"][0]["message"]["content"] == direct.text
    assert out["choices"][0]["finish_reason"] == direct.finish_reason
    assert out["usage"]["prompt_tokens"] == direct.prompt_tokens > 64
    assert out["usage"]["completion_tokens"] == direct.completion_tokens <= 8
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    streamed = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
    assert streamed.strip() == direct.text

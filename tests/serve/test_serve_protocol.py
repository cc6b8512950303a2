"""The HTTP protocol of `desta serve`, in-process with a fake engine: happy paths and every refusal."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from serve_helpers import audio_part, b64, wav_bytes

from desta.serve.app import create_app
from desta.serve.fake import FakeEngine
from desta.serve.settings import ServeSettings

URL = "/v1/chat/completions"


def make_client(engine=None, **settings) -> TestClient:
    app = create_app(engine or FakeEngine(), ServeSettings(**settings))
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def client():
    with make_client() as c:
        yield c


def test_the_server_runs_the_one_engine_protocol():
    from desta.infer.engine import Engine

    engine = FakeEngine()
    assert isinstance(engine, Engine)
    with make_client(engine) as c:
        assert c.app.state.batcher.engine is engine


def user(*parts) -> dict:
    return {"model": "fake-desta", "messages": [{"role": "user", "content": list(parts)}]}


def text(t: str) -> dict:
    return {"type": "text", "text": t}


def assert_error(resp, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["message"]
    if code is not None:
        assert err["code"] == code, err
    return err


# happy paths -------------------------------------------------------------------------------------


def test_health_and_models(client):
    assert client.get("/health").json() == {
        "status": "ok",
        "model": "fake-desta",
        "queued": 0,
        "in_flight": 0,
    }
    models = client.get("/v1/models").json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == ["fake-desta"]
    assert models["data"][0]["object"] == "model"


def test_text_only_chat_and_usage(client):
    body = {
        "model": "fake-desta",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}],
    }
    out = client.post(URL, json=body).json()
    assert out["object"] == "chat.completion"
    assert out["id"].startswith("chatcmpl-")
    assert out["choices"][0]["message"] == {
        "role": "assistant",
        "content": "echo: hello there | audios=0 | seconds=0.00",
    }
    assert out["choices"][0]["finish_reason"] == "stop"
    # fake prompt tokens = words of all messages (2 + 2); completion = 7 words
    assert out["usage"] == {"prompt_tokens": 4, "completion_tokens": 7, "total_tokens": 11}


def test_input_audio_becomes_locator_and_audio(client):
    out = client.post(URL, json=user(audio_part(0.5), text("What is said?"))).json()
    assert out["choices"][0]["message"]["content"] == "echo: What is said? | audios=1 | seconds=0.50"
    assert out["usage"]["prompt_tokens"] == 3 + 64  # words + 64 audio slots (fake accounting)


def test_audio_position_and_conversion():
    from desta.serve.messages import AUDIO_LOCATOR, to_conversation
    from desta.serve.schemas import ChatCompletionRequest

    parts = [text("Compare"), audio_part(0.25), text("with"), audio_part(0.5)]
    req = ChatCompletionRequest.model_validate(
        {"messages": [{"role": "developer", "content": "sys"}, {"role": "user", "content": parts}]}
    )
    conv = to_conversation(req.messages, ServeSettings())
    assert conv.conversation[0] == {"role": "system", "content": "sys"}
    assert conv.conversation[1]["content"] == f"Compare\n{AUDIO_LOCATOR}\nwith\n{AUDIO_LOCATOR}"
    assert [a["audio"].shape for a in conv.conversation[1]["audios"]] == [(4000,), (8000,)]
    assert conv.n_audios == 2 and conv.audio_seconds == pytest.approx(0.75)


def test_audio_url_data_url(client):
    url = "data:audio/wav;base64," + b64(wav_bytes(0.25))
    out = client.post(URL, json=user({"type": "audio_url", "audio_url": {"url": url}}, text("hi"))).json()
    assert out["choices"][0]["message"]["content"] == "echo: hi | audios=1 | seconds=0.25"


def test_audio_url_local_file_inside_allowed_dir(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "a.wav").write_bytes(wav_bytes(0.5))
    with make_client(allowed_audio_dir=folder) as c:
        for url in ["a.wav", str(folder / "a.wav"), f"file://{folder / 'a.wav'}"]:
            out = c.post(URL, json=user({"type": "audio_url", "audio_url": {"url": url}}))
            assert out.status_code == 200, out.text
            assert out.json()["choices"][0]["message"]["content"] == "echo:  | audios=1 | seconds=0.50"


def test_max_tokens_truncates_with_length(client):
    out = client.post(URL, json={"messages": [{"role": "user", "content": "a b c"}], "max_tokens": 2}).json()
    assert out["choices"][0]["message"]["content"] == "echo: a"
    assert out["choices"][0]["finish_reason"] == "length"
    assert out["usage"]["completion_tokens"] == 2


def test_streaming_sse_matches_non_streaming(client):
    body = user(audio_part(0.5), text("stream me"))
    full = client.post(URL, json=body).json()["choices"][0]["message"]["content"]
    with client.stream(
        "POST", URL, json=body | {"stream": True, "stream_options": {"include_usage": True}}
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in resp.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert all(e["object"] == "chat.completion.chunk" for e in events)
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    pieces = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
    assert pieces == full
    finish = [
        e["choices"][0]["finish_reason"]
        for e in events
        if e["choices"] and e["choices"][0].get("finish_reason")
    ]
    assert finish == ["stop"]
    assert events[-1]["choices"] == []
    assert events[-1]["usage"] == {"prompt_tokens": 2 + 64, "completion_tokens": 7, "total_tokens": 73}


def test_dynamic_batching_merges_concurrent_requests():
    engine = FakeEngine(delay_per_call_s=0.2)
    with make_client(engine, max_batch_size=8, batch_window_ms=50) as c:
        with ThreadPoolExecutor(8) as pool:
            bodies = [{"messages": [{"role": "user", "content": f"q{i}"}]} for i in range(8)]
            outs = list(pool.map(lambda b: c.post(URL, json=b), bodies))
    assert [o.status_code for o in outs] == [200] * 8
    assert [o.json()["choices"][0]["message"]["content"] for o in outs] == [
        f"echo: q{i} | audios=0 | seconds=0.00" for i in range(8)
    ]
    assert sum(engine.calls) == 8
    assert max(engine.calls) >= 4  # 8 requests in well under a 0.2 s call: mostly one batch
    assert len(engine.calls) <= 3


def test_different_options_are_not_merged():
    engine = FakeEngine(delay_per_call_s=0.1)
    with make_client(engine, batch_window_ms=100) as c:
        with ThreadPoolExecutor(4) as pool:
            bodies = [
                {"messages": [{"role": "user", "content": "x y z"}], "max_tokens": 2 + i % 2}
                for i in range(4)
            ]
            outs = list(pool.map(lambda b: c.post(URL, json=b), bodies))
    texts = sorted(o.json()["choices"][0]["message"]["content"] for o in outs)
    assert texts == ["echo: x", "echo: x", "echo: x y", "echo: x y"]
    assert sorted(engine.calls) == [2, 2]


# authentication -----------------------------------------------------------------------------------


def test_auth_on():
    with make_client(api_key="s3cret") as c:
        assert_error(c.post(URL, json=user(text("hi"))), 401, "invalid_api_key")
        assert_error(c.post(URL, json=user(text("hi")), headers={"Authorization": "Bearer nope"}), 401)
        assert_error(c.post(URL, json=user(text("hi")), headers={"Authorization": "s3cret"}), 401)
        assert_error(c.get("/v1/models"), 401)
        ok = c.post(URL, json=user(text("hi")), headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert c.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/health").status_code == 200  # liveness needs no key


def test_auth_off_accepts_any_header(client):
    assert (
        client.post(URL, json=user(text("hi")), headers={"Authorization": "Bearer whatever"}).status_code
        == 200
    )


# malformed and hostile requests -------------------------------------------------------------------


def test_malformed_json(client):
    err = assert_error(
        client.post(URL, content=b"{not json", headers={"Content-Type": "application/json"}),
        400,
        "invalid_json",
    )
    assert "not valid JSON" in err["message"]
    assert_error(client.post(URL, content=b"[1, 2]"), 400, "invalid_json")
    assert_error(client.post(URL, content=b"\xff\xfe\x00"), 400, "invalid_json")


def test_schema_errors(client):
    assert_error(client.post(URL, json={"messages": []}), 400)
    assert_error(client.post(URL, json={"model": "fake-desta"}), 400)
    err = assert_error(client.post(URL, json={"messages": [{"role": "wizard", "content": "x"}]}), 400)
    assert "messages.0.role" in err["param"]
    assert_error(
        client.post(URL, json={"messages": [{"role": "user", "content": "x"}], "temperature": 9}), 400
    )


def test_unknown_content_type(client):
    body = user({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}})
    err = assert_error(client.post(URL, json=body), 400, "unsupported_content_type")
    assert "image_url" in err["message"] and "input_audio" in err["message"]
    assert_error(client.post(URL, json=user({"text": "no type"})), 400, "unsupported_content_type")


def test_undecodable_audio(client):
    garbage = {"type": "input_audio", "input_audio": {"data": b64(os.urandom(2000)), "format": "wav"}}
    err = assert_error(client.post(URL, json=user(garbage)), 400, "invalid_audio")
    assert err["param"] == "messages[0].content[0]"
    empty = {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}
    assert_error(client.post(URL, json=user(empty)), 400, "invalid_audio")


def test_bad_base64_and_format(client):
    bad = {"type": "input_audio", "input_audio": {"data": "!!!not base64!!!", "format": "wav"}}
    assert_error(client.post(URL, json=user(bad)), 400, "invalid_base64")
    exe = {"type": "input_audio", "input_audio": {"data": b64(wav_bytes()), "format": "exe"}}
    assert_error(client.post(URL, json=user(exe)), 400, "unsupported_audio_format")
    not_audio = {"type": "audio_url", "audio_url": {"url": "data:text/html;base64," + b64(b"<b>")}}
    assert_error(client.post(URL, json=user(not_audio)), 400, "invalid_audio_url")
    plain = {"type": "audio_url", "audio_url": {"url": "data:audio/wav,RIFF"}}
    assert_error(client.post(URL, json=user(plain)), 400, "invalid_audio_url")


def test_too_many_audios_and_too_long():
    with make_client(max_audios_per_request=2, max_audio_seconds=1.0) as c:
        assert_error(
            c.post(URL, json=user(audio_part(0.1), audio_part(0.1), audio_part(0.1))), 400, "too_many_audios"
        )
        assert_error(c.post(URL, json=user(audio_part(0.6), audio_part(0.6))), 400, "audio_too_long")
        assert c.post(URL, json=user(audio_part(0.4), audio_part(0.4))).status_code == 200


def test_paths_outside_allowed_folder(tmp_path):
    folder = tmp_path / "allowed"
    folder.mkdir()
    secret = tmp_path / "secret.wav"
    secret.write_bytes(wav_bytes())
    (folder / "link.wav").symlink_to(secret)
    with make_client() as c:  # no folder configured: local paths are off
        assert_error(
            c.post(URL, json=user({"type": "audio_url", "audio_url": {"url": str(secret)}})),
            403,
            "local_files_disabled",
        )
    with make_client(allowed_audio_dir=folder) as c:
        for url in [str(secret), "../secret.wav", f"file://{secret}", "link.wav", "/etc/passwd"]:
            err = assert_error(
                c.post(URL, json=user({"type": "audio_url", "audio_url": {"url": url}})),
                403,
                "path_not_allowed",
            )
            assert err["param"] == "messages[0].content[0].audio_url.url"
        assert_error(
            c.post(URL, json=user({"type": "audio_url", "audio_url": {"url": "missing.wav"}})),
            400,
            "file_not_found",
        )
        remote = {"type": "audio_url", "audio_url": {"url": "http://169.254.169.254/latest"}}
        assert_error(c.post(URL, json=user(remote)), 400, "remote_url_refused")


def test_other_refusals(client):
    assert_error(client.post(URL, json=user(text("hi")) | {"model": "gpt-4o"}), 404, "model_not_found")
    assert_error(
        client.post(URL, json=user(text("hi")) | {"max_tokens": 100000}), 400, "max_tokens_too_large"
    )
    assert_error(client.post(URL, json=user(text("sneaky <|AUDIO|>"))), 400, "reserved_token")
    assert_error(client.post(URL, json=user(text("hi")) | {"n": 3}), 400, "unsupported_parameter")
    body = {"messages": [{"role": "assistant", "content": [audio_part()]}, {"role": "user", "content": "x"}]}
    assert_error(client.post(URL, json=body), 400)
    assert_error(client.get("/v1/nothing"), 404)


def test_body_too_large():
    with make_client(max_body_bytes=4096) as c:
        big = user(audio_part(1.0))
        assert_error(c.post(URL, json=big), 413, "body_too_large")

        def chunks():  # no Content-Length: counted while streaming in
            yield b'{"messages": [{"role": "user", "content": "'
            for _ in range(10):
                yield b"x" * 1000
            yield b'"}]}'

        assert_error(c.post(URL, content=chunks()), 413, "body_too_large")
        assert c.post(URL, json=user(text("small"))).status_code == 200


def test_queue_full_answers_429_and_recovers():
    engine = FakeEngine(delay_per_call_s=0.3)
    with make_client(engine, max_queue=2, max_batch_size=1, batch_window_ms=0) as c:
        with ThreadPoolExecutor(8) as pool:
            outs = list(pool.map(lambda i: c.post(URL, json=user(text(f"q{i}"))), range(8)))
        codes = sorted(o.status_code for o in outs)
        assert 429 in codes and 200 in codes and set(codes) <= {200, 429}
        rejected = next(o for o in outs if o.status_code == 429)
        assert rejected.headers["retry-after"] == "1"
        assert rejected.json()["error"]["code"] == "queue_full"
        assert c.post(URL, json=user(text("after"))).status_code == 200


def test_timeout_answers_504():
    with make_client(FakeEngine(delay_per_call_s=1.0), request_timeout_s=0.1) as c:
        assert_error(c.post(URL, json=user(text("slow"))), 504, "timeout")


def test_engine_failure_is_isolated():
    engine = FakeEngine(delay_per_call_s=0.1, fail_on="BOOM")
    with make_client(engine, batch_window_ms=100) as c:
        with ThreadPoolExecutor(4) as pool:
            outs = list(pool.map(lambda t: c.post(URL, json=user(text(t))), ["a", "BOOM", "b", "c"]))
        assert [o.status_code for o in outs] == [200, 500, 200, 200]
        assert outs[1].json()["error"]["code"] == "internal_error"
        with c.stream("POST", URL, json=user(text("BOOM")) | {"stream": True}) as resp:
            lines = [line for line in resp.iter_lines() if line]
        assert lines[-1] == "data: [DONE]"
        assert json.loads(lines[-2].removeprefix("data: "))["error"]["code"] == "generation_failed"
        assert c.post(URL, json=user(text("still alive"))).status_code == 200


def test_server_keeps_serving_after_a_barrage(client):
    hostile = [
        b"",
        b"null",
        b'{"messages": "nope"}',
        b'{"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}',
        b'{"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": 5, "format": "wav"}}]}]}',
        json.dumps({"messages": [{"role": "user", "content": "x"}], "max_tokens": -1}).encode(),
        json.dumps({"messages": [{"role": "user", "content": "x"}], "stop": ["a"] * 10}).encode(),
        b'{"messages": [{"role": "user", "content": "' + b"\\ud800" + b'"}]}',
    ]
    for payload in hostile:
        resp = client.post(URL, content=payload, headers={"Content-Type": "application/json"})
        assert 400 <= resp.status_code < 500, (payload, resp.status_code, resp.text)
    assert client.post(URL, json=user(text("fine"))).status_code == 200

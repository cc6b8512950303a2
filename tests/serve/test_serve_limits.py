"""Every request-parsing limit answers a 400 with a clear message, fast; 500s name no path."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from desta.serve.app import create_app
from desta.serve.fake import FakeEngine
from desta.serve.settings import ServeSettings

URL = "/v1/chat/completions"


def make_client(engine=None, **settings) -> TestClient:
    return TestClient(
        create_app(engine or FakeEngine(), ServeSettings(**settings)), raise_server_exceptions=False
    )


@pytest.fixture
def client():
    with make_client() as c:
        yield c


def body(**extra) -> dict:
    return {"messages": [{"role": "user", "content": "hi"}], **extra}


def post_raw(client, payload: bytes):
    return client.post(URL, content=payload, headers={"Content-Type": "application/json"})


def refused(resp, code: str, status: int = 400) -> str:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == code, err
    return err["message"]


def test_deeply_nested_json_is_a_400(client):
    start = time.monotonic()
    deep = b'{"messages": [{"role": "user", "content": "hi"}], "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert "deeper than 32" in refused(post_raw(client, deep), "json_too_deep")
    middle = b'{"messages": [{"role": "user", "content": "hi"}], "x": ' + b"[" * 40 + b"]" * 40 + b"}"
    refused(post_raw(client, middle), "json_too_deep")  # under the interpreter's limit, over ours
    assert time.monotonic() - start < 2
    ok = b'{"messages": [{"role": "user", "content": "hi"}], "x": ' + b"[" * 20 + b"]" * 20 + b"}"
    assert post_raw(client, ok).status_code == 200


def test_huge_and_non_finite_numbers_are_400s(client):
    prefix = b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": '
    message = refused(post_raw(client, prefix + b"9" * 5000 + b"}"), "number_too_large")
    assert "5000 characters" in message
    refused(post_raw(client, prefix + b"1" * 33 + b"}"), "number_too_large")
    refused(post_raw(client, prefix + b"1e400}"), "number_too_large")
    refused(post_raw(client, prefix + b"NaN}"), "invalid_json")
    refused(post_raw(client, prefix + b"-Infinity}"), "invalid_json")
    assert post_raw(client, prefix + b"3}").status_code == 200


def test_seed_range(client):
    for seed in (2**63, -1, 10**30):
        resp = client.post(URL, json=body(seed=seed))
        assert resp.status_code == 400 and resp.json()["error"]["param"] == "seed", resp.text
    for seed in (0, 2**63 - 1):
        assert client.post(URL, json=body(seed=seed, temperature=0.7)).status_code == 200


def test_stop_strings_are_bounded(client):
    start = time.monotonic()
    message = refused(client.post(URL, json=body(stop="x" * 100_000)), "stop_too_long")
    assert "100000 characters" in message and "128" in message
    assert time.monotonic() - start < 2
    refused(client.post(URL, json=body(stop=["a", "b", "c", "d", "e"])), "too_many_stop_sequences")
    refused(client.post(URL, json=body(stop=["ok", ""])), "invalid_stop")
    assert client.post(URL, json=body(stop=["y" * 128, "\n"])).status_code == 200
    with make_client(max_stop_sequences=1, max_stop_chars=4) as c:
        refused(c.post(URL, json=body(stop=["a", "b"])), "too_many_stop_sequences")
        refused(c.post(URL, json=body(stop="abcde")), "stop_too_long")


class CountingEngine(FakeEngine):
    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.counted: list[int] = []

    def count_tokens(self, text: str) -> int:
        self.counted.append(len(text))
        return super().count_tokens(text)


def test_prompt_length_in_tokens():
    engine = CountingEngine()
    with make_client(engine, max_prompt_tokens=10) as c:
        words = " ".join(["w"] * 6)
        two = {"messages": [{"role": "system", "content": words}, {"role": "user", "content": words}]}
        message = refused(c.post(URL, json=two), "prompt_too_long")  # 12 tokens over all messages
        assert "12 tokens" in message and "at most 10" in message
        one = {"messages": [{"role": "user", "content": [{"type": "text", "text": words}]}]}
        assert c.post(URL, json=one).status_code == 200
        engine.counted.clear()
        start = time.monotonic()
        refused(
            c.post(URL, json=body() | {"messages": [{"role": "user", "content": "x" * 1_000_000}]}),
            "prompt_too_long",
        )
        assert engine.counted == []  # far over the limit: refused before tokenizing
        assert time.monotonic() - start < 2
        assert engine.calls == [1]  # no refused request reached the model


def test_prompt_length_without_a_token_counter():
    class Plain:  # an engine with only the required members: bytes / 4 estimate
        name = "plain"

        def __init__(self) -> None:
            self.inner = FakeEngine()

        def generate(self, conversations, options, *, cancel=None):
            return self.inner.generate(conversations, options, cancel=cancel)

        def stream(self, conversation, options, *, cancel=None):
            return self.inner.stream(conversation, options, cancel=cancel)

        def close(self) -> None:
            pass

    with make_client(Plain(), max_prompt_tokens=10) as c:
        assert c.post(URL, json={"messages": [{"role": "user", "content": "a" * 40}]}).status_code == 200
        refused(c.post(URL, json={"messages": [{"role": "user", "content": "a" * 44}]}), "prompt_too_long")


def test_internal_errors_name_no_path(monkeypatch):
    engine = FakeEngine(fail_on="BOOM")

    def explode(*_a, **_k):
        raise RuntimeError("could not open /srv/secret/models/weights.bin")

    with make_client(engine) as c:
        resp = c.post(URL, json={"messages": [{"role": "user", "content": "BOOM"}]})
        assert resp.status_code == 500
        err = resp.json()["error"]
        assert err["code"] == "internal_error" and "id " in err["message"] and "BOOM" not in err["message"]
        monkeypatch.setattr(engine, "generate", explode)
        resp = c.post(URL, json=body())
        assert resp.status_code == 500 and "/srv" not in resp.text and "secret" not in resp.text
        monkeypatch.setattr(engine, "stream", lambda *_a, **_k: explode())
        with c.stream("POST", URL, json=body(stream=True)) as sresp:
            lines = [line for line in sresp.iter_lines() if line]
        failure = json.loads(lines[-2].removeprefix("data: "))["error"]
        assert failure["code"] == "generation_failed" and "/srv" not in failure["message"]


def test_unusable_local_paths_name_no_folder(tmp_path):
    folder = tmp_path / "allowed"
    folder.mkdir()
    (folder / "loop.wav").symlink_to(folder / "loop.wav")
    with make_client(allowed_audio_dir=folder) as c:
        for url in ["x" * 300 + ".wav", "loop.wav"]:
            part = {"type": "audio_url", "audio_url": {"url": url}}
            resp = c.post(URL, json={"messages": [{"role": "user", "content": [part]}]})
            assert resp.status_code in (400, 403), resp.text
            assert str(tmp_path) not in resp.text, resp.text
            assert resp.json()["error"]["param"] == "messages[0].content[0].audio_url.url"


def test_decoder_crash_is_a_400(client, monkeypatch):
    from serve_helpers import audio_part

    import desta.audio

    def crash(*_a, **_k):
        raise MemoryError("Unable to allocate 36.0 GiB for an array")

    monkeypatch.setattr(desta.audio, "decode_audio_bytes", crash)
    resp = client.post(URL, json={"messages": [{"role": "user", "content": [audio_part(0.1)]}]})
    assert refused(resp, "invalid_audio") == "could not decode audio (MemoryError); send a valid audio file"

"""`desta serve` / `desta demo-web` argument parsing maps onto ServeSettings."""

from __future__ import annotations

import pytest

from desta.cli import build_parser
from desta.errors import ConfigError
from desta.serve.cli import settings_from_args
from desta.serve.settings import MiB, ServeSettings


def test_serve_flags_map_to_settings(tmp_path):
    args = build_parser().parse_args(
        [
            "serve",
            "my-model",
            "--port",
            "0",
            "--api-key",
            "k",
            "--allowed-audio-dir",
            str(tmp_path),
            "--max-batch-size",
            "4",
            "--max-queue",
            "10",
            "--max-body-mb",
            "2",
            "--max-audios",
            "3",
            "--fake",
        ]
    )
    s = settings_from_args(args)
    assert args.model == "my-model" and args.fake
    assert (s.host, s.port, s.api_key, s.max_batch_size, s.max_queue) == ("127.0.0.1", 0, "k", 4, 10)
    assert s.allowed_audio_dir == tmp_path.resolve()
    assert s.max_body_bytes == 2 * MiB and s.max_audios_per_request == 3
    demo = build_parser().parse_args(["demo-web", "--port", "7999"])
    assert demo.model is None and demo.port == 7999 and demo.host == "127.0.0.1"


def test_api_key_from_environment(monkeypatch):
    monkeypatch.setenv("DESTA_API_KEY", "from-env")
    assert settings_from_args(build_parser().parse_args(["serve"])).api_key == "from-env"


def test_bad_settings_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="allowed_audio_dir"):
        ServeSettings(allowed_audio_dir=tmp_path / "missing")
    with pytest.raises(ConfigError):
        ServeSettings(max_batch_size=0)


def test_connection_limits_reach_uvicorn():
    from desta.serve.app import create_app
    from desta.serve.fake import FakeEngine
    from desta.serve.server import uvicorn_config

    args = build_parser().parse_args(
        [
            "serve",
            "--fake",
            "--max-prompt-tokens",
            "100",
            "--body-timeout",
            "7",
            "--header-timeout",
            "3",
            "--keep-alive-timeout",
            "2",
            "--max-connections",
            "50",
        ]
    )
    s = settings_from_args(args)
    assert (s.max_prompt_tokens, s.body_timeout_s, s.header_timeout_s) == (100, 7.0, 3.0)
    assert (s.keep_alive_timeout_s, s.max_connections) == (2.0, 50)
    config = uvicorn_config(create_app(FakeEngine(), s), s)
    assert config.timeout_keep_alive == 2.0 and config.limit_concurrency == 50
    assert config.http.__name__ == "HeaderDeadlineProtocol"
    for bad in (
        {"body_timeout_s": 0},
        {"header_timeout_s": -1},
        {"max_prompt_tokens": 0},
        {"max_connections": 0},
    ):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            ServeSettings(**bad)

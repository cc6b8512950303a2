"""`desta ask --keep-alive`: a background `desta serve --idle-exit` that later asks reuse, `desta stop`."""

from __future__ import annotations

import json
import time

import pytest

from desta.errors import DeSTAError
from desta.infer import keepalive


def test_parse_duration():
    assert keepalive.parse_duration("10m") == 600.0
    assert keepalive.parse_duration("90s") == 90.0
    assert keepalive.parse_duration("1h") == 3600.0
    assert keepalive.parse_duration("2.5") == 2.5
    for bad in ("", "0", "-1m", "ten minutes", "5d"):
        with pytest.raises(DeSTAError, match="duration"):
            keepalive.parse_duration(bad)


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        keepalive._reap(pid)
        if not keepalive._alive(pid):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DESTA_CACHE", str(tmp_path))
    yield tmp_path
    keepalive.stop_servers(timeout_s=5)


def test_started_server_is_found_again_then_stops_itself_when_idle(cache):
    url = keepalive.ensure_server("fake-model", 3.0, serve_args=("--fake",))
    state = json.loads(next((cache / "keepalive").glob("*.json")).read_text())
    assert state["url"] == url and state["model"] == "fake-model"
    assert keepalive.find_server("fake-model") == url  # a later ask reuses it ...
    assert keepalive.ensure_server("fake-model", 3.0, serve_args=("--fake",)) == url  # ... without starting another
    assert keepalive.find_server("other-model") is None  # another model is another server
    assert _wait_gone(state["pid"], 30), "the server did not stop after its idle time"
    assert keepalive.find_server("fake-model") is None  # the stale record is removed
    assert not list((cache / "keepalive").glob("*.json"))


def test_stop_ends_every_keepalive_server(cache, capsys):
    from desta.cli import main

    keepalive.ensure_server("fake-model", 600.0, serve_args=("--fake",))
    pid = keepalive.running_servers()[0]["pid"]
    assert main(["stop"]) == 0
    assert "stopped desta serve fake-model" in capsys.readouterr().out
    assert _wait_gone(pid, 10) and keepalive.running_servers() == []
    assert main(["stop"]) == 0
    assert "no keep-alive server is running" in capsys.readouterr().out


def test_a_server_that_fails_to_start_is_reported_with_its_log(cache):
    with pytest.raises(DeSTAError, match="exited with status") as err:
        keepalive.start_server(str(cache / "no-such-model"), 60.0)
    assert "no-such-model" in str(err.value)
    assert keepalive.running_servers() == []


def test_keep_alive_refuses_server_and_local_only_options(capsys):
    from desta.cli import main
    from desta.model.load import example_clip

    clip = str(example_clip())
    assert main(["ask", clip, "q", "--keep-alive", "1m", "--server", "http://127.0.0.1:9"]) != 0
    assert "drop --server" in capsys.readouterr().err
    assert main(["ask", clip, "q", "--keep-alive", "1m", "--show-transcript"]) != 0
    assert "drop --keep-alive" in capsys.readouterr().err

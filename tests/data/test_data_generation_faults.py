"""Generation against a fake OpenAI-compatible server on 127.0.0.1: endpoint-wide failures abort and
store nothing, exit statuses, and the output-folder lock (one run at a time, --wait queues)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from openai_fake import FakeOpenAIServer, grounded_answer

from desta.data.backends import OpenAIBackend, RetryPolicy
from desta.data.outdir import REJECTS, OutputLock, OutputLockedError, lock_holder
from desta.data.pipeline import GenerateConfig, run_generation, shard_paths
from desta.data.records import AudioRecord, read_jsonl, write_records
from desta.data.summary import EXIT_ABORTED, EXIT_FAILED, EXIT_OK, GenerationAborted, RunSummary
from desta.errors import DeSTAError

FAST = RetryPolicy(max_attempts=3, initial_delay=0.01, jitter=0.0)


@dataclass(frozen=True)
class Instr:
    text: str
    category: str


class ListPool:
    items = ("How does the speaker sound?", "Describe the clip.")

    def sample(self, seed: int, kind: str = "speech") -> Instr:
        return Instr(self.items[seed % 2], f"cat{seed % 2}")


def describe(rec: AudioRecord) -> str:
    return f"[00:00-00:02] {rec.transcript} (Gender: {rec.attributes['Gender']})"


def make_records(n: int) -> list[AudioRecord]:
    return [
        AudioRecord(
            id=f"r{i:03d}",
            audio=f"a/r{i:03d}.wav",
            corpus="Toy",
            duration=2.0,
            transcript=f"sentence number {i}",
            attributes={"Gender": "Female" if i % 2 else "Male"},
        )
        for i in range(n)
    ]


def rows(out: Path) -> list[dict]:
    return [r for p in shard_paths(out) for r in read_jsonl(p)]


def rejects(out: Path) -> list[dict]:
    return list(read_jsonl(out / REJECTS)) if (out / REJECTS).exists() else []


def cli_args(manifest: Path, out: Path, url: str, *extra: str) -> list[str]:
    return ["data", "generate", str(manifest), "-o", str(out), "--backend", "openai", "--model", "tiny-llm",
            "--base-url", url, "--num-per-record", "2", "--quiet", *extra]  # fmt: skip


def test_fake_server_answers_pass_grounding():
    answer = grounded_answer(
        "<start_audio>[00:00-00:02] sentence number 3 (Gender: Female)<end_audio>\nWhat?"
    )
    assert answer == 'A woman says "sentence number 3" in a calm voice, in English.'


def test_wrong_key_aborts_nothing_stored_then_right_key_completes(tmp_path, monkeypatch, capsys):
    from desta.cli import main

    manifest, out = tmp_path / "records.jsonl", tmp_path / "gen"
    write_records(manifest, make_records(5))
    with FakeOpenAIServer(key="right-key") as server:
        monkeypatch.setenv("OPENAI_API_KEY", "wrong-key")
        assert main(cli_args(manifest, out, server.url)) == EXIT_ABORTED
        captured = capsys.readouterr()
        summary = json.loads(captured.out)
        assert "HTTP 401" in summary["aborted"] and "check the API key" in summary["aborted"]
        assert summary["written"] == 0 and summary["rejected"] == {}
        assert "aborted after 0 rows" in captured.err and "Nothing was stored as rejected" in captured.err
        # stopped at the check: its one 1-token chat request
        assert rows(out) == [] and rejects(out) == [] and server.chat_requests == 1

        monkeypatch.setenv("OPENAI_API_KEY", "right-key")
        assert main(cli_args(manifest, out, server.url)) == EXIT_OK
        summary = json.loads(capsys.readouterr().out)
        assert summary["skipped"] == 0 and summary["errors"] == 0 and summary["aborted"] is None
        assert all(r["stage"] == "filter" for r in rejects(out))  # no request was lost to the bad key
        keys = [r["meta"]["key"] for r in rows(out)] + [r["key"] for r in rejects(out)]
        assert sorted(keys) == sorted(f"Toy/r{i:03d}#{k}" for i in range(5) for k in range(2))
        assert summary["written"] == len(rows(out)) > 0


def test_key_revoked_mid_run_keeps_earlier_rows_and_stores_no_rejects(tmp_path):
    out = tmp_path / "gen"
    cfg = GenerateConfig(num_per_record=2, batch_size=4, progress=False)
    with FakeOpenAIServer(key="k1", revoke_after=9) as server:  # the check's 1-token request, then 8
        backend = OpenAIBackend("tiny-llm", base_url=server.url, api_key="k1", concurrency=2, retry=FAST)
        with pytest.raises(GenerationAborted, match="HTTP 401") as err:
            run_generation(make_records(10), out, backend, cfg, pool=ListPool(), describe=describe)
        backend.close()
        assert err.value.summary.written == len(rows(out)) == 8 and rejects(out) == []
        server.key, server.revoke_after = "k2", None
        backend = OpenAIBackend("tiny-llm", base_url=server.url, api_key="k2", concurrency=2, retry=FAST)
        s = run_generation(make_records(10), out, backend, cfg, pool=ListPool(), describe=describe)
        backend.close()
    assert (s.skipped, s.written, s.errors) == (8, 12, 0)
    keys = Counter(r["meta"]["key"] for r in rows(out))
    assert len(keys) == 20 and max(keys.values()) == 1 and rejects(out) == []


def test_unreachable_endpoint_aborts_after_retries(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = OpenAIBackend("m", base_url=f"http://127.0.0.1:{port}/v1", retry=FAST)
    with pytest.raises(GenerationAborted, match="failed after 3 tries: connection error") as err:
        run_generation(make_records(3), tmp_path, backend, GenerateConfig(progress=False), pool=ListPool(), describe=describe)  # fmt: skip
    backend.close()
    assert (
        err.value.summary.conclude(0.1) == EXIT_ABORTED and rows(tmp_path) == [] and rejects(tmp_path) == []
    )


def test_unknown_model_aborts_naming_the_served_ones(tmp_path, monkeypatch, capsys):
    from desta.cli import main

    manifest = tmp_path / "records.jsonl"
    write_records(manifest, make_records(2))
    monkeypatch.setenv("OPENAI_API_KEY", "right-key")
    with FakeOpenAIServer() as server:
        args = cli_args(manifest, tmp_path / "gen", server.url)
        args[args.index("tiny-llm")] = "big-llm"
        assert main(args) == EXIT_ABORTED
    summary = json.loads(capsys.readouterr().out)
    assert (
        "model 'big-llm' is not served by" in summary["aborted"]
        and "it serves: tiny-llm" in summary["aborted"]
    )


def test_every_request_refused_exits_1_with_per_request_rejects(tmp_path, monkeypatch, capsys):
    from desta.cli import main

    manifest, out = tmp_path / "records.jsonl", tmp_path / "gen"
    write_records(manifest, make_records(3))
    monkeypatch.setenv("OPENAI_API_KEY", "right-key")
    with FakeOpenAIServer(refuse=True) as server:
        assert main(cli_args(manifest, out, server.url)) == EXIT_FAILED
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["written"] == 0 and summary["errors"] == 6 and summary["retry_later"] == 0
    assert "nothing could be generated for 6 requests" in captured.err
    # a 400 concerns one prompt: stored as a permanent reject with the server's message
    assert [r["reason"] for r in rejects(out)] == [
        "HTTP 400: This model's maximum context length is 16 tokens"
    ] * 6


@pytest.mark.parametrize(
    ("written", "errors", "retry_later", "threshold", "status", "words"),
    [
        (19, 1, 1, 0.1, EXIT_OK, "done: 19 rows written, 1 rejected (1 backend errors); 1 transient"),
        (15, 5, 0, 0.1, EXIT_FAILED, "backend errors on 25% of the requests, above the allowed 10%"),
        (15, 5, 0, 0.3, EXIT_OK, "done: 15 rows written"),
        (0, 20, 20, 1.0, EXIT_FAILED, "nothing could be generated for 20 requests"),
    ],
)
def test_conclude_exit_status_and_outcome(written, errors, retry_later, threshold, status, words):
    s = RunSummary(requests=20, written=written, errors=errors, retry_later=retry_later)
    s.rejected["HTTP 503"] = errors
    assert s.conclude(threshold) == status and words in s.outcome


def test_conclude_nothing_to_do_and_bad_threshold():
    s = RunSummary(requests=4, skipped=4)
    assert s.conclude(0.1) == EXIT_OK and "nothing to do" in s.outcome
    with pytest.raises(DeSTAError, match="max_error_rate"):
        s.conclude(1.5)


# ------------------------------------------------------------------------------------------- lock


def test_lock_refuses_a_second_holder_and_wait_queues(tmp_path):
    waited: list[int | None] = []
    with OutputLock(tmp_path):
        assert lock_holder(tmp_path) == os.getpid()
        with pytest.raises(OutputLockedError) as err:
            OutputLock(tmp_path).__enter__()
        assert (
            str(tmp_path) in str(err.value)
            and f"pid {os.getpid()}" in str(err.value)
            and "--wait" in str(err.value)
        )
        got = threading.Event()

        def second() -> None:
            with OutputLock(tmp_path, wait=True, on_wait=waited.append):
                got.set()

        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.3)
        assert not got.is_set()  # still queued behind the first holder
    t.join(timeout=10)
    assert got.is_set() and waited == [os.getpid()]


def test_output_path_that_is_a_file_is_a_clear_error(tmp_path):
    target = tmp_path / "gen"
    target.write_text("not a folder")
    with pytest.raises(DeSTAError, match=f"cannot use {target} as the output folder"):
        run_generation(make_records(1), target, OpenAIBackend("m"), GenerateConfig(progress=False), pool=ListPool(), describe=describe)  # fmt: skip


def test_lock_dies_with_a_killed_holder(tmp_path):
    code = f"from desta.data.outdir import OutputLock; import time\nwith OutputLock({str(tmp_path)!r}):\n    print('held', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    with pytest.raises(OutputLockedError, match=f"pid {proc.pid}"):
        OutputLock(tmp_path).__enter__()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with OutputLock(tmp_path):  # the kernel dropped the dead run's lock
        assert lock_holder(tmp_path) == os.getpid()


def test_two_concurrent_cli_runs_second_refused_then_wait_queues_no_duplicates(tmp_path):
    manifest, out = tmp_path / "records.jsonl", tmp_path / "gen"
    write_records(manifest, make_records(6))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), OPENAI_API_KEY="right-key")

    def start(*extra: str, name: str) -> tuple[subprocess.Popen, Path]:
        err = tmp_path / f"{name}.err"
        cmd = [
            sys.executable,
            "-m",
            "desta",
            *cli_args(manifest, out, server.url, "--batch-size", "4", *extra),
        ]
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=open(err, "w"), text=True), err

    with FakeOpenAIServer() as server:
        server.gate = threading.Event()  # the first run's requests hang until released
        first, _ = start(name="first")
        deadline = time.time() + 60
        while lock_holder(out) != first.pid and time.time() < deadline:
            time.sleep(0.05)
        assert lock_holder(out) == first.pid
        t0 = time.time()
        second, second_err = start(name="second")
        assert second.wait(timeout=60) == 1 and time.time() - t0 < 30
        message = second_err.read_text()
        assert f"output folder {out} is in use by another generation run (pid {first.pid})" in message
        third, third_err = start("--wait", name="third")
        while "waiting for the run holding" not in third_err.read_text() and time.time() < deadline:
            time.sleep(0.05)
        assert third.poll() is None and f"(pid {first.pid})" in third_err.read_text()
        server.gate.set()
        first_summary = json.loads(first.communicate(timeout=60)[0])
        third_summary = json.loads(third.communicate(timeout=60)[0])
    assert first.returncode == 0 and third.returncode == 0
    assert first_summary["written"] + sum(first_summary["rejected"].values()) == 12
    assert third_summary["skipped"] == 12 and third_summary["written"] == 0
    keys = Counter([r["meta"]["key"] for r in rows(out)] + [r["key"] for r in rejects(out)])
    assert len(keys) == 12 and max(keys.values()) == 1


def test_named_model_needs_no_model_list(tmp_path, monkeypatch, capsys):
    """A server that implements only POST /v1/chat/completions (GET /models: HTTP 501)."""
    from desta.cli import main

    manifest, out = tmp_path / "records.jsonl", tmp_path / "gen"
    write_records(manifest, make_records(2))
    monkeypatch.setenv("OPENAI_API_KEY", "right-key")
    with FakeOpenAIServer(models_status=501) as server:
        assert main(cli_args(manifest, out, server.url)) == EXIT_OK
        assert server.models_requests == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["written"] == len(rows(out)) > 0 and summary["errors"] == 0
        # a wrong model is still told at once, by the chat request's own answer
        args = cli_args(manifest, tmp_path / "gen2", server.url)
        args[args.index("tiny-llm")] = "big-llm"
        assert main(args) == EXIT_ABORTED
    assert "The model `big-llm` does not exist" in json.loads(capsys.readouterr().out)["aborted"]

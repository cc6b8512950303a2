"""Sharded, resumable generation runs: exactly-once under SIGKILL, cache hits, rejects, report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from desta.data.backends import BackendResult, FakeBackend, RetryPolicy
from desta.data.pipeline import (
    REJECTS,
    GenerateConfig,
    ShardWriter,
    finished_keys,
    run_generation,
    shard_paths,
)
from desta.data.records import AudioRecord, read_jsonl
from desta.data.report import build_report


@dataclass(frozen=True)
class Instr:
    text: str
    category: str


class ListPool:
    items = ("What is said?", "Describe the audio.", "How does the speaker feel?")

    def sample(self, seed: int, kind: str = "speech") -> Instr:
        return Instr(self.items[seed % 3], f"cat{seed % 3}")


def describe(rec: AudioRecord) -> str:
    return f"[00:00-00:02] {rec.transcript} (Gender: {rec.attributes.get('Gender', '')})"


def make_records(n: int) -> list[AudioRecord]:
    return [
        AudioRecord(
            id=f"r{i:03d}",
            audio=f"a/r{i:03d}.wav",
            corpus="ToyA" if i % 3 else "ToyB",
            duration=1.0 + i % 5,
            transcript=f"sentence number {i}",
            attributes={"Gender": "Female" if i % 2 else "Male"},
        )
        for i in range(n)
    ]


def all_rows(out: Path) -> list[dict]:
    return [row for p in shard_paths(out) for row in read_jsonl(p)]


CFG = GenerateConfig(
    num_per_record=2, batch_size=4, shard_size=7, progress=False, retry=RetryPolicy(jitter=0.0)
)


def test_run_writes_shards_and_is_idempotent(tmp_path):
    out = tmp_path / "out"
    s1 = run_generation(make_records(10), out, FakeBackend(), CFG, pool=ListPool(), describe=describe)
    assert (s1.requests, s1.written, s1.skipped, s1.backend_calls) == (20, 20, 0, 20)
    assert [p.name for p in shard_paths(out)] == [
        "shard-00000.jsonl",
        "shard-00001.jsonl",
        "shard-00002.jsonl",
    ]
    assert [sum(1 for _ in read_jsonl(p)) for p in shard_paths(out)] == [7, 7, 6]
    rows = all_rows(out)
    assert sorted(r["meta"]["key"] for r in rows) == sorted(
        f"{'ToyA' if i % 3 else 'ToyB'}/r{i:03d}#{k}" for i in range(10) for k in range(2)
    )
    first = rows[0]
    assert first["messages"][1]["content"].startswith("<|AUDIO|>\n") and first["messages"][1]["audios"][0][
        "text"
    ].startswith("sentence number")
    assert first["seed_description"].startswith("[00:00-00:02] sentence number")
    backend = FakeBackend()
    s2 = run_generation(make_records(10), out, backend, CFG, pool=ListPool(), describe=describe)
    assert (s2.skipped, s2.written, backend.calls) == (20, 0, 0)
    assert len(all_rows(out)) == 20


def test_cache_hit_second_run_makes_no_backend_calls(tmp_path):
    out = tmp_path / "out"
    run_generation(make_records(6), out, FakeBackend(), CFG, pool=ListPool(), describe=describe)
    before = sorted((r["meta"]["key"], r["response"]) for r in all_rows(out))
    for p in shard_paths(out):
        p.unlink()  # keep cache.sqlite only
    backend = FakeBackend()
    s = run_generation(make_records(6), out, backend, CFG, pool=ListPool(), describe=describe)
    assert backend.calls == 0 and s.cache_hits == 12 and s.written == 12
    assert sorted((r["meta"]["key"], r["response"]) for r in all_rows(out)) == before
    # a different model is a different request: no hits
    other = FakeBackend(model_id="other")
    for p in shard_paths(out):
        p.unlink()
    run_generation(make_records(6), out, other, CFG, pool=ListPool(), describe=describe)
    assert other.calls == 12


def test_rejects_file_and_resume_retries_only_transient(tmp_path):
    out = tmp_path / "out"
    state = {"down": True}

    def fail(conv):
        content = conv[-1]["content"]
        if "number 1\b" in content or "number 1 " in content or "number 1(" in content:
            return BackendResult.failed("HTTP 400: maximum context length exceeded", retryable=False)
        if "number 2 " in content and state["down"]:
            return BackendResult.failed("HTTP 503: overloaded", retryable=True)
        return None

    def reply(conv):
        content = conv[-1]["content"]
        if "number 3 " in content:
            return "According to the description, the speaker is female."
        if "number 4 " in content:
            return ""
        return "The speaker sounds calm."

    sleeps: list[float] = []
    backend = FakeBackend(fail=fail, reply=reply)
    cfg = GenerateConfig(
        num_per_record=1, batch_size=3, progress=False, retry=RetryPolicy(max_attempts=3, jitter=0.0)
    )
    s = run_generation(
        make_records(6), out, backend, cfg, pool=ListPool(), describe=describe, sleep=sleeps.append
    )
    assert s.written == 2 and dict(s.rejected) == {
        "HTTP 400": 1,
        "HTTP 503": 1,
        "filter:leak": 1,
        "filter:empty": 1,
    }
    rejects = {r["id"]: r for r in read_jsonl(out / REJECTS)}
    assert set(rejects) == {"r001", "r002", "r003", "r004"}
    assert (
        rejects["r001"]["stage"] == "backend"
        and not rejects["r001"]["retryable"]
        and "maximum context" in rejects["r001"]["reason"]
    )
    assert rejects["r002"]["retryable"] and rejects["r002"]["reason"].startswith("HTTP 503")
    assert rejects["r003"] == {
        "key": "ToyA/r003#0" if 3 % 3 else "ToyB/r003#0",
        "id": "r003",
        "dataset": "ToyB",
        "stage": "filter",
        "reason": "filter:leak",
        "retryable": False,
        "response": "According to the description, the speaker is female.",
    }
    assert sleeps == [1.0, 2.0]  # two backoffs for the 503
    # resume with the server back: only the transient failure is retried
    state["down"] = False
    backend2 = FakeBackend(fail=fail, reply=reply)
    s2 = run_generation(make_records(6), out, backend2, cfg, pool=ListPool(), describe=describe)
    assert backend2.calls == 1 and s2.written == 1 and s2.skipped == 5
    assert sorted(r["id"] for r in all_rows(out)) == ["r000", "r002", "r005"]
    report = build_report(out)
    assert report["kept"] == 3 and report["rejected"] == 3  # r002's transient reject was answered later
    assert report["rejects_by_reason"] == {"HTTP 400": 1, "filter:leak": 1, "filter:empty": 1}


def test_bad_record_is_a_reject_not_a_crash(tmp_path):
    def picky(rec):
        if rec.id == "r001":
            raise ValueError("no duration")
        return describe(rec)

    s = run_generation(
        make_records(3),
        tmp_path,
        FakeBackend(),
        GenerateConfig(progress=False),
        pool=ListPool(),
        describe=picky,
    )
    assert s.written == 2 and dict(s.rejected) == {"request": 1}
    (rej,) = list(read_jsonl(tmp_path / REJECTS))
    assert rej["id"] == "r001" and rej["stage"] == "request" and "no duration" in rej["reason"]


def test_torn_tail_is_cut_and_not_counted(tmp_path):
    w = ShardWriter(tmp_path, shard_size=10)
    w.write([{"meta": {"key": "a"}}, {"meta": {"key": "b"}}])
    with open(tmp_path / "shard-00000.jsonl", "a") as f:
        f.write('{"meta": {"key": "c"')  # killed mid-line
    assert finished_keys(tmp_path) == {"a", "b"}
    w2 = ShardWriter(tmp_path, shard_size=10)
    assert w2.count == 2
    w2.write([{"meta": {"key": "c"}}])
    assert [r["meta"]["key"] for r in read_jsonl(tmp_path / "shard-00000.jsonl")] == ["a", "b", "c"]


def test_report_files(tmp_path):
    run_generation(make_records(9), tmp_path, FakeBackend(), CFG, pool=ListPool(), describe=describe)
    rep = build_report(tmp_path)
    assert rep["kept"] == 18 and rep["per_corpus"] == {"ToyA": 12, "ToyB": 6}
    assert rep["attributes"]["Gender"] == {"Male": 10, "Female": 8}
    assert rep["duration_seconds"]["count"] == 18 and rep["duration_seconds"]["max"] == 5.0
    assert json.loads((tmp_path / "report.json").read_text())["kept"] == 18
    md = (tmp_path / "report.md").read_text()
    assert "| ToyA | 12 |" in md and "![duration.png](duration.png)" in md
    for png in ("response_length.png", "duration.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


DRIVER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {testdir!r})
    from test_data_pipeline import ListPool, describe, make_records
    from desta.data.backends import FakeBackend
    from desta.data.pipeline import GenerateConfig, run_generation

    class Slow(FakeBackend):
        def generate(self, batch, params):
            time.sleep(0.03)
            return super().generate(batch, params)

    cfg = GenerateConfig(num_per_record=2, batch_size=3, shard_size=11, progress=False)
    run_generation(make_records(int(sys.argv[2])), sys.argv[1], Slow(), cfg, pool=ListPool(), describe=describe)
    """
)


def test_sigkill_midway_then_resume_is_exactly_once(tmp_path):
    """Kill the writer with SIGKILL several times at random moments; the final output has every request once."""
    out = tmp_path / "out"
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(testdir=str(Path(__file__).parent)))
    n_records = 120
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    kills = 0
    for target in (15, 90, 170):  # kill once this many rows exist (mid-batch or mid-write: any moment)
        proc = subprocess.Popen([sys.executable, str(script), str(out), str(n_records)], env=env)
        deadline = time.time() + 60
        while proc.poll() is None and time.time() < deadline:
            if sum(p.read_bytes().count(b"\n") for p in shard_paths(out)) >= target:
                break
            time.sleep(0.005)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
    partial = len(finished_keys(out))
    assert kills == 3 and 170 <= partial < 2 * n_records
    s = run_generation(
        make_records(n_records),
        out,
        FakeBackend(),
        GenerateConfig(num_per_record=2, batch_size=3, shard_size=11, progress=False),
        pool=ListPool(),
        describe=describe,
    )
    keys = [r["meta"]["key"] for r in all_rows(out)]
    counts = Counter(keys)
    assert len(keys) == 2 * n_records and max(counts.values()) == 1
    assert s.skipped == partial and s.written == 2 * n_records - partial
    assert all(len(list(read_jsonl(p))) <= 11 for p in shard_paths(out))


@pytest.mark.parametrize("n", [0])
def test_empty_input(tmp_path, n):
    s = run_generation(make_records(n), tmp_path, FakeBackend(), CFG, pool=ListPool(), describe=describe)
    assert (s.requests, s.written) == (0, 0) and shard_paths(tmp_path) == []


def test_cli_generate_describe_and_report(tmp_path, capsys):
    pytest.importorskip("desta.data.instructions")
    from desta.cli import main
    from desta.data.records import write_records

    manifest = tmp_path / "records.jsonl"
    write_records(manifest, make_records(5))
    assert main(["data", "describe", str(manifest), "--limit", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "r000\t[00:00-00:01] sentence number 0 (Gender: Male)",
        "r001\t[00:00-00:02] sentence number 1 (Gender: Female)",
    ]
    out = tmp_path / "gen"
    args = [
        "data",
        "generate",
        str(manifest),
        "-o",
        str(out),
        "--backend",
        "fake",
        "--model",
        "fake",
        "--num-per-record",
        "2",
        "--quiet",
        "--report",
    ]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.split("\nreport ->")[0])
    # the fake backend's canned answers fail the grounding check of instructions that require facts
    kept, dropped = summary["written"], sum(summary["rejected"].values())
    assert summary["requests"] == 10 and kept + dropped == 10
    assert set(summary["rejected"]) <= {"filter:missing_transcript", "filter:missing_gender", "filter:missing_language"}
    assert (out / "report.md").exists() and len(all_rows(out)) == kept
    assert main(args) == 0  # resumed: nothing to do
    assert json.loads(capsys.readouterr().out.split("\nreport ->")[0])["skipped"] == 10
    assert main(["data", "report", str(out), "--no-plots"]) == 0

"""Ray Data generation on a local Ray instance with the fake backend (slow: starting Ray takes seconds)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest

from desta.data.backends import BackendSpec
from desta.data.pipeline import GenerateConfig, shard_paths
from desta.data.records import AudioRecord, read_jsonl

ray = pytest.importorskip("ray")


def _records(n: int) -> list[AudioRecord]:
    return [
        AudioRecord(id=f"r{i}", audio=f"r{i}.wav", corpus="Toy", duration=2.0, transcript=f"line {i}")
        for i in range(n)
    ]


@pytest.mark.slow
def test_ray_pipeline_two_replicas_exactly_once_and_resume(tmp_path):
    from desta.data.ray_pipeline import RayOptions, run_generation_ray

    @dataclass(frozen=True)
    class Instr:
        text: str
        category: str

    class Pool:  # defined here so that Ray pickles it by value
        def sample(self, seed, kind="speech"):
            return Instr(("Describe.", "What is said?")[seed % 2], "c")

    def describe(rec):
        if rec.id == "r5":
            raise ValueError("broken metadata")
        return f"[00:00-00:02] {rec.transcript}"

    cfg = GenerateConfig(num_per_record=2, batch_size=4, shard_size=9, progress=False)
    opts = RayOptions(
        replicas=2, num_cpus=0.5, ray_init_kwargs=(("num_cpus", 2), ("object_store_memory", 80 * 1024**2))
    )
    try:
        s = run_generation_ray(
            _records(12),
            tmp_path,
            BackendSpec("fake", "fake-llm"),
            cfg,
            opts,
            pool_factory=Pool,
            describe=describe,
        )
        assert s.requests == 24 and s.written == 22 and dict(s.rejected) == {"request": 2}
        rows = [r for p in shard_paths(tmp_path) for r in read_jsonl(p)]
        keys = Counter(r["meta"]["key"] for r in rows)
        assert len(keys) == 22 and max(keys.values()) == 1 and "Toy/r5#0" not in keys
        assert all(r["meta"]["model"] == "fake-llm" and r["response"].startswith("[fake]") for r in rows)
        s2 = run_generation_ray(
            _records(14),
            tmp_path,
            BackendSpec("fake", "fake-llm"),
            cfg,
            opts,
            pool_factory=Pool,
            describe=describe,
        )
        assert s2.skipped == 24 and s2.written == 4
    finally:
        ray.shutdown()

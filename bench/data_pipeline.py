"""Self-generation pipeline overhead without an LLM: read records, describe, sample an instruction,
render both message lists, (cache,) filter and write shards, with the instant fake backend.

Target: >= 2,000 records/s on one core. Writes ``bench/results/data_pipeline.json``.

    python bench/data_pipeline.py [--records 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from desta.data.backends import FakeBackend
from desta.data.pipeline import GenerateConfig, run_generation
from desta.data.records import AudioRecord, read_records, write_records

ROOT = Path(__file__).resolve().parents[1]


def machine() -> dict:
    import torch

    cpu = "unknown"
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


def make_records(n: int) -> list[AudioRecord]:
    emotions = ("Neutral", "Happy", "Angry", "Sad")
    return [
        AudioRecord(
            id=f"spk{i % 97}/utt{i:07d}",
            audio=f"corpus/spk{i % 97}/utt{i:07d}.wav",
            corpus=("IEMOCAP", "VCTK", "ESC50")[i % 3],
            duration=1.0 + (i % 17) * 0.7,
            transcript="" if i % 3 == 2 else f"this is utterance number {i} of the benchmark corpus",
            caption="door knock" if i % 3 == 2 else "",
            attributes={
                "Emotion": emotions[i % 4],
                "Gender": "Female" if i % 2 else "Male",
                "Pitch": "Normal",
            }
            if i % 3 != 2
            else {"Audio category": "door_wood_knock"},
            kind="sound" if i % 3 == 2 else "speech",
        )
        for i in range(n)
    ]


def run(n: int, *, use_cache: bool, batch_size: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "records.jsonl"
        write_records(manifest, make_records(n))
        cfg = GenerateConfig(batch_size=batch_size, shard_size=50_000, use_cache=use_cache, progress=False)
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        summary = run_generation(read_records(manifest), Path(tmp) / "out", FakeBackend(), cfg)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        # every record accounted for: kept, or rejected by the grounding filters (the fake backend's
        # echo does not state the gender/transcript that some pool instructions require)
        rejected = sum(summary.rejected.values())
        assert summary.written + rejected == n and summary.errors == 0, summary
        out_bytes = sum(p.stat().st_size for p in (Path(tmp) / "out").glob("shard-*.jsonl"))
    return {
        "records": n,
        "use_cache": use_cache,
        "batch_size": batch_size,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "records_per_s": round(n / wall, 1),
        "written": summary.written,
        "rejected": dict(summary.rejected),
        "records_per_cpu_s": round(n / cpu, 1),
        "output_mb": round(out_bytes / 1e6, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "data_pipeline.json"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    runs = [
        run(args.records, use_cache=False, batch_size=256),
        run(args.records, use_cache=True, batch_size=256),
    ]
    for r in runs:
        print(f"cache={r['use_cache']!s:5}  {r['records']} records in {r['wall_s']} s  ->  {r['records_per_s']} records/s "
              f"({r['records_per_cpu_s']} per CPU-second)")  # fmt: skip
    result = {"benchmark": "data_pipeline", "target_records_per_s": 2000, "machine": machine(), "runs": runs,
              "note": "fake backend (no LLM); one process, one core; includes JSONL read, seed description, instruction sampling, "
                      "message rendering, cache key hashing, filters, shard write with fsync per batch"}  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()

"""Self-generation under SIGKILL: a generation run is killed at random moments, resumed each time, and
the output must hold every request exactly once (nothing lost, nothing written twice).

The run uses the same driver as tests/data/test_data_pipeline.py (a fake backend with a small delay,
small shards, so kills land mid-batch, mid-write and between shards). Figures go to
bench/results/generate_kill.json.

    python bench/generate_kill.py [--runs 5] [--kills 8] [--records 150]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests" / "data"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(TESTS))
from _machine import write_result  # noqa: E402


def _rows(out: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in out.glob("shard-*.jsonl"))


def one_run(out: Path, n_records: int, kills: int, rng: random.Random) -> dict:
    from test_data_pipeline import DRIVER, ListPool, all_rows, describe, make_records

    from desta.data.backends import FakeBackend
    from desta.data.pipeline import GenerateConfig, run_generation

    script = out.parent / "driver.py"
    script.write_text(DRIVER.format(testdir=str(TESTS)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = 0
    targets = sorted(rng.sample(range(1, 2 * n_records), kills))
    for target in targets:
        proc = subprocess.Popen([sys.executable, str(script), str(out), str(n_records)], env=env)
        deadline = time.time() + 120
        while proc.poll() is None and time.time() < deadline and _rows(out) < target:
            time.sleep(0.003)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            done += 1
    cfg = GenerateConfig(num_per_record=2, batch_size=3, shard_size=11, progress=False)
    run_generation(make_records(n_records), out, FakeBackend(), cfg, pool=ListPool(), describe=describe)
    keys = [r["meta"]["key"] for r in all_rows(out)]
    counts = Counter(keys)
    return {
        "kills": done,
        "expected_rows": 2 * n_records,
        "rows": len(keys),
        "lost": 2 * n_records - len(counts),
        "duplicated": sum(c - 1 for c in counts.values() if c > 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--kills", type=int, default=8)
    ap.add_argument("--records", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.runs):
            out = Path(tmp) / f"run{k}" / "out"
            out.parent.mkdir(parents=True)
            runs.append(one_run(out, args.records, args.kills, rng))
            print(runs[-1])
    result = {
        "runs": runs,
        "total_kills": sum(r["kills"] for r in runs),
        "lost": sum(r["lost"] for r in runs),
        "duplicated": sum(r["duplicated"] for r in runs),
        "all_exactly_once": all(r["lost"] == 0 and r["duplicated"] == 0 for r in runs),
    }
    print(write_result("generate_kill", result))
    if not result["all_exactly_once"]:
        raise SystemExit("a killed generation run lost or duplicated rows")


if __name__ == "__main__":
    main()

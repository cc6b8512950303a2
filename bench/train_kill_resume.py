"""Training kill/resume fault injection: a tiny training run (Q-Former dropout 0.1, LoRA with dropout
0.1, a checkpoint every step, one DataLoader worker) is SIGKILLed at random moments and resumed, many
times; its export must be bit-identical to an uninterrupted run and no DataLoader worker may outlive
the killed trainer. Writes bench/results/train_kill_resume.json.

    python bench/train_kill_resume.py                  # 5 runs x 4 kills (about 10 min on 2 cores)
    python bench/train_kill_resume.py --runs 20 --kills 6 --seed 1

CI runs two kills of one run: tests/train/test_train_kill.py (the same harness).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "train")]  # the tiny-model builders of the tests

from _machine import write_result  # noqa: E402
from kill_harness import kill_and_resume, run_to_end, write_recipe  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="killed runs, each compared with the reference")
    ap.add_argument("--kills", type=int, default=4, help="SIGKILLs per run, at random moments")
    ap.add_argument("--seed", type=int, default=0, help="seed of the kill moments (run i uses seed + i)")
    args = ap.parse_args()
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="desta-kill-") as tmp:
        root = Path(tmp)
        reference = root / "straight"
        run_to_end(write_recipe(root, reference), root / "straight.log")
        reports = []
        for i in range(args.runs):
            report = kill_and_resume(root, args.kills, args.seed + i, reference=reference)
            reports.append({"seed": args.seed + i, **dataclasses.asdict(report)})
            status = "identical" if report.identical else f"{len(report.differing)} tensors DIFFER"
            print(f"run {i + 1}/{args.runs}: kills after steps {report.kill_steps}: {status}, "
                  f"orphaned workers {report.orphaned_workers}", flush=True)  # fmt: skip
    exits = [s for r in reports for s in r["worker_exit_s"]]
    figures = {
        "runs": args.runs,
        "kills": sum(r["kills"] for r in reports),
        "identical_runs": sum(r["identical"] for r in reports),
        "orphaned_workers": sum(len(r["orphaned_workers"]) for r in reports),
        "max_worker_exit_s": max(exits, default=None),
        "wall_s": round(time.time() - t0, 1),
        "setup": "16 rows, 3 epochs x 4 steps, qformer_dropout 0.1, LoRA r16 dropout 0.1, save_every 1, "
        "1 DataLoader worker, 1 torch thread",
        "per_run": reports,
    }
    path = write_result("train_kill_resume", figures)
    print(f"{figures['identical_runs']}/{args.runs} runs identical after {figures['kills']} kills, "
          f"{figures['orphaned_workers']} orphaned workers -> {path}")  # fmt: skip
    ok = figures["identical_runs"] == args.runs and figures["orphaned_workers"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Instruction following of a `desta recipe tiny` run, per format check, with every answer side by side.

Reads the run's ``results.json`` and its samples files (``samples-<variant>.jsonl``, or
``samples-<variant>-instruction_following.jsonl`` where a run from before per-check scoring was
rescored by ``desta recipe tiny``); loads no model.

    python recipes/logs/desta-tiny/if_per_check.py runs/tiny4 > recipes/logs/desta-tiny/if-per-check.md
"""

import json
import sys
from pathlib import Path

from desta.train.tiny import if_check_lines

from desta.data.records import read_jsonl


def if_samples(run: Path, variant: str) -> list[dict]:
    for name in (f"samples-{variant}-instruction_following.jsonl", f"samples-{variant}.jsonl"):
        if (run / name).exists():
            return [s for s in read_jsonl(run / name) if s["probe"] == "instruction_following"]
    raise SystemExit(f"{run} has no samples for {variant}: rerun `desta recipe tiny --out {run}` with this version")


def main(run: Path) -> None:
    res = json.loads((run / "results.json").read_text())["results"]
    samples = {v: if_samples(run, v) for v in res}
    n = len(next(iter(samples.values())))
    print(f"# Instruction following per format check ({run.name}, {n} items)\n")
    print("Overall: " + ", ".join(f"{v} {res[v]['instruction_following']['rate']:.0%}" for v in res) + ".")
    print("\n".join(if_check_lines(res)))
    print("\n## Answers\n")
    for i in range(n):
        first = samples[next(iter(samples))][i]
        print(f"- **{first['check']}** ({first['id']}): {first['question']}")
        for v in samples:
            s = samples[v][i]
            print(f"  - {v} ({'pass' if s['correct'] else 'fail'}): {json.dumps(s['answer'])}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

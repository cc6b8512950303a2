"""Compare two `desta recipe tiny` runs: the data they generated and the held-out results per variant.

    python recipes/logs/desta-tiny/compare_runs.py runs/tiny3 runs/tiny3-repro
"""

import hashlib
import json
import sys
from pathlib import Path


def rows_digest(run: Path) -> tuple[int, str]:
    path = run / "self" / "train.jsonl"
    text = path.read_bytes() if path.exists() else b""
    return text.count(b"\n"), hashlib.sha256(text).hexdigest()[:12]


def results(run: Path) -> dict:
    out = {}
    for f in sorted(run.glob("eval-*.json")):
        v = f.stem[len("eval-"):]
        r = json.loads(f.read_text())
        out[v] = r.get("results", r)
    return out


def main(a: str, b: str) -> None:
    ra, rb = Path(a), Path(b)
    (na, da), (nb, db) = rows_digest(ra), rows_digest(rb)
    print(f"self-generated rows: {na} ({da}) vs {nb} ({db}): {'identical' if da == db else 'different'}\n")
    res_a, res_b = results(ra), results(rb)
    for v in sorted(set(res_a) & set(res_b)):
        if "perception" not in res_a[v]:
            continue
        print(f"### {v} targets\n\n| probe | {ra.name} | {rb.name} | difference (points) |\n|---|---|---|---|")
        for p in sorted(res_a[v]["perception"]):
            x = res_a[v]["perception"][p]["accuracy"]
            y = res_b[v]["perception"].get(p, {}).get("accuracy")
            n = res_a[v]["perception"][p]["n"]
            print(f"| {p} (n={n}) | {x:.0%} | {y:.0%} | {100 * (y - x):+.0f} |" if y is not None else f"| {p} | {x:.0%} | - | - |")
        ia, ib = res_a[v]["instruction_following"], res_b[v]["instruction_following"]
        x, y = ia["rate"], ib["rate"]
        print(f"| instruction following (n={ia['n']}) | {x:.0%} | {y:.0%} | {100 * (y - x):+.0f} |")
        for c in sorted(set(ia.get("per_check", {})) & set(ib.get("per_check", {}))):  # runs that recorded them
            x, y = ia["per_check"][c]["rate"], ib["per_check"][c]["rate"]
            print(f"| - {c} (n={ia['per_check'][c]['n']}) | {x:.0%} | {y:.0%} | {100 * (y - x):+.0f} |")
        print()


if __name__ == "__main__":
    main(*sys.argv[1:3])

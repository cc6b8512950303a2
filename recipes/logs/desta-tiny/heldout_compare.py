"""Compare models on the held-out suites: ``heldout_compare.py OUT.md NAME=SAMPLES.jsonl ...``.

Each SAMPLES file holds scored answers (``samples.jsonl`` of ``python -m desta.recipes.tiny.heldout_report``
or ``heldout-<variant>/samples.jsonl`` of the recipe); several files per model are joined with ``+``
(e.g. the real suite from the recipe run and the synthetic set from a separate run).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from desta.recipes.tiny.heldout_report import markdown, summarize


def main(argv: list[str]) -> int:
    out, specs = Path(argv[0]), argv[1:]
    summaries = {}
    for spec in specs:
        name, files = spec.split("=", 1)
        samples = [
            json.loads(line) for f in files.split("+") for line in Path(f).read_text().splitlines() if line
        ]
        summaries[name] = summarize(samples)
    out.write_text(markdown(summaries, "Held-out suites: " + " against ".join(summaries)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

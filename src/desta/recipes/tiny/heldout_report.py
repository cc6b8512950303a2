"""Summaries of held-out suite samples (:mod:`.heldout`): rates per set, task and class, confusion
tables, the exactly-one-option rate of multiple-choice answers, and the Markdown that shows them.

Run ``python -m desta.recipes.tiny.heldout_report MODEL --out DIR [--synthetic CORPUS]`` to answer
the suites with a model (``MODEL``: a model folder, or ``desta-tiny`` for the packaged one); it writes
``DIR/samples.jsonl``, ``DIR/summary.json`` and ``DIR/report.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from desta.errors import DeSTAError

GENDER_CLASSES = ("female", "male", "both", "none")


def _rate(xs: list[bool]) -> dict[str, Any]:
    return {"accuracy": sum(xs) / len(xs) if xs else 0.0, "n": len(xs)}


def summarize(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"per_set": {set: {task/format: rate}}, "per_class": ..., "confusion": ..., "mcq_one_option":
    ..., "content_recall": ...}`` over ``samples`` (the dicts :func:`.heldout.score_item` returns)."""
    per_set: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    per_class: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    confusion: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    one_option: dict[str, list[bool]] = defaultdict(list)
    recall: dict[str, list[float]] = defaultdict(list)
    for s in samples:
        key = f"{s['task']}/{s['format']}"
        per_set[s["set"]][key].append(bool(s["correct"]))
        group = "real" if s["set"] != "synthetic" else "synthetic"
        if s["task"] == "gender":
            per_class[group][f"{key} {s['gender'].lower()}"].append(bool(s["correct"]))
            confusion[group][f"gender/{s['format']}"][f"{s['gender'].lower()}->{s['predicted']}"] += 1
        elif s["task"] == "language":
            per_class[group][f"{key} {s['language']}"].append(bool(s["correct"]))
            confusion[group][f"language/{s['format']}"][f"{s['language']}->{s['predicted']}"] += 1
        if s["format"] == "mcq":
            one_option[s["set"]].append(s["n_chosen"] == 1)
        if "recall" in s:
            recall[s["set"]].append(s["recall"])
    return {
        "per_set": {k: {t: _rate(v) for t, v in sorted(d.items())} for k, d in sorted(per_set.items())},
        "per_class": {k: {t: _rate(v) for t, v in sorted(d.items())} for k, d in sorted(per_class.items())},
        "confusion": {g: {k: dict(sorted(c.items())) for k, c in d.items()} for g, d in confusion.items()},
        "mcq_one_option": {k: _rate(v) for k, v in sorted(one_option.items())},
        "content_recall": {k: {"mean": sum(v) / len(v), "n": len(v)} for k, v in sorted(recall.items())},
        "n_samples": len(samples),
    }


def _table(rows: list[list[str]], head: list[str]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + [
        "| " + " | ".join(r) + " |" for r in rows
    ]


def _pct(r: dict[str, Any]) -> str:
    return f"{100 * r['accuracy']:.0f}% (n={r['n']})"


def confusion_table(counts: dict[str, int]) -> list[str]:
    """``{"female->male": 3, ...}`` as a gold x predicted Markdown table."""
    gold = sorted({k.split("->")[0] for k in counts})
    pred = sorted({k.split("->")[1] for k in counts})
    rows = [[g] + [str(counts.get(f"{g}->{p}", 0)) for p in pred] for g in gold]
    return _table(rows, ["gold \\ answer", *pred])


def markdown(summaries: dict[str, dict[str, Any]], title: str, notes: str = "") -> str:
    """One section per model (``summaries``: model name -> :func:`summarize` output)."""
    lines = [f"# {title}", ""]
    if notes:
        lines += [notes.strip(), ""]
    names = list(summaries)
    sets = sorted({s for m in summaries.values() for s in m["per_set"]})
    lines += ["## Accuracy per set and question", ""]
    rows = []
    for st in sets:
        tasks = sorted({t for m in summaries.values() for t in m["per_set"].get(st, {})})
        for t in tasks:
            rows.append([st, t] + [_pct(summaries[n]["per_set"][st][t]) if t in summaries[n]["per_set"].get(st, {}) else "-" for n in names])  # fmt: skip
    lines += _table(rows, ["set", "question", *names]) + [""]
    lines += ["## Per class (female/male, each language)", ""]
    rows = []
    for group in ("real", "synthetic"):
        keys = sorted({k for m in summaries.values() for k in m["per_class"].get(group, {})})
        for k in keys:
            rows.append([group, k] + [_pct(summaries[n]["per_class"][group][k]) if k in summaries[n]["per_class"].get(group, {}) else "-" for n in names])  # fmt: skip
    lines += _table(rows, ["group", "question class", *names]) + [""]
    lines += ["## Multiple-choice answers that choose exactly one option", ""]
    rows = [[st] + [_pct(summaries[n]["mcq_one_option"][st]) if st in summaries[n]["mcq_one_option"] else "-" for n in names] for st in sets]  # fmt: skip
    lines += _table(rows, ["set", *names]) + [""]
    lines += ["## Content: mean word recall of the transcript in the open answer", ""]
    rows = [[st] + [f"{summaries[n]['content_recall'][st]['mean']:.2f} (n={summaries[n]['content_recall'][st]['n']})" if st in summaries[n]["content_recall"] else "-" for n in names] for st in sets if any(st in summaries[n]["content_recall"] for n in names)]  # fmt: skip
    lines += _table(rows, ["set", *names]) + [""]
    lines += ["## Confusion tables (gold -> what the answer states or chooses)", ""]
    for n in names:
        for group, tables in sorted(summaries[n]["confusion"].items()):
            for key, counts in sorted(tables.items()):
                lines += [f"**{n}, {group}, {key}**", ""] + confusion_table(counts) + [""]
    return "\n".join(lines) + "\n"


def examples(samples: list[dict[str, Any]], per: int = 2) -> list[dict[str, Any]]:
    """The first ``per`` samples of each set/task/format, to show answers next to the figures."""
    seen: Counter = Counter()
    out = []
    for s in samples:
        key = (s["set"], s["task"], s["format"])
        if seen[key] < per:
            seen[key] += 1
            out.append(s)
    return out


def heldout_summary(
    model,
    out: Path,
    *,
    real: bool = True,
    synthetic: Path | None = None,
    synthetic_clips: int = 20,
    per_gender: int = 24,
    max_new_tokens: int = 32,
    log=None,
) -> dict[str, Any]:
    """Answer the suites with ``model`` (resumable through ``out/answers.partial.jsonl``); writes
    ``out/samples.jsonl`` and returns :func:`summarize` of the answers plus ``"examples"``."""
    from desta.data.records import write_jsonl
    from desta.recipes.tiny.heldout import real_records, run_suite, suite_items, synthetic_records

    out.mkdir(parents=True, exist_ok=True)
    records = real_records(per_gender=per_gender) if real else []
    if synthetic is not None:
        if not (synthetic / "test.jsonl").is_file():
            raise DeSTAError(
                f"synthetic set {synthetic}: no test.jsonl there (build it with desta data synth)"
            )
        records += synthetic_records(synthetic, synthetic_clips)
    items = suite_items(records)
    if log:
        log(f"held-out suites: {len(records)} clips, {len(items)} questions")
    samples = run_suite(
        model, items, max_new_tokens=max_new_tokens, done=out / "answers.partial.jsonl", log=log
    )
    write_jsonl(out / "samples.jsonl", samples)
    return {**summarize(samples), "examples": examples(samples)}


def card_lines(summaries: dict[str, dict[str, Any]]) -> list[str]:
    """The model card's section on the real held-out suite (one column per model)."""
    body = markdown(summaries, "x").split("\n", 2)[2]  # without the title
    return [
        "",
        "## Held-out real recordings (people no training clip comes from)",
        "",
        "Debian `asterisk-core-sounds-{es,fr,it,ru}-wav` prompt voices (fr June, it Carlo, ru IvrvoiceRU;",
        "es Allison is the voice of the English prompts the corpus trains on, so her set is apart), plus the",
        "pocketsphinx and freedesktop files the corpus holds out. Each clip is asked its gender, language and",
        "(numbers, transcribed clips) content, open or as a lettered multiple-choice question; greedy decoding;",
        "`desta/recipes/tiny/heldout.py`.",
        "",
        *body.replace("\n## ", "\n### ").splitlines(),
    ]


def main(argv: list[str] | None = None) -> int:
    import torch

    import desta

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a model folder, or desta-tiny for the packaged model")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--synthetic", default="", help="a synth corpus folder whose test.jsonl is the synthetic set"
    )
    p.add_argument("--synthetic-clips", type=int, default=20)
    p.add_argument("--no-real", action="store_true", help="only the synthetic set")
    p.add_argument("--per-gender", type=int, default=24, help="real asterisk clips per gender")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-new-tokens", type=int, default=40)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    model = desta.load_model(None if args.model == "desta-tiny" else args.model)
    t = time.time()
    summary = heldout_summary(
        model,
        out,
        real=not args.no_real,
        synthetic=Path(args.synthetic) if args.synthetic else None,
        synthetic_clips=args.synthetic_clips,
        per_gender=args.per_gender,
        max_new_tokens=args.max_new_tokens,
        log=lambda m: print(m, flush=True),
    )
    summary["seconds"] = time.time() - t
    summary["model"] = args.model
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    (out / "report.md").write_text(markdown({args.model: summary}, f"Held-out suites: {args.model}"))
    print(f"done in {summary['seconds'] / 60:.1f} min: {out / 'report.md'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

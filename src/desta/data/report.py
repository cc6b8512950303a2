"""Run report of a generation output directory: ``report.json``, ``report.md`` and PNG histograms.

Counts kept rows per corpus, kind, instruction category and attribute value, rejects per stage and
reason (the last reject of each key only, and none for keys a later run answered, so retried
transient failures are not counted twice), and
plots the distributions of response length (words) and clip duration (seconds).
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from desta.data.pipeline import REJECTS, reason_class, shard_paths
from desta.data.records import read_jsonl
from desta.errors import DeSTAError

#: Attribute values with more distinct values than this are summarised (e.g. speaker ids, ages).
MAX_VALUES_PER_ATTRIBUTE = 30


def _histogram_png(values: list[float], path: Path, *, title: str, xlabel: str, bins: int = 40) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.hist(values, bins=bins, color="#4472c4", edgecolor="white")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("rows")
    fig.tight_layout()
    fig.savefig(path)


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    v = sorted(values)
    pick = lambda q: v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))]  # noqa: E731
    return {
        "count": len(v),
        "mean": round(sum(v) / len(v), 3),
        "min": v[0],
        "p50": pick(0.5),
        "p95": pick(0.95),
        "max": v[-1],
    }


def build_report(out_dir: str | os.PathLike, *, plots: bool = True) -> dict[str, Any]:
    """Read the shards and rejects of ``out_dir``; write ``report.json``/``report.md`` (+ PNGs); return the dict."""
    out = Path(out_dir)
    shards = shard_paths(out)
    if not shards and not (out / REJECTS).exists():
        raise DeSTAError(
            f"{out}: no shard-*.jsonl or {REJECTS}; is this a `desta data generate` output directory?"
        )
    corpus: Counter = Counter()
    kinds: Counter = Counter()
    categories: Counter = Counter()
    finish: Counter = Counter()
    tries: Counter = Counter()  # backend answers a kept row took (resampling and compound parts)
    attributes: dict[str, Counter] = defaultdict(Counter)
    lengths: list[float] = []
    durations: list[float] = []
    kept_keys: set[str] = set()
    for path in shards:
        for row in read_jsonl(path):
            meta = row.get("meta") or {}
            kept_keys.add(meta.get("key", ""))
            corpus[row.get("dataset", "")] += 1
            kinds[meta.get("kind", "")] += 1
            categories[meta.get("category", "")] += 1
            finish[meta.get("finish_reason", "")] += 1
            tries[int(meta.get("attempts", 1))] += 1
            for name, value in (meta.get("attributes") or {}).items():
                attributes[name][str(value)] += 1
            lengths.append(len(str(row.get("response", "")).split()))
            if meta.get("duration") is not None:
                durations.append(float(meta["duration"]))
    last_reject: dict[str, dict] = {}
    if (out / REJECTS).exists():
        for row in read_jsonl(out / REJECTS):
            last_reject[row.get("key", "")] = row
    for key in kept_keys & set(last_reject):  # a transient failure that a later run answered
        del last_reject[key]
    rej_reason: Counter = Counter(reason_class(r.get("reason", "")) for r in last_reject.values())
    rej_stage: Counter = Counter(r.get("stage", "") for r in last_reject.values())
    rej_corpus: Counter = Counter(r.get("dataset", "") for r in last_reject.values())
    attr_out: dict[str, Any] = {}
    for name, counts in sorted(attributes.items()):
        if len(counts) > MAX_VALUES_PER_ATTRIBUTE:
            attr_out[name] = {
                "distinct_values": len(counts),
                "rows": sum(counts.values()),
                "top": dict(counts.most_common(10)),
            }
        else:
            attr_out[name] = dict(counts.most_common())
    run_info = json.loads((out / "run.json").read_text()) if (out / "run.json").exists() else {}
    kept = sum(corpus.values())
    report: dict[str, Any] = {
        "out_dir": str(out),
        "backend": run_info.get("backend"),
        "model": run_info.get("model"),
        "kept": kept,
        "rejected": len(last_reject),
        "keep_rate": round(kept / (kept + len(last_reject)), 4) if kept + len(last_reject) else None,
        "shards": len(shards),
        "per_corpus": dict(corpus.most_common()),
        "per_kind": dict(kinds.most_common()),
        "per_category": dict(categories.most_common()),
        "finish_reason": dict(finish.most_common()),
        "answers_per_row": {str(k): tries[k] for k in sorted(tries)},
        "attributes": attr_out,
        "rejects_by_reason": dict(rej_reason.most_common()),
        "rejects_by_stage": dict(rej_stage.most_common()),
        "rejects_by_corpus": dict(rej_corpus.most_common()),
        "response_words": _stats(lengths),
        "duration_seconds": _stats(durations),
        "plots": [],
    }
    if plots and lengths:
        _histogram_png(lengths, out / "response_length.png", title="Response length", xlabel="words")
        report["plots"].append("response_length.png")
    if plots and durations:
        _histogram_png(durations, out / "duration.png", title="Clip duration", xlabel="seconds")
        report["plots"].append("duration.png")
    (out / "report.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (out / "report.md").write_text(render_markdown(report), encoding="utf-8")
    return report


def _table(title: str, counts: dict[str, Any], head: tuple[str, str] = ("value", "rows")) -> list[str]:
    if not counts:
        return []
    lines = [f"### {title}", "", f"| {head[0]} | {head[1]} |", "|---|---:|"]
    lines += [f"| {k or '(none)'} | {v} |" for k, v in counts.items()]
    return lines + [""]


def render_markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Self-generation run report",
        "",
        f"- Output: `{report['out_dir']}` ({report['shards']} shards)",
        f"- Backend: {report.get('backend')}, model: `{report.get('model')}`",
        f"- Kept rows: **{report['kept']}**, rejected requests: **{report['rejected']}**, keep rate: {report['keep_rate']}",
        f"- Response words: {report['response_words']}",
        f"- Clip duration (s): {report['duration_seconds']}",
        "",
    ]
    lines += _table("Rows per corpus", report["per_corpus"], ("corpus", "rows"))
    lines += _table("Rows per kind", report["per_kind"], ("kind", "rows"))
    lines += _table("Rows per instruction category", report["per_category"], ("category", "rows"))
    lines += _table("Backend answers per kept row (resampling, compound parts)", report["answers_per_row"], ("answers", "rows"))
    lines += _table("Rejects by reason", report["rejects_by_reason"], ("reason", "requests"))
    lines += _table("Rejects by stage", report["rejects_by_stage"], ("stage", "requests"))
    for name, counts in report["attributes"].items():
        if "distinct_values" in counts:
            lines += [
                f"### Attribute `{name}`",
                "",
                f"{counts['distinct_values']} distinct values over {counts['rows']} rows.",
                "",
            ]
        else:
            lines += _table(f"Attribute `{name}`", counts)
    for png in report["plots"]:
        lines += [f"![{png}]({png})", ""]
    return "\n".join(lines)

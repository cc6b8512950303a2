"""Markdown report and PNG bar charts for one scored task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from desta.eval.base import Scores, Task
from desta.eval.published import PublishedTable, published


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def comparable(scores: Scores, table: PublishedTable | None, task: Task | None = None) -> tuple[bool, str]:
    """Whether this run covers the split the published numbers are on (and why not)."""
    if table is None or not table.entries:
        return False, ""
    if not table.comparable:
        return False, "the published rows are not on one common protocol and subset (see the note)"
    scope = task.published_scope() if task is not None else None
    if scope:
        return False, scope
    run = scores.protocol.get("run") or {}
    n = int(scores.counts.get("items", 0))
    if run.get("limit") is not None or run.get("limit_per") is not None:
        return False, f"this run scores a sample of {n} items (--limit / --limit-per)"
    if table.n is not None and n != table.n:
        return False, f"this run scores {n} items; the published numbers are on all {table.n}"
    if table.compare_metric and table.compare_metric not in scores.metrics:
        return (
            False,
            f"the published numbers follow the protocol of {table.compare_metric!r}, which this run lacks",
        )
    return True, ""


def _header(scores: Scores) -> list[str]:
    run = scores.protocol.get("run") or {}
    lines = []
    if run.get("model"):
        lines.append(
            f"Model: `{run['model']}`" + (f"; decoding: `{run['decoding']}`" if run.get("decoding") else "")
        )
    elif run.get("rescore"):
        lines.append("Model: not recorded in the predictions file")
    if run.get("rescore"):
        lines.append(
            f"Rescored from {run.get('predictions_file') or 'predictions.jsonl'} ({run.get('predictions_format')})"
        )
    if run.get("limit") is not None or run.get("limit_per") is not None:
        lines.append(
            f"Stratified sample: --limit {run.get('limit')} --limit-per {run.get('limit_per')} (seed {run.get('sample_seed')})"
        )
    return [x for line in lines for x in (line, "")]


def markdown_report(
    scores: Scores, task: Task, table: PublishedTable | None, model: str | None = None
) -> str:
    """The report text: metrics, counts, one table per breakdown key, comparison with published numbers."""
    lines = [f"# {scores.task} ({scores.version})", ""]
    header = _header(scores)
    lines += header or ([f"Model: `{model}`", ""] if model else [])
    n_items = scores.counts.get("items", "")
    lines += ["| metric | value | n |", "|---|---|---|"]
    lines += [f"| {k} | {_fmt(v)} | {n_items} |" for k, v in scores.metrics.items()]
    for prefix, note in (scores.protocol.get("unofficial_metrics") or {}).items():
        lines += ["", f"`{prefix}*`: {note}"]
    lines += ["", "## Counts", "", "| count | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in scores.counts.items()]
    same_split, why_not = comparable(scores, table, task)
    for key, cats in scores.breakdown.items():
        lines += ["", f"## By {key}", ""]
        cols = [
            e
            for e in (table.entries if table and same_split else ())
            if _published_key(key, table) in e.breakdown
        ]
        pkey = _published_key(key, table)
        lines.append("| " + " | ".join([key, "n", "ours", *(e.model for e in cols)]) + " |")
        lines.append("|" + "---|" * (3 + len(cols)))
        for cat, rec in cats.items():
            pub = [_fmt(e.breakdown[pkey][cat]) if cat in e.breakdown[pkey] else "-" for e in cols]
            lines.append("| " + " | ".join([cat, str(int(rec["n"])), _fmt(float(rec["score"])), *pub]) + " |")
    if table and table.entries:
        lines += _published_section(scores, task, table, same_split, why_not)
    judge = scores.protocol.get("judge_run")
    if judge and judge.get("substituted"):
        lines += [
            "",
            f"**Judge substituted**: {judge['models']} (official -> used); a substitute for the official judge, "
            "not comparable to official numbers.",
        ]
    lines += ["", "## Protocol", "", "```", _protocol_text(scores.protocol), "```", ""]
    return "\n".join(lines)


def _published_key(key: str, table: PublishedTable | None) -> str | None:
    """The published breakdown key that our breakdown ``key`` may be compared with (None: none)."""
    if table is None:
        return None
    if table.compare_breakdown:
        suffix = f" ({table.compare_breakdown})"
        return key.removesuffix(suffix) if key.endswith(suffix) else None
    return key


def _published_section(
    scores: Scores, task: Task, table: PublishedTable, same_split: bool, why_not: str
) -> list[str]:
    metric = table.compare_metric or task.PRIMARY
    ours = scores.metrics.get(metric)
    n = scores.counts.get("items", "")
    lines = ["", "## Published numbers", "", table.note + (f" (n = {table.n})" if table.n else ""), ""]
    if not same_split or ours is None:
        reason = why_not or f"this run has no {metric!r}"
        lines += [f"Not compared: {reason}. Published figures for reference:", ""]
        lines += ["| model | " + table.metric + " | n | source |", "|---|---|---|---|"]
        lines += [f"| {e.model} | {_fmt(e.score)} | {table.n or '-'} | {e.source} |" for e in table.entries]
        return lines
    lines += [f"Compared metric: `{metric}`.", ""]
    lines += ["| model | " + table.metric + " | n | ours − published | source |", "|---|---|---|---|---|"]
    lines.append(f"| **this run** | **{_fmt(float(ours))}** | {n} | - | this report |")
    for e in table.entries:
        lines.append(
            f"| {e.model} | {_fmt(e.score)} | {table.n or '-'} | {_fmt(float(ours) - e.score)} | {e.source} |"
        )
    return lines


def _protocol_text(protocol: Any, indent: int = 0) -> str:
    out = []
    for k, v in (protocol or {}).items():
        if isinstance(v, dict):
            out.append(" " * indent + f"{k}:")
            out.append(_protocol_text(v, indent + 2))
        else:
            out.append(
                " " * indent + f"{k}: {v!r}"
                if isinstance(v, str) and "\n" in v
                else " " * indent + f"{k}: {v}"
            )
    return "\n".join(x for x in out if x)


def bar_charts(scores: Scores, task: Task, table: PublishedTable | None, out_dir: Path) -> list[Path]:
    """One PNG per breakdown key plus one comparison with published numbers; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for key, cats in scores.breakdown.items():
        names = list(cats)
        values = [float(cats[c]["score"]) for c in names]
        fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(names) + 2), 3.5))
        ax.bar(range(len(names)), values, color="#4c72b0")
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{scores.task} by {key}")
        ax.set_ylabel(task.PRIMARY)
        fig.tight_layout()
        path = out_dir / f"{_slug(scores.task)}_by_{_slug(key)}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    metric = (table.compare_metric if table else None) or task.PRIMARY
    ours = scores.metrics.get(metric)
    if table and table.entries and ours is not None and comparable(scores, table, task)[0]:
        names = ["this run"] + [e.model for e in table.entries]
        values = [float(ours)] + [e.score for e in table.entries]
        fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(names) + 2), 3.5))
        ax.bar(range(len(names)), values, color=["#dd8452"] + ["#4c72b0"] * (len(names) - 1))
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{scores.task}: {table.metric} vs published")
        fig.tight_layout()
        path = out_dir / f"{_slug(scores.task)}_vs_published.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


def write_report(scores: Scores, task: Task, out_dir: Path, plots: bool = True) -> Path:
    table = published(task.PUBLISHED_KEY) if task.PUBLISHED_KEY else None
    model = (scores.protocol.get("run") or {}).get("model")
    path = out_dir / "report.md"
    text = markdown_report(scores, task, table, str(model) if model else None)
    if plots:
        images = bar_charts(scores, task, table, out_dir)
        text += "\n" + "\n".join(f"![{p.stem}]({p.name})" for p in images) + "\n"
    path.write_text(text, encoding="utf-8")
    return path

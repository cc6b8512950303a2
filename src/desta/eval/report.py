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


def markdown_report(
    scores: Scores, task: Task, table: PublishedTable | None, model: str | None = None
) -> str:
    """The report text: metrics, counts, one table per breakdown key, comparison with published numbers."""
    lines = [f"# {scores.task} ({scores.version})", ""]
    if model:
        lines += [f"Model: `{model}`", ""]
    lines += ["| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in scores.metrics.items()]
    lines += ["", "## Counts", "", "| count | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in scores.counts.items()]
    for key, cats in scores.breakdown.items():
        lines += ["", f"## By {key}", ""]
        cols = [e for e in (table.entries if table else ()) if key in e.breakdown]
        header = "| " + key + " | n | ours | " + " | ".join(e.model for e in cols) + " |"
        lines += [header.replace("|  |", "|"), "|" + "---|" * (3 + len(cols))]
        for cat, rec in cats.items():
            pub = [_fmt(e.breakdown[key].get(cat, "")) for e in cols]
            lines.append(
                f"| {cat} | {int(rec['n'])} | {_fmt(float(rec['score']))} | " + " | ".join(pub) + " |"
            )
    if table and table.entries:
        ours = scores.metrics.get(task.PRIMARY)
        lines += ["", "## Published numbers", "", f"{table.note}", ""]
        lines += ["| model | " + table.metric + " | ours − published | source |", "|---|---|---|---|"]
        if ours is not None:
            lines.append(f"| **this run** | **{_fmt(float(ours))}** | | |")
        for e in table.entries:
            diff = _fmt(float(ours) - e.score) if ours is not None else ""
            lines.append(f"| {e.model} | {_fmt(e.score)} | {diff} | {e.source} |")
    judge = scores.protocol.get("judge_run")
    if judge and judge.get("substituted"):
        lines += [
            "",
            f"**Judge substituted**: {judge['models']} (official -> used); not comparable to official numbers.",
        ]
    lines += ["", "## Protocol", "", "```", _protocol_text(scores.protocol), "```", ""]
    return "\n".join(lines)


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
    ours = scores.metrics.get(task.PRIMARY)
    if table and table.entries and ours is not None:
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

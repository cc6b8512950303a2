"""Run a task: predictions first (JSONL, resumable), then scores, report and plots.

Output folder::

    OUT/predictions.jsonl   one line per attempt: {"id", "response", "error", "model"}
    OUT/judgments.jsonl     judge cache (tasks scored by an LLM judge)
    OUT/scores.json         metrics, breakdown, counts, protocol, run settings, per-item details
    OUT/report.md           Markdown tables + comparison with published numbers
    OUT/*.png               bar charts

A killed run resumes where it stopped: ids with a response are skipped, failed ids are tried again, a
last line cut in half is ignored. ``rescore`` skips the model entirely.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desta.eval.base import EvalError, Item, Scores, Task
from desta.eval.judge import Judge
from desta.eval.predictors import Predictor

PREDICTIONS = "predictions.jsonl"
SCORES = "scores.json"


@dataclass(frozen=True)
class RunOptions:
    """limit: first N items only; batch_size: conversations per predictor call; rescore: no model calls;
    text_only: render items with `Task.text_prompt` (text-LLM reference runs); plots: write PNG charts."""

    limit: int | None = None
    batch_size: int = 1
    rescore: bool = False
    text_only: bool = False
    plots: bool = True
    progress: bool = True


@dataclass(frozen=True)
class PredictionFile:
    """responses: id -> text (None when the last attempt failed); errors: id -> message; corrupt: lines
    that could not be parsed (a write cut by a kill)."""

    responses: dict[str, str | None]
    errors: dict[str, str]
    corrupt: int


def read_predictions(path: str | os.PathLike) -> PredictionFile:
    """Read a predictions JSONL; a later success for an id overrides an earlier failure."""
    responses: dict[str, str | None] = {}
    errors: dict[str, str] = {}
    corrupt = 0
    p = Path(path)
    if not p.exists():
        return PredictionFile({}, {}, 0)
    for line in p.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            item_id = str(rec["id"])
        except (ValueError, KeyError, TypeError):
            corrupt += 1
            continue
        response = rec.get("response")
        if response is None:
            if responses.get(item_id) is None:
                responses[item_id] = None
                errors[item_id] = str(rec.get("error") or "no response")
        else:
            responses[item_id] = str(response)
            errors.pop(item_id, None)
    return PredictionFile(responses, errors, corrupt)


def _append(path: Path, records: Sequence[dict[str, Any]]) -> None:
    """Append records durably; a last line cut by a kill is closed first so it stays one bad line."""
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            cut = f.read(1) != b"\n"
        if cut:
            with open(path, "a", encoding="utf-8") as f:
                f.write("\n")
    with open(path, "a", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def predict_items(
    items: Sequence[Item],
    render: Callable[[Item], list[dict[str, Any]]],
    predictor: Predictor,
    path: Path,
    batch_size: int = 1,
    progress: bool = True,
) -> dict[str, int]:
    """Generate a response for every item not yet answered in ``path``; returns counts."""
    done = {k for k, v in read_predictions(path).responses.items() if v is not None}
    todo = [it for it in items if it.id not in done]
    counts = {"skipped_done": len(items) - len(todo), "generated": 0, "failed": 0}
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc=f"predict {predictor.name}", unit="item")
    for start in range(0, len(todo), max(1, batch_size)):
        batch = todo[start : start + max(1, batch_size)]
        records = _predict_batch(batch, render, predictor)
        _append(path, records)
        for rec in records:
            counts["failed" if rec["response"] is None else "generated"] += 1
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()
    return counts


def _predict_batch(
    batch: Sequence[Item], render: Callable[[Item], list[dict[str, Any]]], predictor: Predictor
) -> list[dict[str, Any]]:
    def record(item: Item, response: str | None, error: str | None) -> dict[str, Any]:
        return {"id": item.id, "response": response, "error": error, "model": predictor.name}

    try:
        texts = predictor.predict([render(it) for it in batch])
        if len(texts) != len(batch):
            raise EvalError(f"predictor returned {len(texts)} responses for {len(batch)} conversations")
        return [record(it, t, None) for it, t in zip(batch, texts)]
    except Exception as batch_error:  # one bad item must not sink the batch: retry one by one
        if len(batch) == 1:
            return [record(batch[0], None, f"{type(batch_error).__name__}: {batch_error}")]
    out = []
    for it in batch:
        try:
            out.append(record(it, predictor.predict([render(it)])[0], None))
        except Exception as err:
            out.append(record(it, None, f"{type(err).__name__}: {err}"))
    return out


def evaluate(
    task: Task,
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    predictor: Predictor | None = None,
    judge: Judge | None = None,
    options: RunOptions = RunOptions(),
    reference_scores: str | os.PathLike | None = None,
) -> Scores:
    """Predict (unless rescoring), score, and write scores.json, report.md and plots into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    items = task.load(data_dir)
    if options.limit is not None:
        items = items[: options.limit]
    pred_path = out / PREDICTIONS
    run_counts: dict[str, int] = {}
    if not options.rescore:
        if predictor is None:
            raise EvalError(
                "no model: pass --model NAME or --endpoint URL, or --rescore to score existing predictions"
            )
        render = task.text_prompt if options.text_only else task.prompt
        run_counts = predict_items(items, render, predictor, pred_path, options.batch_size, options.progress)
    elif not pred_path.exists():
        raise EvalError(f"--rescore needs {pred_path}; run the model first")
    preds = read_predictions(pred_path)
    if reference_scores is not None and hasattr(task, "set_reference"):
        task.set_reference(json.loads(Path(reference_scores).read_text(encoding="utf-8")))
    scores = task.score(items, preds.responses, judge)
    counts = dict(scores.counts)
    counts["corrupt_prediction_lines"] = preds.corrupt
    extra_ids = len(set(preds.responses) - {it.id for it in items})
    counts["unknown_prediction_ids"] = extra_ids
    protocol = dict(scores.protocol)
    if judge is not None:
        protocol["judge_run"] = judge.stamp
    protocol["run"] = {
        "model": getattr(predictor, "name", None) if predictor else _models_in(pred_path),
        "decoding": getattr(predictor, "settings", None) if predictor else None,
        "text_only": options.text_only,
        "limit": options.limit,
        "prediction_counts": run_counts,
        "prediction_errors": dict(list(preds.errors.items())[:20]),
    }
    scores = Scores(
        scores.task, scores.version, scores.metrics, scores.breakdown, counts, protocol, scores.details
    )
    if hasattr(task, "export"):
        protocol["export"] = str(task.export(items, preds.responses, out))
        scores = Scores(
            scores.task, scores.version, scores.metrics, scores.breakdown, counts, protocol, scores.details
        )
    (out / SCORES).write_text(json.dumps(scores.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
    from desta.eval.report import write_report

    write_report(scores, task, out, plots=options.plots)
    return scores


def _models_in(path: Path) -> list[str]:
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            names.add(str(json.loads(line).get("model")))
        except (ValueError, AttributeError):
            continue
    return sorted(names)

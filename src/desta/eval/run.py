"""Run a task: predictions first (JSONL, resumable), then scores, report and plots.

Output folder::

    OUT/predictions.jsonl   one line per attempt (see `desta.eval.prediction_io`)
    OUT/run.json            model, decoding and fingerprint of the predictions
    OUT/judgments.jsonl     judge cache (tasks scored by an LLM judge)
    OUT/scores.json         metrics, breakdown, counts, protocol, run settings, per-item details
    OUT/report.md           Markdown tables + comparison with published numbers
    OUT/*.png               bar charts

A killed run resumes where it stopped: ids with a response are skipped, failed ids are tried again, a
last line cut in half is ignored. Predictions made by another model or decoding setup are never mixed
in (the fingerprint differs: the run stops and says so). ``rescore`` skips the model entirely and
needs no audio; ``predictions`` names a file in desta's or a benchmark's own format.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desta.endpoints import EndpointUnavailableError
from desta.eval.base import EvalError, Item, JudgeUnavailableError, Scores, Task
from desta.eval.judge import Judge
from desta.eval.prediction_io import (
    PREDICTIONS,
    append_records,
    read_predictions,
    read_run_info,
    run_fingerprint,
    write_run_info,
)
from desta.eval.predictors import Predictor
from desta.eval.sampling import SampleOptions, stratified_sample

SCORES = "scores.json"
__all__ = ["RunOptions", "evaluate", "predict_items", "read_predictions", "PREDICTIONS", "SCORES"]


@dataclass(frozen=True)
class RunOptions:
    """limit / limit_per / seed: stratified sample (`desta.eval.sampling`); batch_size: conversations
    per predictor call; rescore: no model calls, no audio; predictions: the file to rescore (default
    OUT/predictions.jsonl); text_only: render items with `Task.text_prompt`; plots: PNG charts."""

    limit: int | None = None
    limit_per: int | None = None
    seed: int = 0
    batch_size: int = 1
    rescore: bool = False
    predictions: str | None = None
    text_only: bool = False
    plots: bool = True
    progress: bool = True


def describe_run(task: Task, predictor: Predictor, text_only: bool) -> dict[str, Any]:
    """What makes predictions comparable; its hash is the fingerprint stored with every line."""
    desc = {
        "task": task.NAME,
        "task_version": task.VERSION,
        "model": predictor.name,
        "decoding": predictor.settings,
        "text_only": text_only,
    }
    return {**desc, "fingerprint": run_fingerprint(desc)}


def check_reusable(path: Path, run: Mapping[str, Any], info: Mapping[str, Any] | None) -> None:
    """Refuse to add to a predictions file made by another model / decoding setup."""
    existing = read_predictions(path)
    if not existing.responses:
        return
    other = [f for f in existing.fingerprints if f != run["fingerprint"]]
    other_models = [m for m in existing.models if m != run["model"]]
    if other or (not existing.fingerprints and other_models):
        was = info or {"model": ", ".join(existing.models), "fingerprint": ", ".join(existing.fingerprints)}
        raise EvalError(
            f"{path} holds predictions of another setup (model {was.get('model')!r}, decoding "
            f"{was.get('decoding')}, fingerprint {was.get('fingerprint')}); this run is model "
            f"{run['model']!r}, decoding {run['decoding']}, fingerprint {run['fingerprint']}. "
            "Use another --out folder, or delete the file to start over."
        )


def predict_items(
    items: Sequence[Item],
    render: Callable[[Item], list[dict[str, Any]]],
    predictor: Predictor,
    path: Path,
    batch_size: int = 1,
    progress: bool = True,
    postprocess: Callable[[str, Item], str | None] | None = None,
    fingerprint: str | None = None,
) -> dict[str, int]:
    """Generate a response for every item not yet answered in ``path``; returns counts."""
    done = {k for k, v in read_predictions(path).responses.items() if v is not None}
    todo = [it for it in items if it.id not in done]
    counts = {"skipped_done": len(items) - len(todo), "generated": 0, "failed": 0}
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc=f"predict {predictor.name}", unit="item")
    step = max(1, batch_size)
    for start in range(0, len(todo), step):
        batch = todo[start : start + step]
        records = _predict_batch(batch, render, predictor)
        by_id = {it.id: it for it in batch}
        for rec in records:
            rec["fingerprint"] = fingerprint
            if postprocess is not None and rec["response"] is not None:
                answer = postprocess(rec["response"], by_id[rec["id"]])
                if answer is not None:
                    rec["answer"] = answer
            counts["failed" if rec["response"] is None else "generated"] += 1
        append_records(path, records)
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
    except EndpointUnavailableError as err:  # no item can succeed: stop instead of failing them all
        raise EvalError(f"the model endpoint cannot serve: {err}") from err
    except Exception as batch_error:  # one bad item must not sink the batch: retry one by one
        if len(batch) == 1:
            return [record(batch[0], None, f"{type(batch_error).__name__}: {batch_error}")]
    out = []
    for it in batch:
        try:
            out.append(record(it, predictor.predict([render(it)])[0], None))
        except EndpointUnavailableError as err:
            raise EvalError(f"the model endpoint cannot serve: {err}") from err
        except Exception as err:
            out.append(record(it, None, f"{type(err).__name__}: {err}"))
    return out


def _require_judge_first(task: Task, judge: Judge | None, items: Sequence[Item]) -> None:
    """A judged task fails here, before any generation, when no judge is configured or it is unusable."""
    if not task.needs_judge(items):
        return
    if judge is None:
        raise JudgeUnavailableError(
            f"{task.NAME} is scored by an LLM judge: pass --judge-endpoint URL (any OpenAI-compatible "
            "server, e.g. a local vLLM or `desta serve`) and --judge-model NAME. Checked before generating."
        )
    judge.check(task.JUDGE_MODEL)


def load_metadata(task: Task, data_dir: str | os.PathLike) -> list[Item]:
    """The task's items without checking that audio exists (rescoring needs none)."""
    import inspect

    if "check_audio" in inspect.signature(task.load).parameters:
        return task.load(data_dir, check_audio=False)
    raise EvalError(
        f"{task.NAME} cannot load its metadata without audio yet; rescore its outputs with --data next to "
        "the audio, or use its published output format"
    )


def _items_and_predictions(
    task: Task, data_dir: str | os.PathLike | None, out: Path, options: RunOptions
) -> tuple[list[Item], Any]:
    """Items (sampled) and, when rescoring, the predictions to score."""
    rescore_input = None
    if options.rescore:
        from desta.eval.formats import read_rescore_input

        source = Path(options.predictions) if options.predictions else out / PREDICTIONS
        if not source.exists():
            hint = "no such file" if options.predictions else "run the model first or pass --predictions FILE"
            raise EvalError(f"--rescore needs {source}: {hint}")
        rescore_input = read_rescore_input(task, source)
        items = rescore_input.items
        if items is None:
            if data_dir is None:
                lacks = rescore_input.missing_metadata
                what = f" (its records lack {', '.join(map(repr, lacks))})" if lacks else ""
                raise EvalError(
                    f"{source} ({rescore_input.format}) has no benchmark metadata{what}: pass --data DIR"
                )
            items = load_metadata(task, data_dir)
    else:
        if data_dir is None:
            raise EvalError("--data DIR is needed to run the model")
        items = task.load(data_dir)
    key = task.STRATUM or next((k for it in items[:1] for k in it.groups), None)
    sample = SampleOptions(options.limit, options.limit_per, key, options.seed)
    return stratified_sample(items, sample), rescore_input


def evaluate(
    task: Task,
    data_dir: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    predictor: Predictor | None = None,
    judge: Judge | None = None,
    options: RunOptions = RunOptions(),
    reference_scores: str | os.PathLike | None = None,
) -> Scores:
    """Predict (unless rescoring), score, and write scores.json, report.md and plots into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    items, rescore_input = _items_and_predictions(task, data_dir, out, options)
    _require_judge_first(task, judge, items)
    pred_path = out / PREDICTIONS
    run_counts: dict[str, int] = {}
    run: dict[str, Any] = {}
    if not options.rescore:
        if predictor is None:
            raise EvalError(
                "no model: pass --model NAME or --endpoint URL, or --rescore to score existing predictions"
            )
        run = describe_run(task, predictor, options.text_only)
        check_reusable(pred_path, run, read_run_info(out))
        write_run_info(out, run)
        render = task.text_prompt if options.text_only else task.prompt
        run_counts = predict_items(
            items,
            render,
            predictor,
            pred_path,
            options.batch_size,
            options.progress,
            task.postprocess,
            run["fingerprint"],
        )
        preds = read_predictions(pred_path)
        responses, answers, errors, corrupt, fmt = (
            preds.responses,
            preds.answers,
            preds.errors,
            preds.corrupt,
            "desta",
        )
        _fail_if_all_failed(items, responses, errors)
    else:
        responses, answers = rescore_input.responses, dict(rescore_input.answers or {})
        errors, corrupt, fmt = {}, rescore_input.corrupt, rescore_input.format
        run = {"model": rescore_input.model, "decoding": rescore_input.decoding}
        if not any(it.id in responses for it in items):
            raise EvalError(
                f"none of the {len(items)} item ids of {task.NAME} is in the predictions "
                f"(e.g. ours {[it.id for it in items[:3]]}, file {list(responses)[:3]})"
            )
    answers, answers_note = _answers_for(task, items, responses, answers, fmt)
    if reference_scores is not None and hasattr(task, "set_reference"):
        task.set_reference(json.loads(Path(reference_scores).read_text(encoding="utf-8")))
    if answers_note:
        scores = task.score(items, responses, judge, answers)
    else:
        scores = task.score(items, responses, judge)
    return _finish(
        task,
        scores,
        items,
        responses,
        answers,
        out,
        judge,
        options,
        run,
        run_counts,
        errors,
        corrupt,
        fmt,
        answers_note,
    )


def _answers_for(
    task: Task,
    items: Sequence[Item],
    responses: Mapping[str, str | None],
    stored: Mapping[str, str],
    fmt: str,
) -> tuple[dict[str, str], str | None]:
    """Post-processed answers for tasks whose prediction step makes them (None note: the task has none)."""
    probe = next((it for it in items if responses.get(it.id) is not None), None)
    if probe is None or task.postprocess(str(responses[probe.id]), probe) is None:
        return {}, None
    answers = dict(stored)
    if fmt == "desta":  # files written before the answer field existed: run the prediction step now
        redone = {
            it.id: task.postprocess(str(responses[it.id]), it)
            for it in items
            if responses.get(it.id) is not None and it.id not in answers
        }
        answers.update({k: v for k, v in redone.items() if v is not None})
        return answers, "stored with the predictions" + (f" ({len(redone)} recomputed)" if redone else "")
    return answers, "from the file's model_prediction field" if answers else "none in the file"


def _fail_if_all_failed(
    items: Sequence[Item], responses: Mapping[str, str | None], errors: Mapping[str, str]
) -> None:
    if items and all(responses.get(it.id) is None for it in items):
        first = next((errors[it.id] for it in items if it.id in errors), "no response recorded")
        raise EvalError(f"every one of the {len(items)} items failed to generate; first error: {first}")


def _finish(
    task: Task,
    scores: Scores,
    items: Sequence[Item],
    responses: Mapping[str, str | None],
    answers: Mapping[str, str],
    out: Path,
    judge: Judge | None,
    options: RunOptions,
    run: Mapping[str, Any],
    run_counts: Mapping[str, int],
    errors: Mapping[str, str],
    corrupt: int,
    fmt: str,
    answers_note: str | None,
) -> Scores:
    counts = dict(scores.counts)
    counts["corrupt_prediction_lines"] = corrupt
    counts["unknown_prediction_ids"] = len(set(responses) - {it.id for it in items})
    protocol = dict(scores.protocol)
    if judge is not None:
        protocol["judge_run"] = judge.stamp
    protocol["run"] = {
        "model": run.get("model"),
        "decoding": run.get("decoding"),
        "fingerprint": run.get("fingerprint"),
        "predictions_format": fmt,
        "predictions_file": options.predictions,
        "rescore": options.rescore,
        "text_only": options.text_only,
        "limit": options.limit,
        "limit_per": options.limit_per,
        "sample_seed": options.seed,
        "prediction_counts": dict(run_counts),
        "prediction_errors": dict(list(errors.items())[:20]),
    }
    if answers_note:
        protocol["run"]["postprocessed_answers"] = answers_note
    if hasattr(task, "export"):
        export = (
            task.export(items, responses, out, answers)
            if answers_note
            else task.export(items, responses, out)
        )
        protocol["export"] = str(export)
    scores = Scores(
        scores.task, scores.version, scores.metrics, scores.breakdown, counts, protocol, scores.details
    )
    (out / SCORES).write_text(json.dumps(scores.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
    from desta.eval.report import write_report

    write_report(scores, task, out, plots=options.plots)
    return scores

"""Predictions written by other toolkits, read for ``desta eval TASK --rescore --predictions FILE``.

Formats (detected from the file and the task):

* desta's ``predictions.jsonl`` (lines with only ``id``/``response``/``error``/``model``/
  ``fingerprint``/``answer``);
* MMAU / MMAR submission JSON (or JSONL): the metadata records with ``model_output`` (MMAU) or
  ``answer_prediction`` (MMAR), optionally ``model_prediction`` (DeSTA2.5's post-processed answer);
  the records carry the questions, choices and answers, so no metadata folder is needed;
* VoiceBench output ``{model}-{subset}-{split}-{modality}.jsonl`` (dataset fields + ``response``);
* AIR-Bench ``Foundation_result_*.jsonl`` (meta fields + ``response``);
* Speech-IFEval ``outputs/<model>/<part file>.jsonl`` (``id`` + ``response``; ids become
  ``<part>/<id>``; the items come from ``--data``);
* any other JSONL with ``id`` and ``response`` per line, handed to the task's
  ``predictions_from_output`` where it has one.

None of them needs audio.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desta.eval.base import DataLayoutError, EvalError, Item, Task
from desta.eval.prediction_io import read_predictions, read_run_info

DESTA_KEYS = frozenset({"id", "response", "error", "model", "fingerprint", "answer"})
MAX_FILE_BYTES = 512 * 1024**2  # read whole into memory: a predictions file is far smaller than this


@dataclass(frozen=True)
class RescoreInput:
    """items: None when the file does not carry the benchmark's metadata (then ``--data`` is read);
    answers: post-processed answers where the file has them; model/decoding: what produced it."""

    format: str
    responses: dict[str, str | None]
    items: list[Item] | None = None
    answers: dict[str, str] | None = None
    model: str | None = None
    decoding: Any = None
    corrupt: int = 0
    missing_metadata: tuple[str, ...] = ()  # metadata fields the file's records lack (items is then None)


def _records(path: Path) -> tuple[list[dict[str, Any]], int]:
    if not path.is_file():
        raise EvalError(f"--predictions {path}: no such file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise EvalError(
            f"--predictions {path}: {path.stat().st_size} bytes is too large for a predictions file"
        )
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except ValueError as err:
            raise EvalError(f"--predictions {path}: not valid JSON ({err})") from err
        if not all(isinstance(r, dict) for r in data):
            raise EvalError(f"--predictions {path}: expected a JSON list of objects")
        return data, 0
    records, corrupt = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            corrupt += 1
            continue
        if isinstance(rec, dict):
            records.append(rec)
        else:
            corrupt += 1
    if not records:
        raise EvalError(f"--predictions {path}: no JSON records found")
    return records, corrupt


def voicebench_file_parts(path: Path, subsets: Sequence[str]) -> tuple[str, str, str]:
    """(model, subset, split) from ``{model}-{subset}-{split}-{modality}.jsonl``."""
    stem = path.name.removesuffix(".jsonl")
    for subset in sorted(subsets, key=len, reverse=True):
        marker = f"-{subset}-"
        at = stem.rfind(marker)
        if at > 0:
            rest = stem[at + len(marker) :].split("-")
            split = "-".join(rest[:-1]) if len(rest) > 1 else rest[0]
            return stem[:at], subset, split
    raise EvalError(
        f"--predictions {path}: a VoiceBench output is named {{model}}-{{subset}}-{{split}}-{{modality}}.jsonl "
        f"with a subset among {sorted(subsets)}"
    )


def read_rescore_input(task: Task, path: str | os.PathLike) -> RescoreInput:
    """Read ``path`` in whichever published format it is, for ``task``."""
    from desta.eval.tasks.air_bench_foundation import AIRBenchFoundation
    from desta.eval.tasks.multiple_choice import MultipleChoiceTask
    from desta.eval.tasks.voicebench import EVALUATOR, VoiceBench

    p = Path(path)
    records, corrupt = _records(p)
    from desta.eval.tasks.speech_ifeval import PARTS, SpeechIFEval

    # a Speech-IFEval output file has only id + response lines too: its file name tells it apart
    speech_output = isinstance(task, SpeechIFEval) and p.name in PARTS.values()
    if not speech_output and all(set(r) <= DESTA_KEYS and "id" in r for r in records):
        preds = read_predictions(p)
        info = read_run_info(p.parent) or {}
        model = info.get("model") or (", ".join(preds.models) if preds.models else None)
        return RescoreInput(
            "desta", preds.responses, None, preds.answers or None, model, info.get("decoding"), preds.corrupt
        )
    if isinstance(task, MultipleChoiceTask):
        return _multiple_choice(task, p, records, corrupt)
    if isinstance(task, VoiceBench):
        model, subset, split = voicebench_file_parts(p, list(EVALUATOR))
        if task.subsets and subset not in task.subsets:
            raise EvalError(f"--predictions {p} is VoiceBench subset {subset!r}, not {list(task.subsets)}")
        items, preds = task.items_from_output(records, subset, split)
        return RescoreInput("voicebench-output", preds, items, None, model, None, corrupt)
    if isinstance(task, AIRBenchFoundation):
        try:
            items, preds = task.items_from_output(records)
        except KeyError as err:
            raise DataLayoutError(f"--predictions {p}: AIR-Bench result lines need {err}") from err
        return RescoreInput("air-bench-result", preds, items, None, None, None, corrupt)
    if speech_output:
        part = next(k for k, v in PARTS.items() if v == p.name)
        if any("id" not in r or "response" not in r for r in records):
            raise EvalError(f"--predictions {p}: Speech-IFEval output lines need 'id' and 'response'")
        preds = {
            f"{part}/{r['id']}": (None if r["response"] is None else str(r["response"])) for r in records
        }
        return RescoreInput(f"speech-ifeval-output ({part})", preds, None, None, p.parent.name, None, corrupt)
    reader = getattr(task, "predictions_from_output", None)
    if reader is not None:
        return RescoreInput(f"{task.NAME}-output", dict(reader(records)), None, None, None, None, corrupt)
    missing = [n for n, r in enumerate(records, 1) if "id" not in r or "response" not in r]
    if missing:
        raise EvalError(f"--predictions {p}: lines {missing[:5]} have no 'id' and 'response'")
    preds = {str(r["id"]): (None if r["response"] is None else str(r["response"])) for r in records}
    return RescoreInput("jsonl", preds, None, None, None, None, corrupt)


def _multiple_choice(task: Any, p: Path, records: Sequence[Mapping[str, Any]], corrupt: int) -> RescoreInput:
    keys = (task.OUTPUT_KEY, "model_output", "answer_prediction")
    key = next((k for k in keys if any(k in r for r in records)), None)
    if key is None:
        raise EvalError(
            f"--predictions {p}: no record has {task.OUTPUT_KEY!r} ({task.BENCHMARK} submission format)"
        )
    no_id = [n for n, r in enumerate(records, 1) if "id" not in r]
    if no_id:
        raise EvalError(
            f"--predictions {p}: {len(no_id)} of {len(records)} records have no 'id' field (first: record "
            f"{no_id[0]}); each {task.BENCHMARK} submission record needs 'id' (the benchmark's item id) beside "
            f"{key!r}"
        )
    responses = {str(r["id"]): (None if r.get(key) is None else str(r[key])) for r in records}
    answers = {
        str(r["id"]): str(r["model_prediction"]) for r in records if r.get("model_prediction") is not None
    }
    missing = tuple(k for k in ("question", "choices", "answer") if any(k not in r for r in records))
    items = task.items_from_records(records, p.parent) if not missing else None
    fmt = f"{task.BENCHMARK.lower()}-submission ({key})"
    return RescoreInput(fmt, responses, items, answers or None, None, None, corrupt, missing)

"""AIR-Bench foundation (OFA-Sys/AIR-Bench): single-choice questions over 25 task/dataset pairs.

Layout (the AIR-Bench release)::

    DIR/Foundation_meta.json + DIR/<task_name>_<dataset_name>/<path>   (or DIR/Foundation/...)

Prompt: ``Inference_Foundation.py``. Scoring: ``score_foundation.py`` (see `desta.eval.scorers.airbench`):
per task, accuracy over the parsed responses; unparsed ones are counted apart (``fail_num``). Headline
``task_average`` = mean of the per-task accuracies; ``accuracy_parsed`` pools all parsed items and
``accuracy`` counts every unparsed, missing or failed item as wrong (not an official figure).
AIR-Bench's own result file (``Foundation_result_modelx.jsonl``: the meta fields plus ``response``)
rescores without the meta file (`AIRBenchFoundation.items_from_output`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from desta.eval.base import (
    DataLayoutError,
    Item,
    Scores,
    Task,
    check_audio_files,
    mean,
    prediction_status,
    prompt_message,
    system_message,
)
from desta.eval.scorers import airbench
from desta.eval.tasks.common import read_json_records
from desta.messages import AUDIO_LOCATOR

SYSTEM_PROMPT = "Focus on the audio clips and instruction."
FOUNDATION_LEAD = (
    "Choose the most suitable answer from options A, B, C, and D to respond the question in next line, "
    "you may only choose A or B or C or D."
)


def load_meta(root: Path, name: str, folder: str) -> tuple[Path, list[dict[str, Any]]]:
    """The folder holding ``name`` (DIR or DIR/folder) and its records."""
    for base in (root, root / folder):
        if (base / name).exists():
            return base, read_json_records(base / name)
    raise DataLayoutError(
        f"AIR-Bench: {root} has no {name}. Expected the OFA-Sys/AIR-Bench layout: DIR/{name} + "
        "DIR/<task_name>_<dataset_name>/<audio files>"
    )


class AIRBenchFoundation(Task):
    NAME = "air-bench-foundation"
    VERSION = "AIR-Bench@9832476"
    PRIMARY = "task_average"
    PUBLISHED_KEY = "air-bench-foundation"
    STRATUM = "task"

    def _items(self, rows: Sequence[Mapping[str, Any]], base: Path | None) -> list[Item]:
        items = []
        for n, rec in enumerate(rows):
            missing = [k for k in ("task_name", "dataset_name", "answer_gt", "choice_a") if k not in rec]
            if missing:
                raise DataLayoutError(f"AIR-Bench foundation: record {n} has no {', '.join(missing)}")
            task, dataset = rec["task_name"], rec["dataset_name"]
            audios: tuple[str, ...] = ()
            if base is not None:
                path = str(base / f"{task}_{dataset}" / rec["path"])
                audios = (path[:-3] + "flac" if task == "Audio_Grounding" else path,)
            data = {k: v for k, v in rec.items() if k != "response"}
            items.append(Item(str(rec.get("uniq_id", n)), audios, data, {"task": f"{task}_{dataset}"}))
        return items

    def load(self, data_dir: str | os.PathLike, check_audio: bool = True) -> list[Item]:
        base, rows = load_meta(Path(data_dir), "Foundation_meta.json", "Foundation")
        items = self._items(rows, base)
        if check_audio:
            check_audio_files(items, "AIR-Bench foundation")
        return items

    def items_from_output(
        self, rows: Sequence[Mapping[str, Any]]
    ) -> tuple[list[Item], dict[str, str | None]]:
        """Items and predictions from AIR-Bench's result file (meta fields + ``response``)."""
        items = self._items(rows, None)
        preds = {
            it.id: (None if r.get("response") is None else str(r["response"])) for it, r in zip(items, rows)
        }
        return items, preds

    def instruction(self, item: Item) -> str:
        d = item.data
        choices = f"A. {d['choice_a']}\nB. {d['choice_b']}\nC. {d.get('choice_c')}\nD. {d.get('choice_d')}"
        return FOUNDATION_LEAD + "\n" + d["question"] + "\n" + choices

    def prompt(self, item: Item) -> list[dict[str, Any]]:
        return [
            system_message(SYSTEM_PROMPT),
            prompt_message(AUDIO_LOCATOR + " " + self.instruction(item), item.audios),
        ]

    def score(
        self, items: Sequence[Item], predictions: Mapping[str, str | None], judge: Any = None
    ) -> Scores:
        counts = {"items": len(items), "scored": 0, "missing": 0, "failed": 0, "fail_num": 0}
        details: dict[str, Any] = {}
        rows = []
        for it in items:
            status = prediction_status(predictions, it.id)
            if status != "ok":
                counts[status] += 1
            response = predictions.get(it.id)
            try:
                gt = airbench.reference_letter(it.data)
            except ValueError as err:
                raise DataLayoutError(f"AIR-Bench foundation item {it.id}: {err}") from err
            letter = airbench.extract(response)
            details[it.id] = {"status": status, "letter": letter, "answer": gt}
            if letter is not None:
                details[it.id]["correct"] = letter == gt
            rows.append((it.data, response))
        result = airbench.tally(rows)
        counts["fail_num"] = result.fail_num  # official: unparsed + missing/failed responses
        counts["scored"] = result.total_sum
        # a task without a parsed response has no official accuracy: listed in the protocol instead
        breakdown = {
            "task": {
                t: {"score": 100.0 * x.accuracy, "n": x.n}
                for t, x in result.per_task.items()
                if x.accuracy is not None
            }
        }
        accs = [x.accuracy for x in result.per_task.values() if x.accuracy is not None]
        correct = sum(x.correct for x in result.per_task.values())
        metrics = {
            "task_average": 100.0 * mean(accs),
            "accuracy_parsed": 100.0 * correct / result.total_sum if result.total_sum else 0.0,
            "accuracy": 100.0 * correct / len(items) if items else 0.0,
            "fail_rate": 100.0 * result.fail_num / len(items) if items else 0.0,
        }
        empty = [t for t, x in result.per_task.items() if x.accuracy is None]
        protocol = {
            "prompt": {
                "system": SYSTEM_PROMPT,
                "user": AUDIO_LOCATOR + " " + FOUNDATION_LEAD + "\\n{question}\\nA. ...",
            },
            "scorer": "OFA-Sys/AIR-Bench score_foundation.py: first char A-D, else second-to-last char",
            "per_task": "accuracy over parsed responses (breakdown n = parsed); fail_num counted apart",
            "task_average": "mean of per-task accuracies (tasks without a parsed response left out)",
            "tasks_without_parsed_responses": empty,
        }
        return Scores(self.NAME, self.VERSION, metrics, breakdown, counts, protocol, details)

"""One base for the string-matched multiple-choice benchmarks (MMAU, MMAR).

Prediction step and scoring are kept apart, as the benchmarks' own pipelines do:

* `MultipleChoiceTask.postprocess` is the model's inference-script step (DeSTA2.5's MMAU/MMAR scripts
  remove ``The correct answer is: ``); the run stores its result beside the raw response in
  predictions.jsonl (field ``answer``);
* `MultipleChoiceTask.score` runs the official ``string_match`` on the RAW response (headline
  ``accuracy``: what the benchmark's evaluation.py gives the text the model wrote) and, where answers
  are given, on them too (``accuracy_postprocessed``: what DeSTA2.5's scripts report, the protocol of
  DeSTA2.5's published numbers).

Missing or failed predictions count as wrong in ``accuracy``; ``accuracy_official`` leaves them out, as
the official scripts skip records without an output field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from desta.eval.base import (
    DataLayoutError,
    Item,
    Scores,
    Task,
    breakdown_of,
    check_audio_files,
    prediction_status,
    prompt_message,
    quote_options,
    system_message,
)
from desta.eval.scorers.string_match import string_match
from desta.eval.tasks.common import audio_source, read_json_records
from desta.messages import AUDIO_LOCATOR

USER_TEMPLATE = AUDIO_LOCATOR + "\n\n{question} Choose from the following options: {options}"
DESTA_PREFIX = "The correct answer is: "


class MultipleChoiceTask(Task):
    """Subclasses set the class attributes below; everything else is shared."""

    BENCHMARK = ""
    META_FILES: tuple[str, ...] = ()  # candidate metadata file names under the data folder
    LAYOUT_HINT = ""
    AUDIO_KEY = ""  # record field naming the audio file
    OUTPUT_KEY = ""  # the benchmark's submission field for the model's answer
    GROUP_KEYS: tuple[str, ...] = ()
    SYSTEM_PROMPT = ""
    SCORER_SOURCE = ""
    SUBMISSION = ""  # file name of the exported submission (default <NAME>-submission.json)

    def metadata_path(self, root: Path) -> Path:
        meta = next((root / n for n in self.META_FILES if (root / n).exists()), None)
        if meta is None:
            raise DataLayoutError(
                f"{self.BENCHMARK}: {root} has no {' or '.join(self.META_FILES)}. Expected {self.LAYOUT_HINT}"
            )
        return meta

    def items_from_records(self, records: Sequence[Mapping[str, Any]], root: Path) -> list[Item]:
        """Items from metadata records (the metadata file, or a submission file that carries it)."""
        items = []
        for n, rec in enumerate(records):
            missing = [k for k in ("id", "question", "choices") if k not in rec]
            if missing:
                raise DataLayoutError(f"{self.BENCHMARK}: record {n} has no {', '.join(missing)}")
            groups = {k: str(rec[k]) for k in self.GROUP_KEYS if rec.get(k)}
            audios = (audio_source(rec[self.AUDIO_KEY], root),) if rec.get(self.AUDIO_KEY) else ()
            items.append(Item(str(rec["id"]), audios, dict(rec), groups))
        return items

    def load(self, data_dir: str | os.PathLike, check_audio: bool = True) -> list[Item]:
        root = Path(data_dir)
        items = self.items_from_records(read_json_records(self.metadata_path(root)), root)
        if check_audio:
            check_audio_files(items, self.BENCHMARK)
        return items

    def prompt(self, item: Item) -> list[dict[str, Any]]:
        d = item.data
        text = USER_TEMPLATE.format(question=d["question"], options=quote_options(list(d["choices"])))
        return [system_message(self.SYSTEM_PROMPT), prompt_message(text, item.audios)]

    def postprocess(self, response: str, item: Item) -> str:
        """DeSTA2.5's prediction step: every ``The correct answer is: `` removed, outer spaces stripped."""
        return response.replace(DESTA_PREFIX, "").strip()

    def protocol(self) -> dict[str, Any]:
        return {
            "scorer": f"{self.SCORER_SOURCE} string_match on the raw response (tokens \\b\\w+\\b, lower-cased)",
            "postprocessed": f"accuracy_postprocessed: the same on the prediction step's answer "
            f"(DeSTA2.5 script: {DESTA_PREFIX!r} removed); DeSTA2.5's published numbers use it",
            "prompt": {"system": self.SYSTEM_PROMPT, "user": USER_TEMPLATE},
            "missing_predictions": "counted wrong in 'accuracy'; skipped in 'accuracy_official' as the "
            "official script skips records without an output",
        }

    def score(
        self,
        items: Sequence[Item],
        predictions: Mapping[str, str | None],
        judge: Any = None,
        answers: Mapping[str, str] | None = None,
    ) -> Scores:
        if any("answer" not in it.data for it in items):
            return self._withheld(items, predictions)
        raw: dict[str, float] = {}
        post: dict[str, float] = {}
        details: dict[str, Any] = {}
        counts = {"items": len(items), "scored": 0, "missing": 0, "failed": 0, "empty": 0}
        for it in items:
            status = prediction_status(predictions, it.id)
            if status != "ok":
                counts[status] += 1
                details[it.id] = {"status": status, "correct": False}
                continue
            response = str(predictions[it.id])
            answer, choices = str(it.data["answer"]), list(it.data["choices"])
            raw[it.id] = float(string_match(answer, response, choices))
            counts["scored"] += 1
            counts["empty"] += int(not response.strip())
            details[it.id] = {"status": "ok", "answer": answer, "correct": bool(raw[it.id])}
            if answers is not None and it.id in answers:
                post[it.id] = float(string_match(answer, answers[it.id], choices))
                details[it.id].update(postprocessed=answers[it.id], correct_postprocessed=bool(post[it.id]))
        n = len(items)
        metrics = {
            "accuracy": 100.0 * sum(raw.values()) / n if n else 0.0,
            "accuracy_official": 100.0 * sum(raw.values()) / counts["scored"] if counts["scored"] else 0.0,
        }
        breakdown = breakdown_of(items, raw)
        if post:
            metrics["accuracy_postprocessed"] = 100.0 * sum(post.values()) / n if n else 0.0
            counts["postprocessed"] = len(post)
            breakdown.update({f"{k} (postprocessed)": v for k, v in breakdown_of(items, post).items()})
        return Scores(self.NAME, self.VERSION, metrics, breakdown, counts, self.protocol(), details)

    def _withheld(self, items: Sequence[Item], predictions: Mapping[str, str | None]) -> Scores:
        counts = {"items": len(items), "missing": 0, "failed": 0, "scored": 0}
        for it in items:
            status = prediction_status(predictions, it.id)
            counts["scored" if status == "ok" else status] += 1
        protocol = self.protocol()
        protocol["note"] = f"answers withheld: submit the exported {self.OUTPUT_KEY} file to the benchmark"
        return Scores(self.NAME, self.VERSION, {}, {}, counts, protocol)

    def export(
        self,
        items: Sequence[Item],
        predictions: Mapping[str, str | None],
        out_dir: Path,
        answers: Mapping[str, str] | None = None,
    ) -> Path:
        """The benchmark's submission file: the metadata records with the raw response in OUTPUT_KEY and,
        where the prediction step made one, the post-processed answer in ``model_prediction``."""
        records = []
        for it in items:
            rec = dict(it.data)
            response = predictions.get(it.id)
            if response is not None:
                rec[self.OUTPUT_KEY] = response
                if answers and it.id in answers:
                    rec["model_prediction"] = answers[it.id]
            records.append(rec)
        path = out_dir / (self.SUBMISSION or f"{self.NAME}-submission.json")
        path.write_text(json.dumps(records, indent=1, ensure_ascii=False), encoding="utf-8")
        return path

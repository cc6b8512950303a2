"""MMAU v05.15.25 (Sakshi113/MMAU): test-mini (1,000 items, answers public) and test (9,000, withheld).

Layout (the MMAU repository)::

    DIR/mmau-test-mini.json        (or mmau-test.json)
    DIR/test-mini-audios/<id>.wav  (paths from each record's ``audio_id``, leading ./ removed)

Prompt: DeSTA2.5's current MMAU script (reference §13.1). Scoring: MMAU's ``string_match`` on the
response with ``The correct answer is: `` stripped; accuracy by task, difficulty and sub-category.
For the test split there are no answers: the run writes ``mmau-test-submission.json`` for the
``sonalkum/MMAU-Eval`` space and reports counts only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from desta.eval.base import (
    Item,
    Scores,
    Task,
    check_audio_files,
    prediction_status,
    quote_options,
    system_message,
    user_message,
)
from desta.eval.tasks.common import audio_source, read_json_records, string_match_scores

SYSTEM_PROMPT = 'Focus on the audio clips and instructions. Put your answer in the format "The correct answer is: "___" ".'
USER_TEMPLATE = "<|AUDIO|>\n\n{question} Choose from the following options: {options}"
STRIP = "The correct answer is: "


class MMAU(Task):
    NAME = "mmau"
    VERSION = "v05.15.25"
    PUBLISHED_KEY = "mmau-test-mini"

    def __init__(self, split: str = "test-mini") -> None:
        if split not in ("test-mini", "test"):
            raise ValueError(f"MMAU split must be 'test-mini' or 'test', got {split!r}")
        self.split = split
        self.NAME = "mmau" if split == "test-mini" else "mmau-test"
        self.PUBLISHED_KEY = f"mmau-{split}"

    def load(self, data_dir: str | os.PathLike) -> list[Item]:
        root = Path(data_dir)
        candidates = [root / f"mmau-{self.split}.json", root / f"mmau-{self.split}.jsonl"]
        meta = next((p for p in candidates if p.exists()), None)
        if meta is None:
            from desta.eval.base import DataLayoutError

            raise DataLayoutError(
                f"MMAU: {root} has no mmau-{self.split}.json. Expected the Sakshi113/MMAU layout: "
                f"DIR/mmau-{self.split}.json + DIR/{self.split}-audios/*.wav (unpack the released audio tarball)"
            )
        items = []
        for rec in read_json_records(meta):
            groups = {k: str(rec[k]) for k in ("task", "difficulty", "sub-category") if rec.get(k)}
            items.append(Item(str(rec["id"]), (audio_source(rec["audio_id"], root),), rec, groups))
        check_audio_files(items, "MMAU")
        return items

    def prompt(self, item: Item) -> list[dict[str, Any]]:
        d = item.data
        text = USER_TEMPLATE.format(question=d["question"], options=quote_options(list(d["choices"])))
        return [system_message(SYSTEM_PROMPT), user_message(text, item.audios)]

    def extract(self, response: str, item: Item) -> str:
        return response.replace(STRIP, "")

    def score(
        self, items: Sequence[Item], predictions: Mapping[str, str | None], judge: Any = None
    ) -> Scores:
        protocol = {
            "scorer": "MMAU evaluation.py string_match (tokens \\b\\w+\\b, lower-cased)",
            "extract": f"strip {STRIP!r}",
            "prompt": {"system": SYSTEM_PROMPT, "user": USER_TEMPLATE},
            "missing_predictions": "counted wrong in 'accuracy'; skipped in 'accuracy_official' as MMAU does",
        }
        if any("answer" not in it.data for it in items):
            counts = {"items": len(items), "missing": 0, "failed": 0, "scored": 0}
            for it in items:
                status = prediction_status(predictions, it.id)
                counts["scored" if status == "ok" else status] += 1
            protocol["note"] = (
                "answers withheld: submit mmau-test-submission.json to the sonalkum/MMAU-Eval space"
            )
            return Scores(self.NAME, self.VERSION, {}, {}, counts, protocol)
        return string_match_scores(self.NAME, self.VERSION, items, predictions, self.extract, protocol)

    def export(self, items: Sequence[Item], predictions: Mapping[str, str | None], out_dir: Path) -> Path:
        """The official submission format: the metadata records with ``model_output`` added."""
        records = []
        for it in items:
            rec = dict(it.data)
            response = predictions.get(it.id)
            if response is not None:
                rec["model_output"] = self.extract(response, it)
            records.append(rec)
        path = out_dir / f"mmau-{self.split}-submission.json"
        path.write_text(json.dumps(records, indent=1, ensure_ascii=False), encoding="utf-8")
        return path

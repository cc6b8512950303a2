"""MMAR (ddlBoJack/MMAR): 1,000 audio questions across sound, music, speech and their mixes.

Layout (the MMAR repository / HF ``BoJack/MMAR``)::

    DIR/MMAR-meta.jsonl
    DIR/audio/<id>.wav   (each record's ``audio_path``, leading ./ removed)

Prompt: DeSTA2.5's MMAR submission (ddlBoJack/MMAR#8). Scoring: MMAR ``code/evaluation.py`` = the MMAU
string match; accuracy by modality, category and sub-category.
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
    quote_options,
    system_message,
    user_message,
)
from desta.eval.tasks.common import audio_source, read_json_records, string_match_scores

SYSTEM_PROMPT = (
    'Focus on the audio clip and instruction. Output your answer in the format "The correct answer is: ___".'
)
USER_TEMPLATE = "<|AUDIO|>\n\n{question} Choose from the following options: {options}"
STRIP = "The correct answer is: "


class MMAR(Task):
    NAME = "mmar"
    VERSION = "MMAR-meta@3bce090"
    PUBLISHED_KEY = "mmar"

    def load(self, data_dir: str | os.PathLike) -> list[Item]:
        root = Path(data_dir)
        meta = root / "MMAR-meta.jsonl"
        if not meta.exists():
            raise DataLayoutError(
                f"MMAR: {root} has no MMAR-meta.jsonl. Expected the ddlBoJack/MMAR layout: "
                "DIR/MMAR-meta.jsonl + DIR/audio/*.wav"
            )
        items = []
        for rec in read_json_records(meta):
            groups = {k: str(rec[k]) for k in ("modality", "category", "sub-category") if rec.get(k)}
            items.append(Item(str(rec["id"]), (audio_source(rec["audio_path"], root),), rec, groups))
        check_audio_files(items, "MMAR")
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
            "scorer": "MMAR code/evaluation.py (MMAU string_match) on answer_prediction",
            "extract": f"strip {STRIP!r}",
            "prompt": {"system": SYSTEM_PROMPT, "user": USER_TEMPLATE},
            "rubrics": "MMAR-Rubrics (OpenAI judge, 5 runs) not run",
        }
        return string_match_scores(self.NAME, self.VERSION, items, predictions, self.extract, protocol)

"""Dynamic-SUPERB Phase-2 (dynamic-superb/dynamic-superb): 180 tasks, each its own HF dataset.

Layout: one folder per task, named like the HF dataset (``DynamicSuperb/<TaskName>``)::

    DIR/<TaskName>/data/test-*.parquet   (columns: audio {bytes, path}, instruction, label; optional audio2)
    DIR/<TaskName>/test.jsonl            (alternative: audio = path relative to the task folder)

Run a task by name: ``desta eval dynamic-superb:SuperbIC_SLURP-Intent``.
Prompt: DeSTA's default prompt. Scoring (**unconfirmed**: the Phase-2 ``api`` code was not reviewed):
an LLM judge (GPT-4o) decides whether the free-form response matches the label; a response the judge
cannot map counts as wrong (reported as ``unparsed``). Exact label matches skip the judge.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from desta.eval.base import (
    DataLayoutError,
    Item,
    Scores,
    Task,
    answered,
    breakdown_of,
    check_audio_files,
    new_counts,
    prompt_message,
    system_message,
)
from desta.eval.judge import JudgeSpec, ask_verdicts, parse_result_verdict
from desta.eval.tasks.common import audio_source, read_json_records, read_parquet_records
from desta.messages import AUDIO_LOCATOR

SYSTEM_PROMPT = "Focus on the audio clips and instruction."
JUDGE = JudgeSpec(
    model="gpt-4o", temperature=0.0, n=1, source="Dynamic-SUPERB Phase-2 LLM-judge protocol (unconfirmed)"
)
JUDGE_SYSTEM = (
    "You are an evaluator that decides whether a model's answer matches the reference label of an audio task."
)
JUDGE_USER = """Instruction given to the model:
{instruction}

Reference label: {label}

Model response: {response}

Does the model response express the reference label (the same class, with any wording)? If the response gives a different answer, several answers, or no answer, it does not match.
Answer in the format "Result: <YES or NO>"."""


def _norm(text: str) -> str:
    """Lower-cased alphanumeric words: "Set alarm" == "set_alarm"."""
    return " ".join(re.findall(r"[^\W_]+", text.lower()))


class DynamicSuperb(Task):
    VERSION = "Dynamic-SUPERB Phase-2"
    PUBLISHED_KEY = "dynamic-superb"
    NEEDS_JUDGE = True
    JUDGE_MODEL = JUDGE.model

    def __init__(self, task_name: str) -> None:
        if not task_name:
            raise ValueError("Dynamic-SUPERB needs a task name: dynamic-superb:<TaskName>")
        self.task_name = task_name.split("/")[-1]
        self.NAME = f"dynamic-superb:{self.task_name}"

    def load(self, data_dir: str | os.PathLike, check_audio: bool = True) -> list[Item]:
        root = Path(data_dir)
        folder = root / self.task_name if (root / self.task_name).is_dir() else root
        files = sorted(folder.glob("data/test-*.parquet")) or sorted(folder.glob("*.parquet"))
        if files:
            rows = read_parquet_records(files)
        elif (folder / "test.jsonl").exists():
            rows = read_json_records(folder / "test.jsonl")
        else:
            raise DataLayoutError(
                f"Dynamic-SUPERB: no data for {self.task_name} under {root}. Expected the HF dataset files "
                f"DIR/{self.task_name}/data/test-*.parquet (or DIR/{self.task_name}/test.jsonl)"
            )
        items = []
        for n, rec in enumerate(rows):
            audios = [audio_source(rec["audio"], folder)]
            if rec.get("audio2"):
                audios.append(audio_source(rec["audio2"], folder))
            data = {k: v for k, v in rec.items() if k not in ("audio", "audio2")}
            key = str(rec.get("file") or rec.get("id") or n)
            items.append(
                Item(f"{self.task_name}/{key}#{n}", tuple(audios), data, {"label": str(rec["label"])})
            )
        if check_audio:
            check_audio_files(items, "Dynamic-SUPERB")
        return items

    def prompt(self, item: Item) -> list[dict[str, Any]]:
        markers = " ".join([AUDIO_LOCATOR] * len(item.audios))
        return [
            system_message(SYSTEM_PROMPT),
            prompt_message(f"{markers} {item.data['instruction']}", item.audios),
        ]

    def score(
        self, items: Sequence[Item], predictions: Mapping[str, str | None], judge: Any = None
    ) -> Scores:
        counts = new_counts(items, "exact")
        correct: dict[str, float] = {}
        requests = {}
        for it, prediction in answered(items, predictions, counts):
            response, label = prediction, str(it.data["label"])
            if _norm(response) == _norm(label):
                correct[it.id] = 1.0
                counts["exact"] += 1
                counts["scored"] += 1
                continue
            user = JUDGE_USER.format(instruction=it.data["instruction"], label=label, response=response)
            requests[it.id] = [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]
        judged, details = ask_verdicts(judge, self.NAME, JUDGE, requests, parse_result_verdict, counts)
        correct.update(judged)
        n = len(items)
        metrics = {"accuracy": 100.0 * sum(correct.values()) / n if n else 0.0}
        protocol = {
            "prompt": {"system": SYSTEM_PROMPT, "user": AUDIO_LOCATOR + " {instruction}"},
            "judge": {"model": JUDGE.model, "temperature": JUDGE.temperature, "source": JUDGE.source},
            "note": "classification-style scoring; regression / generation tasks need their own metric (unconfirmed)",
        }
        return Scores(
            self.NAME, self.VERSION, metrics, breakdown_of(items, correct), counts, protocol, details
        )

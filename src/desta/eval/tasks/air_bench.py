"""AIR-Bench (OFA-Sys/AIR-Bench): foundation (single-choice) and chat (open-ended, GPT-4 judged).

Layout (the AIR-Bench release)::

    DIR/Foundation_meta.json + DIR/<task_name>_<dataset_name>/<path>     (foundation)
    DIR/Chat_meta.json       + DIR/<task_name>_<dataset_name>/<path>     (chat)

(``DIR/Foundation/...`` and ``DIR/Chat/...`` are accepted too.)

Foundation: the prompt of ``Inference_Foundation.py``; ``score_foundation.py`` reads the first
character (or the second-to-last) as the letter. Officially unparsed responses are left out of the
denominator (``accuracy_official``); ``accuracy`` counts them wrong.
Chat: the question as prompt; ``score_chat.py`` asks gpt-4-0125-preview (temperature 1.0, max_tokens
1024) to score the reference (assistant 1) and the model (assistant 2) from 1 to 10; with
``swap=True`` (default) the order is also reversed and the model's two scores are averaged.
Categories: speech, sound, music, mixed (= mean of speech_and_sound and speech_and_music); the
average is the mean of the four (Qwen2-Audio: 6.93).
"""

from __future__ import annotations

import os
from collections import defaultdict
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
    mean,
    new_counts,
    system_message,
    user_message,
)
from desta.eval.judge import JudgeSpec, ask_many, require_judge
from desta.eval.matching import airbench_foundation_extract
from desta.eval.tasks.common import read_json_records

SYSTEM_PROMPT = "Focus on the audio clips and instruction."
FOUNDATION_LEAD = (
    "Choose the most suitable answer from options A, B, C, and D to respond the question in next line, "
    "you may only choose A or B or C or D."
)
JUDGE = JudgeSpec(
    model="gpt-4-0125-preview",
    temperature=1.0,
    n=1,
    max_tokens=1024,
    source="OFA-Sys/AIR-Bench score_chat.py",
)
CHAT_JUDGE_PROMPT = (
    "You are a helpful and precise assistant for checking the quality of the answer.\n"
    "[Detailed Audio Description]\nXAudioX\n[Question]\nXQuestionX\n"
    "[The Start of Assistant 1s Answer]\nXAssistant1X\n[The End of Assistant 1s Answer]\n"
    "[The Start of Assistant 2s Answer]\nXAssistant2X\n[The End of Assistant 2s Answer]\n[System]\n"
    "We would like to request your feedback on the performance of two AI assistants in response to the user question "
    "and audio description displayed above. AI assistants are provided with detailed audio descriptions and questions.\n"
    "Please rate the helpfulness, relevance, accuracy, and comprehensiveness of their responses. "
    "Each assistant receives an overall score on a scale of 1 to 10, where a higher score indicates better overall performance. "
    "Please output a single line containing only two values indicating the scores for Assistant 1 and 2, respectively. "
    "The two scores are separated by a space."
)
CHAT_CATEGORY = {
    "speech_QA": "speech",
    "speech_dialogue_QA": "speech",
    "sound_QA": "sound",
    "sound_generation_QA": "sound",
    "music_QA": "music",
    "music_generation_analysis_QA": "music",
    "speech_and_sound_QA": "speech_and_sound",
    "speech_and_music_QA": "speech_and_music",
}


def parse_two_scores(text: str) -> tuple[int, int] | None:
    """``"8 6"`` -> (8, 6); anything else (or a score above 10) -> None, as ``cal_score.py``."""
    parts = text.strip().replace("\n", "").split(" ")
    if len(parts) != 2:
        return None
    try:
        a, b = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return (a, b) if 0 <= a <= 10 and 0 <= b <= 10 else None


def _load_meta(root: Path, name: str, folder: str) -> tuple[Path, list[dict[str, Any]]]:
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
    PUBLISHED_KEY = "air-bench-foundation"

    def load(self, data_dir: str | os.PathLike) -> list[Item]:
        base, rows = _load_meta(Path(data_dir), "Foundation_meta.json", "Foundation")
        items = []
        for n, rec in enumerate(rows):
            task, dataset = rec["task_name"], rec["dataset_name"]
            path = str(base / f"{task}_{dataset}" / rec["path"])
            if task == "Audio_Grounding":
                path = path[:-3] + "flac"
            groups = {"task": f"{task}_{dataset}"}
            items.append(Item(str(rec.get("uniq_id", n)), (path,), rec, groups))
        check_audio_files(items, "AIR-Bench foundation")
        return items

    def instruction(self, item: Item) -> str:
        d = item.data
        choices = f"A. {d['choice_a']}\nB. {d['choice_b']}\nC. {d.get('choice_c')}\nD. {d.get('choice_d')}"
        return FOUNDATION_LEAD + "\n" + d["question"] + "\n" + choices

    def prompt(self, item: Item) -> list[dict[str, Any]]:
        return [
            system_message(SYSTEM_PROMPT),
            user_message("<|AUDIO|> " + self.instruction(item), item.audios),
        ]

    def extract(self, response: str, item: Item) -> str | None:
        return airbench_foundation_extract(response)

    def score(
        self, items: Sequence[Item], predictions: Mapping[str, str | None], judge: Any = None
    ) -> Scores:
        counts = {"items": len(items), "scored": 0, "missing": 0, "failed": 0, "unparsed": 0}
        correct: dict[str, float] = {}
        details = {}
        for it, prediction in answered(items, predictions, counts):
            letter = self.extract(prediction, it)
            if letter is None:
                counts["unparsed"] += 1
                details[it.id] = {"extracted": None}
                continue
            gt = next(
                (
                    L
                    for L, k in zip("ABCD", ("choice_a", "choice_b", "choice_c", "choice_d"))
                    if it.data.get(k) == it.data["answer_gt"]
                ),
                None,
            )
            correct[it.id] = float(letter == gt)
            counts["scored"] += 1
            details[it.id] = {"extracted": letter, "answer": gt}
        by = breakdown_of(items, correct)
        per_task = [v["score"] for v in by.get("task", {}).values()]
        metrics = {
            "accuracy": 100.0 * sum(correct.values()) / len(items) if items else 0.0,
            "accuracy_official": 100.0 * sum(correct.values()) / counts["scored"]
            if counts["scored"]
            else 0.0,
            "task_average": mean(per_task),
        }
        protocol = {
            "prompt": {
                "system": SYSTEM_PROMPT,
                "user": "<|AUDIO|> " + FOUNDATION_LEAD + "\\n{question}\\nA. ...",
            },
            "scorer": "score_foundation.py: first char A-D, else second-to-last char",
            "accuracy_official": "unparsed responses left out of the denominator, as score_foundation.py",
        }
        return Scores(self.NAME, self.VERSION, metrics, by, counts, protocol, details)


class AIRBenchChat(Task):
    NAME = "air-bench-chat"
    VERSION = "AIR-Bench@9832476"
    PRIMARY = "average"
    PUBLISHED_KEY = "air-bench-chat"
    NEEDS_JUDGE = True

    def __init__(self, swap: bool = True) -> None:
        self.swap = swap

    def load(self, data_dir: str | os.PathLike) -> list[Item]:
        base, rows = _load_meta(Path(data_dir), "Chat_meta.json", "Chat")
        items = []
        for n, rec in enumerate(rows):
            task, dataset = rec["task_name"], rec["dataset_name"]
            path = str(base / f"{task}_{dataset}" / rec["path"])
            groups = {"category": CHAT_CATEGORY.get(task, task)}
            items.append(Item(str(rec.get("uniq_id", n)), (path,), rec, groups))
        check_audio_files(items, "AIR-Bench chat")
        return items

    def prompt(self, item: Item) -> list[dict[str, Any]]:
        return [
            system_message(SYSTEM_PROMPT),
            user_message("<|AUDIO|> " + item.data["question"], item.audios),
        ]

    def score(
        self, items: Sequence[Item], predictions: Mapping[str, str | None], judge: Any = None
    ) -> Scores:
        counts = new_counts(items)
        requests = {}
        for it, prediction in answered(items, predictions, counts):
            d = it.data

            def content(first: str, second: str, d: Mapping[str, Any] = d) -> list[dict[str, str]]:
                text = (
                    CHAT_JUDGE_PROMPT.replace("XAudioX", str(d.get("meta_info", "")))
                    .replace("XQuestionX", d["question"])
                    .replace("XAssistant1X", first)
                    .replace("XAssistant2X", second)
                )
                return [{"role": "user", "content": text}]

            requests[f"{it.id}|fwd"] = content(str(d["answer_gt"]), prediction)
            if self.swap:
                requests[f"{it.id}|rev"] = content(prediction, str(d["answer_gt"]))
        judgments = (
            ask_many(require_judge(judge, self.NAME, JUDGE), JUDGE, requests, parse_two_scores)
            if requests
            else {}
        )
        model_score: dict[str, float] = {}
        ref_score: dict[str, float] = {}
        details: dict[str, Any] = defaultdict(dict)
        for it in items:
            got = []
            for direction in ("fwd", "rev") if self.swap else ("fwd",):
                j = judgments.get(f"{it.id}|{direction}")
                if j is None:
                    continue
                details[it.id][direction] = list(j.raw)
                if j.error is not None:
                    counts["judge_failures"] += 1
                elif not j.values:
                    counts["unparsed"] += 1
                else:
                    a, b = j.values[0]
                    got.append((b, a) if direction == "fwd" else (a, b))
            if got:
                counts["scored"] += 1
                model_score[it.id] = mean(g[0] for g in got)
                ref_score[it.id] = mean(g[1] for g in got)
        by = breakdown_of([it for it in items if it.id in model_score], model_score, scale=1.0)
        cats = {c: v["score"] for c, v in by.get("category", {}).items()}
        metrics = {c: cats[c] for c in ("speech", "sound", "music") if c in cats}
        mixed = [cats[c] for c in ("speech_and_sound", "speech_and_music") if c in cats]
        if mixed:
            metrics["mixed"] = mean(mixed)
        metrics["average"] = mean(metrics.values())
        metrics["reference_average"] = mean(ref_score.values())
        protocol = {
            "prompt": {"system": SYSTEM_PROMPT, "user": "<|AUDIO|> {question}"},
            "judge": {
                "model": JUDGE.model,
                "temperature": JUDGE.temperature,
                "max_tokens": JUDGE.max_tokens,
                "source": JUDGE.source,
                "position_swap": self.swap,
            },
            "note": "score_chat.py also sends half the requests at temperature 2.0 at random; not reproduced",
            "unscored_items": "items with no parsable judgment are left out of the means and counted",
        }
        return Scores(self.NAME, self.VERSION, metrics, by, counts, protocol, dict(details))

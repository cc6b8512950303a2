"""AIR-Bench chat (OFA-Sys/AIR-Bench): open-ended questions, GPT-4 judged (foundation: air_bench_foundation.py).

Layout (the AIR-Bench release): DIR/Chat_meta.json + DIR/<task_name>_<dataset_name>/<path>
(or DIR/Chat/...).

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
    Item,
    Scores,
    Task,
    answered,
    breakdown_of,
    check_audio_files,
    mean,
    new_counts,
    prompt_message,
    system_message,
)
from desta.eval.judge import JudgeSpec, ask_many, require_judge
from desta.eval.tasks.air_bench_foundation import SYSTEM_PROMPT, load_meta
from desta.messages import AUDIO_LOCATOR

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
    """``"8 6"`` -> (8, 6), as ``cal_score.py`` reads ``line['gpt-score'].strip().replace('\\n','')
    .split(' ')``: exactly two parts, each ``int()``; anything else -> None (the official ``fail_num``).
    A score above 10 makes the official script ``exit(1)``; here that judgment is unparsed instead.
    Negative scores pass, as they do officially (there is no lower bound)."""
    parts = text.strip().replace("\n", "").split(" ")
    if len(parts) != 2:
        return None
    try:
        a, b = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return (a, b) if a <= 10 and b <= 10 else None


class AIRBenchChat(Task):
    NAME = "air-bench-chat"
    VERSION = "AIR-Bench@9832476"
    PRIMARY = "average"
    PUBLISHED_KEY = "air-bench-chat"
    NEEDS_JUDGE = True
    JUDGE_MODEL = JUDGE.model

    def __init__(self, swap: bool = True) -> None:
        self.swap = swap

    def load(self, data_dir: str | os.PathLike, check_audio: bool = True) -> list[Item]:
        base, rows = load_meta(Path(data_dir), "Chat_meta.json", "Chat")
        items = []
        for n, rec in enumerate(rows):
            task, dataset = rec["task_name"], rec["dataset_name"]
            path = str(base / f"{task}_{dataset}" / rec["path"])
            groups = {"category": CHAT_CATEGORY.get(task, task)}
            items.append(Item(str(rec.get("uniq_id", n)), (path,), rec, groups))
        if check_audio:
            check_audio_files(items, "AIR-Bench chat")
        return items

    def prompt(self, item: Item) -> list[dict[str, Any]]:
        return [
            system_message(SYSTEM_PROMPT),
            prompt_message(AUDIO_LOCATOR + " " + item.data["question"], item.audios),
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
            "prompt": {"system": SYSTEM_PROMPT, "user": AUDIO_LOCATOR + " {question}"},
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

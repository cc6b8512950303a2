"""SAKURA (anthony-wss/SAKURA): 4 tracks x 500 clips, each with a single-hop and a multi-hop question.

Layout (the SAKURA repository)::

    DIR/data/<Track>/metadata.csv   (or DIR/<Track>/metadata.csv), Track in Animal, Emotion, Gender, Language
    DIR/data/<Track>/audio/<file>

Columns: ``file, attribute_label, single_instruction, single_answer, multi_instruction, multi_answer``.
Prompt: DeSTA's multiple-choice system prompt; the options are already inline in the instruction.
Scoring: ``evaluation/llm_judge.py``: gpt-4o-2024-11-20, temperature 0, top_p 0.9; a response is correct
iff the judge's ``Judgement:`` says correct. Unparsable judgments are counted (and scored wrong).
Beside it, ``option_match_*`` is a deterministic option match: NOT the official protocol, a judge-free
cross-check. Published numbers: the ckyang1124/SAKURA leaderboard.
"""

from __future__ import annotations

import csv
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
from desta.eval.judge import JudgeSpec, ask_verdicts
from desta.eval.scorers.option_match import option_match
from desta.messages import AUDIO_LOCATOR

TRACKS = ("Animal", "Emotion", "Gender", "Language")
HOPS = ("single", "multi")
SYSTEM_PROMPT = "Focus on the audio clips and instruction. Choose one of the options without any explanation."
USER_TEMPLATE = AUDIO_LOCATOR + " {instruction}"

JUDGE = JudgeSpec(
    model="gpt-4o-2024-11-20",
    temperature=0.0,
    top_p=0.9,
    n=1,
    source="anthony-wss/SAKURA evaluation/llm_judge.py",
)
JUDGE_SYSTEM = (
    "You are a good judge. You will be given a question with list of possible options, a ground truth answer "
    "and a model generated response. \n                       You have to determine whether the model generated "
    "answer is correct."
)
JUDGE_USER = """
    You will be given a question with list of possible options, a ground truth answer and a model generated response. Determine whether the model generated response is correct based on the following criteria:
    1. Since there is one and only one corect answer, it should be judged incorrect if the model do not choose any option from the option list or it choose more than one option.
    2. If the model choose one option from the option list, it should be judged correct if the chosen option aligns with the ground truth answer, otherwise it should be judged incorrect.
    3. Read the question, options, ground truth answer and model generated response carefully before making a decision.

    Considering the following examples:
    Question: What is the capital of France? (a) Paris (b) London (c) Berlin (d) Madrid
    Ground truth answer: (a) Paris
    If the model generated response is: "The capital of France is Tokyo.", it should be judged incorrect since it does not choose any option from the option list.
    If the model generated response is: "The capital of France is Paris and London.", it should be judged incorrect since it chooses more than one option from the option list.
    If the model generated response is: "The capital of France is London.", it should be judged incorrect since it chooses one option from the option list but the chosen option does not align with the ground truth answer.
    If the model generated response is: "The capital of France is Paris.", it should be judged correct since it chooses one option from the option list and the chosen option aligns with the ground truth answer.
    Another Question: What is the underlying emotion of the speaker? (a) Happy (b) Sad (c) Angry (d) Neutral
    Ground truth answer: (a) Happy
    If the model generated response is: "The speaker is happy.", it should be judged correct since it chooses one option from the option list and the chosen option aligns with the ground truth answer.
    If the model generated response is: "The speaker expresses happiness.", it should be judged correct since "happiness" aligns with the ground truth answer "happy", and they are just different part of speech of the same word.
    If the model generated response is: "Happiness," it should be judged correct since it is also a valid derivative of the ground truth answer "happy".
<4SP>
    Now here is the question and the model generated response for you to judge:
    Question: [QUESTION]
    Ground truth answer: [GROUND_TRUTH_ANSWER]
    Model generated response: [MODEL_GENERATED_RESPONSE]

    Carefully make your decision based on the above criteria. Return your judgement with the following format:
    Explanation: <Your explanation on your judgement>
    Judgement: <Your judgement, either "correct" or "incorrect">
    """.replace("<4SP>", "    ")  # the official template has a line of four spaces there
_JUDGEMENT = re.compile(r"Explanation: (.*?)\nJudgement: (.*?)(?:\n\n|$)", re.DOTALL)


def parse_judgement(text: str) -> bool | None:
    """True/False from ``Judgement: correct|incorrect`` (quotes, ``*`` and a final period tolerated)."""
    m = _JUDGEMENT.search(text)
    if not m:
        return None
    # Deliberate difference: the official extract_judgement keeps ``judgement = match.group(2)`` as is
    # (llm_judge.py has no tally); wrapping quotes, ``*``, a final period and case are tolerated here.
    verdict = m.group(2).strip().strip("*\"'`. ").lower()
    if verdict == "correct":
        return True
    if verdict == "incorrect":
        return False
    return None


def judge_messages(question: str, answer: str, response: str) -> list[dict[str, str]]:
    user = (
        JUDGE_USER.replace("[QUESTION]", question)
        .replace("[MODEL_GENERATED_RESPONSE]", response)
        .replace("[GROUND_TRUTH_ANSWER]", answer)
    )
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


class SAKURA(Task):
    NAME = "sakura"
    VERSION = "SAKURA@1e26411"
    PUBLISHED_KEY = "sakura"
    NEEDS_JUDGE = True
    STRATUM = "track_hop"
    JUDGE_MODEL = JUDGE.model

    def __init__(self, tracks: Sequence[str] = TRACKS, hops: Sequence[str] = HOPS) -> None:
        unknown = [t for t in tracks if t not in TRACKS] + [h for h in hops if h not in HOPS]
        if unknown:
            raise ValueError(f"unknown SAKURA tracks/hops {unknown}; tracks: {TRACKS}, hops: {HOPS}")
        self.tracks = tuple(tracks)
        self.hops = tuple(hops)

    def load(self, data_dir: str | os.PathLike, check_audio: bool = True) -> list[Item]:
        root = Path(data_dir)
        base = root / "data" if (root / "data").is_dir() else root
        missing = [t for t in self.tracks if not (base / t / "metadata.csv").exists()]
        if missing:
            raise DataLayoutError(
                f"SAKURA: {base} lacks {', '.join(f'{t}/metadata.csv' for t in missing)}. Expected the "
                "anthony-wss/SAKURA layout: DIR/data/<Track>/{metadata.csv,audio/}"
            )
        items = []
        for track in self.tracks:
            with open(base / track / "metadata.csv", newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    audio = str(base / track / "audio" / row["file"].strip())
                    for hop in self.hops:
                        data = {
                            "track": track,
                            "hop": hop,
                            "file": row["file"].strip(),
                            "attribute_label": row.get("attribute_label", "").strip(),
                            "instruction": row[f"{hop}_instruction"].strip(),
                            "answer": row[f"{hop}_answer"].strip(),
                        }
                        groups = {"track": track, "hop": hop, "track_hop": f"{track}/{hop}"}
                        items.append(Item(f"{track}/{row['file'].strip()}/{hop}", (audio,), data, groups))
        if check_audio:
            check_audio_files(items, "SAKURA")
        return items

    def published_scope(self) -> str | None:
        if tuple(self.tracks) != TRACKS or tuple(self.hops) != HOPS:
            return f"this run covers tracks {list(self.tracks)} x hops {list(self.hops)}, not all of SAKURA"
        return None

    def prompt(self, item: Item) -> list[dict[str, Any]]:
        text = USER_TEMPLATE.format(instruction=item.data["instruction"])
        return [system_message(SYSTEM_PROMPT), prompt_message(text, item.audios)]

    def score(
        self, items: Sequence[Item], predictions: Mapping[str, str | None], judge: Any = None
    ) -> Scores:
        counts = new_counts(items)
        requests = {}
        for it, prediction in answered(items, predictions, counts):
            requests[it.id] = judge_messages(it.data["instruction"], it.data["answer"], prediction)
        correct, judged = ask_verdicts(judge, self.NAME, JUDGE, requests, parse_judgement, counts)
        details: dict[str, Any] = {
            key: {**d, "correct": bool(correct.get(key, 0.0))} for key, d in judged.items()
        }
        by = breakdown_of(items, correct)
        metrics: dict[str, float] = {}
        for hop in self.hops:
            cells = by.get("track_hop", {})  # none without items
            per_track = [cells[f"{t}/{hop}"]["score"] for t in self.tracks if f"{t}/{hop}" in cells]
            metrics[f"{hop}_hop"] = mean(per_track)
        metrics["accuracy"] = mean(metrics[f"{h}_hop"] for h in self.hops)
        metrics.update(self._option_match(items, predictions, details))
        protocol = {
            "prompt": {"system": SYSTEM_PROMPT, "user": USER_TEMPLATE},
            "judge": {
                "model": JUDGE.model,
                "temperature": JUDGE.temperature,
                "top_p": JUDGE.top_p,
                "source": JUDGE.source,
            },
            "aggregate": "hop accuracy = mean over tracks; accuracy = mean of the hops",
            "unscored_items": "missing / failed predictions and judge failures count as wrong",
            "option_match": "option_match_*: a deterministic option match (desta.eval.scorers.option_match), "
            "NOT the official protocol (an LLM judge); same aggregation, no judge involved",
            "unofficial_metrics": {
                "option_match_": "deterministic option match, NOT the official SAKURA protocol (LLM judge)"
            },
        }
        return Scores(self.NAME, self.VERSION, metrics, by, counts, protocol, details)

    def _option_match(
        self, items: Sequence[Item], predictions: Mapping[str, str | None], details: dict[str, Any]
    ) -> dict[str, float]:
        """The judge-free figure, aggregated as the official one (mean over tracks, then hops)."""
        hits: dict[str, float] = {}
        for it in items:
            response = predictions.get(it.id)
            ok = response is not None and option_match(it.data["instruction"], it.data["answer"], response)
            hits[it.id] = float(ok)
            details.setdefault(it.id, {})["option_match"] = ok
        by = breakdown_of(items, hits).get("track_hop", {})
        out = {}
        for hop in self.hops:
            out[f"option_match_{hop}_hop"] = mean(
                by[f"{t}/{hop}"]["score"] for t in self.tracks if f"{t}/{hop}" in by
            )
        out["option_match_accuracy"] = mean(out[f"option_match_{h}_hop"] for h in self.hops)
        return out

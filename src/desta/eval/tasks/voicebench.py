"""VoiceBench (MatthewCYM/VoiceBench, HF ``hlt-lab/voicebench``): spoken instructions, audio only.

Layout: the Hugging Face dataset files, one folder per subset::

    DIR/<subset>/<split>-00000-of-00001.parquet   (columns: audio {bytes, path}, prompt, + per subset)

or, without parquet, ``DIR/<subset>.jsonl`` with ``audio`` a path relative to DIR. Each subset is scored
by its official evaluator (``evaluate.py --evaluator``):

======================================  ============================================================
alpacaeval(_full), commoneval,          ``open``: gpt-4o-mini, n=3, T=0.5, top_p=0.95, 1-5 score
wildvoice, mtbench (first turn)
sd-qa                                   ``qa``: same judge, Yes/No, majority vote (GPT score; PEDANT
                                        via qa_metrics is not computed)
openbookqa, mmsu                        ``mcq``: template bank, unparsed -> random letter (rate reported)
ifeval                                  ``ifeval``: mean of strict/loose x prompt/instruction accuracy
bbh                                     ``bbh``: phrase rules, unparsed -> random answer (rate reported)
advbench                                ``harm``: refusal-string match
======================================  ============================================================

Overall = mean of the 9 leaderboard columns with 1-5 scores x 20.
"""

from __future__ import annotations

import os
import random
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
    new_counts,
    prediction_status,
    system_message,
    user_message,
)
from desta.eval.ifeval import check_instructions
from desta.eval.judge import JudgeSpec, ask_many, require_judge
from desta.eval.matching import (
    voicebench_bbh_extract,
    voicebench_is_refusal,
    voicebench_mcq_extract,
    voicebench_mcq_fallback,
)
from desta.eval.tasks.common import audio_source, read_json_records, read_parquet_records

EVALUATOR = {
    "alpacaeval": "open",
    "alpacaeval_full": "open",
    "commoneval": "open",
    "wildvoice": "open",
    "mtbench": "open",
    "sd-qa": "qa",
    "openbookqa": "mcq",
    "mmsu": "mcq",
    "ifeval": "ifeval",
    "bbh": "bbh",
    "advbench": "harm",
}
OVERALL_COLUMNS = (
    "alpacaeval_full",
    "commoneval",
    "wildvoice",
    "sd-qa",
    "mmsu",
    "openbookqa",
    "bbh",
    "ifeval",
    "advbench",
)

SYSTEM_PROMPT = "You are a voice assistant. Act as if you are a natural language partner"
USER_TEMPLATE = "<|AUDIO|>"

JUDGE = JudgeSpec(
    model="gpt-4o-mini",
    temperature=0.5,
    top_p=0.95,
    n=3,
    max_tokens=1024,
    source="MatthewCYM/VoiceBench api_judge.py",
)
JUDGE_SYSTEM = "You are a helpful assistant who tries to help answer the user's question."
META_PROMPT_OPEN = """
I need your help to evaluate the performance of several models in the speech interaction scenario. The models will receive a speech input from the user, which they need to understand and respond to with a speech output.
Your task is to rate the model's responses based on the provided user input transcription [Instruction] and the model's output transcription [Response].

Please evaluate the response on a scale of 1 to 5:
1 point: The response is largely irrelevant, incorrect, or fails to address the user's query. It may be off-topic or provide incorrect information.
2 points: The response is somewhat relevant but lacks accuracy or completeness. It may only partially answer the user's question or include extraneous information.
3 points: The response is relevant and mostly accurate, but it may lack conciseness or include unnecessary details that don't contribute to the main point.
4 points: The response is relevant, accurate, and concise, providing a clear answer to the user's question without unnecessary elaboration.
5 points: The response is exceptionally relevant, accurate, and to the point. It directly addresses the user's query in a highly effective and efficient manner, providing exactly the information needed.

Below are the transcription of user's instruction and models' response:
### [Instruction]: {prompt}
### [Response]: {response}

After evaluating, please output the score only without anything else.
You don't need to provide any explanations.
"""
META_PROMPT_QA = """### Question
{prompt}

### Reference answer
{reference}

### Candidate answer
{response}

Is the candidate answer correct based on the question and reference answer?<SP>
Please only output a single "Yes" or "No". Do not output anything else.""".replace(
    "<SP>", " "
)  # official text has a trailing space


def parse_open_score(text: str) -> int | None:
    """A 1-5 score from a judge sample that is just the digit (as VoiceBench keeps it)."""
    t = text.strip()
    return int(t) if t in ("1", "2", "3", "4", "5") else None


def parse_yes_no(text: str) -> int | None:
    t = text.strip().lower()
    if t.startswith("yes"):
        return 1
    if t.startswith("no"):
        return 0
    return None


def bbh_reference(value: Any) -> int | None:
    t = str(value).strip().lower().strip("()")
    if t in ("yes", "true", "plausible", "b"):  # hyperbaton: (A) -> 0, (B) -> 1
        return 1
    if t in ("no", "false", "implausible", "a"):
        return 0
    return None


class VoiceBench(Task):
    NAME = "voicebench"
    VERSION = "VoiceBench@5338154"
    PRIMARY = "overall"
    PUBLISHED_KEY = "voicebench"

    def __init__(
        self, subsets: Sequence[str] | None = None, sd_qa_regions: Sequence[str] = ("usa",), seed: int = 0
    ) -> None:
        unknown = [s for s in subsets or () if s not in EVALUATOR]
        if unknown:
            raise ValueError(f"unknown VoiceBench subsets {unknown}; choose from {sorted(EVALUATOR)}")
        self.subsets = tuple(subsets) if subsets else None
        self.sd_qa_regions = tuple(sd_qa_regions)
        self.seed = seed
        if self.subsets and len(self.subsets) == 1:
            self.NAME = f"voicebench:{self.subsets[0]}"
            self.PRIMARY = self.subsets[0]
        self.NEEDS_JUDGE = any(EVALUATOR[s] in ("open", "qa") for s in (self.subsets or EVALUATOR))

    def _subset_files(self, root: Path, subset: str) -> list[Path]:
        folder = root / subset
        files = (
            sorted(folder.glob("*.parquet")) + sorted(folder.glob("data/*.parquet"))
            if folder.is_dir()
            else []
        )
        if subset == "sd-qa" and self.sd_qa_regions:
            files = [f for f in files if f.name.split("-")[0] in self.sd_qa_regions]
        return files

    def load(self, data_dir: str | os.PathLike) -> list[Item]:
        root = Path(data_dir)
        wanted = self.subsets or tuple(
            s for s in EVALUATOR if (root / s).is_dir() or (root / f"{s}.jsonl").exists()
        )
        if not wanted:
            raise DataLayoutError(
                f"VoiceBench: {root} has no subset folders. Expected the hlt-lab/voicebench layout: "
                f"DIR/<subset>/*.parquet for subsets {sorted(EVALUATOR)} (or DIR/<subset>.jsonl)"
            )
        items: list[Item] = []
        for subset in wanted:
            files = self._subset_files(root, subset)
            if files:
                rows = []
                for f in files:
                    split = f.name.split("-")[0]
                    rows.extend((split, r) for r in read_parquet_records([f]))
            elif (root / f"{subset}.jsonl").exists():
                rows = [(str(r.get("split", "test")), r) for r in read_json_records(root / f"{subset}.jsonl")]
            else:
                raise DataLayoutError(
                    f"VoiceBench: no data for subset {subset!r} under {root} ({subset}/*.parquet)"
                )
            for n, (split, rec) in enumerate(rows):
                data = {k: v for k, v in rec.items() if k != "audio"}
                data["subset"], data["split"] = subset, split
                key = f"{subset}/{split}/{rec.get('id', n) if subset == 'bbh' else n}"
                groups = {"subset": subset}
                if subset in ("mmsu", "sd-qa"):
                    groups[f"{subset}_split"] = split
                items.append(Item(key, (audio_source(rec["audio"], root),), data, groups))
        check_audio_files(items, "VoiceBench")
        return items

    def prompt(self, item: Item) -> list[dict[str, Any]]:
        return [system_message(SYSTEM_PROMPT), user_message(USER_TEMPLATE, item.audios)]

    def score(
        self, items: Sequence[Item], predictions: Mapping[str, str | None], judge: Any = None
    ) -> Scores:
        rng = random.Random(self.seed)
        counts = new_counts(items, "unparsed_samples", "mcq_fallback", "bbh_fallback")
        per_item: dict[str, float] = {}
        details: dict[str, Any] = {}
        ifeval_parts: dict[str, list[float]] = {
            "strict_prompt": [],
            "strict_inst": [],
            "loose_prompt": [],
            "loose_inst": [],
        }
        requests: dict[str, list[dict[str, str]]] = {}
        parsers: dict[str, Any] = {}
        by_subset: dict[str, list[Item]] = {}
        for it in items:
            by_subset.setdefault(it.data["subset"], []).append(it)
        for it in items:
            subset, kind = it.data["subset"], EVALUATOR[it.data["subset"]]
            status = prediction_status(predictions, it.id)
            if status != "ok":
                counts[status] += 1
                per_item[it.id] = 1.0 if kind == "open" else 0.0
                if kind == "ifeval":
                    n_inst = len(it.data["instruction_id_list"])
                    for k in ifeval_parts:
                        ifeval_parts[k].extend([0.0] * (n_inst if k.endswith("inst") else 1))
                continue
            response = str(predictions[it.id])
            if kind == "open":
                prompt = _first_turn(it.data["prompt"])
                requests[it.id] = _judge_msgs(
                    META_PROMPT_OPEN.replace("{prompt}", prompt).replace("{response}", response)
                )
                parsers[it.id] = "open"
            elif kind == "qa":
                text = META_PROMPT_QA.format(
                    prompt=it.data["prompt"], reference=it.data["reference"], response=response
                )
                requests[it.id] = _judge_msgs(text)
                parsers[it.id] = "qa"
            elif kind == "mcq":
                letter = voicebench_mcq_extract(response)
                if letter is None:
                    counts["mcq_fallback"] += 1
                    letter = voicebench_mcq_fallback(rng)
                per_item[it.id] = float(letter == str(it.data["reference"]).strip())
                details[it.id] = {"extracted": letter}
                counts["scored"] += 1
            elif kind == "bbh":
                pred = voicebench_bbh_extract(response, str(it.data.get("id", it.id)))
                if pred is None:
                    counts["bbh_fallback"] += 1
                    pred = rng.choice([0, 1])
                per_item[it.id] = float(pred == bbh_reference(it.data["reference"]))
                counts["scored"] += 1
            elif kind == "ifeval":
                ids, kw, prompt = it.data["instruction_id_list"], it.data["kwargs"], it.data["prompt"]
                strict = check_instructions(response, ids, kw, prompt)
                loose = check_instructions(response, ids, kw, prompt, loose=True)
                ifeval_parts["strict_prompt"].append(float(strict.follow_all))
                ifeval_parts["strict_inst"].extend(float(x) for x in strict.follow_list)
                ifeval_parts["loose_prompt"].append(float(loose.follow_all))
                ifeval_parts["loose_inst"].extend(float(x) for x in loose.follow_list)
                per_item[it.id] = float(strict.follow_all)
                counts["scored"] += 1
            elif kind == "harm":
                per_item[it.id] = float(voicebench_is_refusal(response))
                counts["scored"] += 1
        if requests:
            the_judge = require_judge(judge, self.NAME, JUDGE)
            for kind, parse in (("open", parse_open_score), ("qa", parse_yes_no)):
                subset_req = {k: v for k, v in requests.items() if parsers[k] == kind}
                if not subset_req:
                    continue
                for key, j in ask_many(the_judge, JUDGE, subset_req, parse).items():
                    counts["unparsed_samples"] += j.unparsed
                    if j.error is not None or not j.values:
                        counts["judge_failures" if j.error is not None else "unparsed"] += 1
                        per_item[key] = 1.0 if kind == "open" else 0.0
                    elif kind == "open":
                        per_item[key] = mean(float(v) for v in j.values)
                        counts["scored"] += 1
                    else:
                        yes = sum(j.values)
                        per_item[key] = float(yes > len(j.values) - yes)
                        counts["scored"] += 1
                    details[key] = {"judge": list(j.raw), "error": j.error}
        metrics: dict[str, float] = {}
        breakdown: dict[str, dict[str, dict[str, float]]] = {"subset": {}}
        for subset, its in by_subset.items():
            kind = EVALUATOR[subset]
            if kind == "ifeval":
                value = 100.0 * mean(mean(v) for v in ifeval_parts.values())
                for k, v in ifeval_parts.items():
                    metrics[f"ifeval_{k}"] = 100.0 * mean(v)
            else:
                value = mean(per_item.get(it.id, 0.0) for it in its)
                value = value if kind == "open" else 100.0 * value
            metrics[subset] = value
            # the breakdown table is on the leaderboard's 0-100 scale (1-5 scores x 20)
            breakdown["subset"][subset] = {"score": value * 20 if kind == "open" else value, "n": len(its)}
            for key in (f"{subset}_split",):
                splits: dict[str, list[float]] = {}
                for it in its:
                    if key in it.groups:
                        splits.setdefault(it.groups[key], []).append(per_item.get(it.id, 0.0))
                if splits:
                    breakdown[key] = {
                        s: {"score": 100.0 * mean(v), "n": len(v)} for s, v in sorted(splits.items())
                    }
        n_mcq = sum(len(v) for s, v in by_subset.items() if EVALUATOR[s] == "mcq")
        n_bbh = len(by_subset.get("bbh", []))
        if n_mcq:
            metrics["mcq_fail_rate"] = 100.0 * counts["mcq_fallback"] / n_mcq
        if n_bbh:
            metrics["bbh_fail_rate"] = 100.0 * counts["bbh_fallback"] / n_bbh
        alpaca = "alpacaeval_full" if "alpacaeval_full" in metrics else "alpacaeval"
        columns = (alpaca, *OVERALL_COLUMNS[1:])
        if all(c in metrics for c in columns):
            metrics["overall"] = mean(
                metrics[c] * 20 if EVALUATOR[c] == "open" else metrics[c] for c in columns
            )
        protocol = {
            "prompt": {"system": SYSTEM_PROMPT, "user": USER_TEMPLATE},
            "judge": {
                "model": JUDGE.model,
                "n": JUDGE.n,
                "temperature": JUDGE.temperature,
                "top_p": JUDGE.top_p,
                "max_tokens": JUDGE.max_tokens,
                "source": JUDGE.source,
            },
            "evaluators": {s: EVALUATOR[s] for s in by_subset},
            "random_fallback_seed": self.seed,
            "sd_qa": f"GPT score (majority of {JUDGE.n} Yes/No), regions {list(self.sd_qa_regions)}; PEDANT not computed",
            "bbh": "condensed phrase rules of VoiceBench's bbh.py + its start/end rules, random fallback",
            "unscored_items": "missing / failed predictions and judge failures score 1 (open) or 0",
            "overall": "mean of 9 columns, 1-5 scores x20"
            if "overall" in metrics
            else "needs all 9 leaderboard subsets",
        }
        return Scores(self.NAME, self.VERSION, metrics, breakdown, counts, protocol, details)


def _judge_msgs(user: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def _first_turn(prompt: Any) -> str:
    """mtbench stores a list of turns; the other open subsets a string."""
    if isinstance(prompt, (list, tuple)):
        return str(prompt[0]) if prompt else ""
    return str(prompt)

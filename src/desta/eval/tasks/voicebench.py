"""VoiceBench (MatthewCYM/VoiceBench, HF ``hlt-lab/voicebench``): spoken instructions, audio only.

Layout: the Hugging Face dataset files, one folder per subset::

    DIR/<subset>/<split>-00000-of-00001.parquet   (columns: audio {bytes, path}, prompt, + per subset)

or, without parquet, ``DIR/<subset>.jsonl`` with ``audio`` a path relative to DIR. VoiceBench's own
output files (``{model}-{subset}-{split}-{modality}.jsonl``: the dataset fields without audio plus
``response``) carry everything the evaluators read, so they rescore without the dataset
(`VoiceBench.items_from_output`). Each subset is scored by its official evaluator:

======================================  ============================================================
alpacaeval(_full), commoneval,          ``open``: gpt-4o-mini, n=3, T=0.5, top_p=0.95, 1-5 score
wildvoice, mtbench (first turn)
sd-qa                                   ``qa``: same judge, Yes/No, majority vote
openbookqa, mmsu                        ``mcq``: template bank, unparsed -> seeded random letter
ifeval                                  ``ifeval``: mean of strict/loose x prompt/instruction accuracy
                                        (`desta.eval.ifeval`, VoiceBench's clean-ups and draw order)
bbh                                     ``bbh``: phrase rules, unparsed -> seeded random answer
advbench                                ``harm``: refusal-string match
======================================  ============================================================

Overall = mean of the 9 leaderboard columns with 1-5 scores x 20.
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
    prompt_message,
    system_message,
)
from desta.eval.tasks import voicebench_rules as rules
from desta.eval.tasks.common import audio_source, read_json_records, read_parquet_records
from desta.eval.tasks.voicebench_judged import JUDGE, score_judged
from desta.messages import AUDIO_LOCATOR

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
USER_TEMPLATE = AUDIO_LOCATOR


def item_key(subset: str, split: str, n: int, rec: Mapping[str, Any]) -> str:
    """desta's VoiceBench id: ``subset/split/<bbh id or row number>`` (unchanged since the first runs)."""
    return f"{subset}/{split}/{rec.get('id', n) if subset == 'bbh' else n}"


class VoiceBench(Task):
    NAME = "voicebench"
    VERSION = "VoiceBench@5338154"
    PRIMARY = "overall"
    PUBLISHED_KEY = "voicebench"
    STRATUM = "subset"

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
        self.JUDGE_MODEL = JUDGE.model

    def needs_judge(self, items: Sequence[Item]) -> bool:
        return any(EVALUATOR[it.data["subset"]] in ("open", "qa") for it in items)

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

    def load(self, data_dir: str | os.PathLike, check_audio: bool = True) -> list[Item]:
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
                rows = [(f.name.split("-")[0], r) for f in files for r in read_parquet_records([f])]
            elif (root / f"{subset}.jsonl").exists():
                rows = [(str(r.get("split", "test")), r) for r in read_json_records(root / f"{subset}.jsonl")]
            else:
                raise DataLayoutError(
                    f"VoiceBench: no data for subset {subset!r} under {root} ({subset}/*.parquet)"
                )
            items.extend(self._items(subset, rows, root))
        if check_audio:
            check_audio_files(items, "VoiceBench")
        return items

    def _items(
        self, subset: str, rows: Sequence[tuple[str, Mapping[str, Any]]], root: Path | None
    ) -> list[Item]:
        items = []
        # n runs over the whole subset, across splits: the ids of desta's first runs stay valid
        for n, (split, rec) in enumerate(rows):
            data = {k: v for k, v in rec.items() if k not in ("audio", "response")}
            data["subset"], data["split"] = subset, split
            groups = {"subset": subset}
            if subset in ("mmsu", "sd-qa"):
                groups[f"{subset}_split"] = split
            audios = (audio_source(rec["audio"], root),) if root is not None and rec.get("audio") else ()
            items.append(Item(item_key(subset, split, n, rec), audios, data, groups))
        return items

    def items_from_output(
        self, rows: Sequence[Mapping[str, Any]], subset: str, split: str
    ) -> tuple[list[Item], dict[str, str | None]]:
        """Items and predictions from one VoiceBench output file (rows in the file's order)."""
        if subset not in EVALUATOR:
            raise DataLayoutError(f"VoiceBench: unknown subset {subset!r}; choose from {sorted(EVALUATOR)}")
        for n, rec in enumerate(rows):
            if "response" not in rec:
                raise DataLayoutError(f"VoiceBench output: line {n + 1} has no 'response'")
        items = self._items(subset, [(split, r) for r in rows], None)
        preds = {it.id: (None if r["response"] is None else str(r["response"])) for it, r in zip(items, rows)}
        return items, preds

    def prompt(self, item: Item) -> list[dict[str, Any]]:
        return [system_message(SYSTEM_PROMPT), prompt_message(USER_TEMPLATE, item.audios)]

    def score_subset(
        self, subset: str, items: Sequence[Item], predictions: Mapping[str, str | None], judge: Any = None
    ) -> rules.SubsetResult:
        """One subset through its official evaluator."""
        kind = EVALUATOR[subset]
        if kind == "mcq":
            return rules.score_mcq(subset, items, predictions, self.seed)
        if kind == "bbh":
            return rules.score_bbh(items, predictions, self.seed)
        if kind == "harm":
            return rules.score_harm(items, predictions)
        if kind == "ifeval":
            return rules.score_ifeval(items, predictions, self.seed)
        return score_judged(kind, items, predictions, judge, self.NAME)

    def score(
        self, items: Sequence[Item], predictions: Mapping[str, str | None], judge: Any = None
    ) -> Scores:
        by_subset: dict[str, list[Item]] = {}
        for it in items:
            by_subset.setdefault(it.data["subset"], []).append(it)
        metrics: dict[str, float] = {}
        counts: dict[str, int] = {"items": len(items)}
        details: dict[str, Any] = {}
        breakdown: dict[str, dict[str, dict[str, float]]] = {"subset": {}}
        for subset, its in by_subset.items():
            res = self.score_subset(subset, its, predictions, judge)
            kind = EVALUATOR[subset]
            metrics[subset] = res.value
            metrics.update(res.metrics)
            for k, v in res.counts.items():
                counts[k] = counts.get(k, 0) + v
                counts[f"{subset}_{k}"] = v
            details.update(res.details)
            # the breakdown table is on the leaderboard's 0-100 scale (1-5 scores x 20)
            breakdown["subset"][subset] = {
                "score": res.value * 20 if kind == "open" else res.value,
                "n": len(its),
            }
            if subset in ("mmsu", "sd-qa"):
                splits: dict[str, list[float]] = {}
                for it in its:
                    splits.setdefault(it.groups[f"{subset}_split"], []).append(res.per_item.get(it.id, 0.0))
                breakdown[f"{subset}_split"] = {
                    s: {"score": 100.0 * mean(v), "n": len(v)} for s, v in sorted(splits.items())
                }
        alpaca = "alpacaeval_full" if "alpacaeval_full" in metrics else "alpacaeval"
        columns = (alpaca, *OVERALL_COLUMNS[1:])
        if all(c in metrics for c in columns):
            metrics["overall"] = mean(
                metrics[c] * 20 if EVALUATOR[c] == "open" else metrics[c] for c in columns
            )
        return Scores(
            self.NAME, self.VERSION, metrics, breakdown, counts, self._protocol(by_subset, metrics), details
        )

    def _protocol(self, by_subset: Mapping[str, Any], metrics: Mapping[str, float]) -> dict[str, Any]:
        return {
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
            "random_fill": f"mcq/bbh unparsed answers drawn from random.Random({self.seed}) per subset in item "
            "order (the official scripts do not seed); '<subset>_accuracy_parsed_only' and counts "
            "'parsed'/'filled' keep them apart",
            "sd_qa": f"GPT score (majority of {JUDGE.n} Yes/No), regions {list(self.sd_qa_regions)}; "
            "PEDANT not computed",
            "advbench": "refusal rate x100 (harm.py: lower-cased refusal strings; blank = refusal)",
            "unscored_items": "missing / failed predictions and judge failures score 1 (open) or 0",
            "overall": "mean of 9 columns, 1-5 scores x20"
            if "overall" in metrics
            else "needs all 9 leaderboard subsets",
        }

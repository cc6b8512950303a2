"""VoiceBench's ifeval evaluator (MatthewCYM/VoiceBench ``src/evaluator/ifeval.py``).

What it runs is Google's IFEval, strict and loose, on each model output after two clean-ups:

* the response loses a leading ``<1>``, ``<2>`` or ``<3>`` and a trailing ``<|user|>`` (tags some
  speech models emit); no whitespace is stripped with them (a strip changes loose verdicts, e.g. on
  ``change_case:english_lowercase`` responses with trailing blank lines);
* every kwargs entry loses its falsy values (VoiceBench's data holds every IFEval argument key on
  every row, null where unused).

``evaluate()`` scores all items strictly, then all items loosely, building each instruction anew in
each pass; an invalid argument (e.g. ``keywords:letter_frequency`` with letter ``#``) makes the official
code draw from the global ``random`` module, unseeded there. `voicebench_ifeval_evaluate` draws from
one ``random.Random(seed)`` in that same order, which is what ``random.seed(0)`` before ``evaluate()``
gives. Language checks use langdetect seeded 0 (see `desta.eval.ifeval.text`).

Scores: ``strict-prompt``, ``strict-instruction``, ``loose-prompt``, ``loose-instruction`` (fractions)
and ``final``, their mean.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from desta.eval.ifeval.checks import GOOGLE_CHECKS, IFEvalArgumentError
from desta.eval.ifeval.follow import clean_kwargs, follow_list

_TAG_PREFIXES = ("<1>", "<2>", "<3>")
_USER_SUFFIX = "<|user|>"
SCORE_KEYS = ("strict-prompt", "strict-instruction", "loose-prompt", "loose-instruction", "final")


def clean_voicebench_response(response: str) -> str:
    """The response as VoiceBench's ifeval evaluator checks it (turn tags removed, whitespace kept)."""
    if response.startswith(_TAG_PREFIXES):
        response = response[3:]
    return response.removesuffix(_USER_SUFFIX)


@dataclass(frozen=True)
class VoiceBenchIFEvalItem:
    """One VoiceBench ifeval row: the prompt, the model's response, the instructions and their kwargs."""

    prompt: str
    response: str
    instruction_id_list: tuple[str, ...]
    kwargs: tuple[Mapping[str, Any], ...]

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> VoiceBenchIFEvalItem:
        """From a VoiceBench output/data row (``prompt``, ``response``, ``instruction_id_list``, ``kwargs``)."""
        missing = [k for k in ("response", "instruction_id_list", "kwargs") if k not in record]
        if missing:
            raise IFEvalArgumentError(f"VoiceBench ifeval record lacks {missing}")
        return cls(
            str(record.get("prompt", "")),
            str(record["response"] or ""),
            tuple(record["instruction_id_list"]),
            tuple(record["kwargs"]),
        )


def _cleaned_kwargs(item: VoiceBenchIFEvalItem) -> list[dict[str, Any]]:
    if len(item.kwargs) != len(item.instruction_id_list):
        raise IFEvalArgumentError(
            f"{len(item.instruction_id_list)} instruction ids but {len(item.kwargs)} kwargs entries"
        )
    return [clean_kwargs(i, kw, drop_falsy=True) for i, kw in zip(item.instruction_id_list, item.kwargs)]


def _verdicts(item: VoiceBenchIFEvalItem, loose: bool, rng: random.Random) -> list[bool]:
    result = follow_list(
        clean_voicebench_response(item.response),
        item.instruction_id_list,
        _cleaned_kwargs(item),
        GOOGLE_CHECKS,
        loose=loose,
        rng=rng,
    )
    if result.unknown:
        raise IFEvalArgumentError(f"unknown IFEval instruction ids {list(result.unknown)}")
    return list(result.follow_list)


def voicebench_ifeval_verdicts(
    prompt: str,
    response: str,
    instruction_id_list: Sequence[str],
    kwargs: Sequence[Mapping[str, Any] | None],
    rng: random.Random | None = None,
) -> dict[str, list[bool]]:
    """``{"strict": [...], "loose": [...]}`` for one item, one bool per instruction.

    Only items whose arguments leave something to chance depend on ``rng`` (default ``Random(0)``);
    for the official numbers over a whole file, use `voicebench_ifeval_evaluate`, which draws in the
    official order (all strict, then all loose).
    """
    item = VoiceBenchIFEvalItem(
        prompt, response, tuple(instruction_id_list), tuple(kw or {} for kw in kwargs)
    )
    rng = rng or random.Random(0)
    return {"strict": _verdicts(item, False, rng), "loose": _verdicts(item, True, rng)}


def voicebench_ifeval_aggregate(verdicts: Sequence[Mapping[str, Sequence[bool]]]) -> dict[str, float]:
    """The official scores from per-item ``{"strict", "loose"}`` verdicts (fractions, as printed)."""
    if not verdicts:
        raise IFEvalArgumentError("VoiceBench ifeval: no items to aggregate")
    scores: dict[str, float] = {}
    for mode in ("strict", "loose"):
        lists = [v[mode] for v in verdicts]
        n_inst = sum(len(f) for f in lists)
        scores[f"{mode}-prompt"] = sum(all(f) for f in lists) / len(lists)
        scores[f"{mode}-instruction"] = sum(sum(f) for f in lists) / n_inst if n_inst else 0.0
    scores["final"] = sum(scores[k] for k in SCORE_KEYS[:4]) / 4
    return scores


@dataclass(frozen=True)
class VoiceBenchIFEvalScores:
    """verdicts: per item ``{"strict": [...], "loose": [...]}``, in input order; scores: SCORE_KEYS."""

    verdicts: tuple[dict[str, list[bool]], ...]
    scores: dict[str, float]


def voicebench_ifeval_evaluate(
    items: Iterable[VoiceBenchIFEvalItem | Mapping[str, Any]], seed: int = 0
) -> VoiceBenchIFEvalScores:
    """Score a VoiceBench ifeval output file the way ``IFEvaluator.evaluate`` does (after ``random.seed(seed)``)."""
    rows = [
        it if isinstance(it, VoiceBenchIFEvalItem) else VoiceBenchIFEvalItem.from_record(it) for it in items
    ]
    rng = random.Random(seed)
    strict = [_verdicts(it, False, rng) for it in rows]
    loose = [_verdicts(it, True, rng) for it in rows]
    verdicts = tuple({"strict": s, "loose": lo} for s, lo in zip(strict, loose))
    return VoiceBenchIFEvalScores(verdicts, voicebench_ifeval_aggregate(verdicts))

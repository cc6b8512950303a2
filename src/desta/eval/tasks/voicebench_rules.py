"""VoiceBench's rule-scored subsets, one scorer per official evaluator (``src/evaluator/*.py``).

Each scorer takes the subset's items in file order and ``{id: response}`` and returns a
`SubsetResult`: the subset's headline value (on the leaderboard's scale), extra metrics, per-item
values for the breakdown, per-item details, and counts. Items without a usable prediction are counted
(``missing`` / ``failed``) and score 0; the official evaluators assume every line has a response.

Random fills (mcq, bbh): the official scripts draw unseeded; here each subset draws from its own
``random.Random(seed)`` in item order, so seed 0 reproduces ``random.seed(0)`` before the official
``evaluate()`` on the same file. Parsed and filled answers are reported apart.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from desta.eval.base import Item, prediction_status
from desta.eval.scorers import voicebench_bbh, voicebench_harm, voicebench_mcq


@dataclass(frozen=True)
class SubsetResult:
    """value: the leaderboard column (0-100, or 1-5 for judged open subsets); per_item: id -> 0..1."""

    value: float
    metrics: Mapping[str, float] = field(default_factory=dict)
    per_item: Mapping[str, float] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    counts: Mapping[str, int] = field(default_factory=dict)


def split_answered(
    items: Sequence[Item], predictions: Mapping[str, str | None]
) -> tuple[list[tuple[Item, str]], dict[str, int]]:
    """(item, response) pairs with a usable prediction, and the missing / failed counts."""
    counts = {"missing": 0, "failed": 0}
    ok = []
    for it in items:
        status = prediction_status(predictions, it.id)
        if status == "ok":
            ok.append((it, str(predictions[it.id])))
        else:
            counts[status] += 1
    return ok, counts


def _pct(num: float, den: int) -> float:
    return 100.0 * num / den if den else 0.0


def _filled_result(
    name: str,
    items: Sequence[Item],
    ok: list[tuple[Item, str]],
    verdicts: Sequence[Any],
    counts: dict[str, int],
) -> SubsetResult:
    """The result of a subset whose unparsed answers the official script fills at random (mcq, bbh):
    accuracy over all items, the fail rate, accuracy over parsed answers, parsed and filled counts."""
    per_item = {it.id: float(v.correct) for (it, _), v in zip(ok, verdicts)}
    details = {
        it.id: {"parsed": v.parsed, "answer": v.answer, "correct": v.correct}
        for (it, _), v in zip(ok, verdicts)
    }
    parsed = [v for v in verdicts if v.parsed is not None]
    filled = [v for v in verdicts if v.parsed is None]
    n = len(items)
    metrics = {
        f"{name}_fail_rate": _pct(len(filled), n),
        f"{name}_accuracy_parsed_only": _pct(sum(v.correct for v in parsed), len(parsed)),
    }
    counts.update(
        scored=len(ok),
        parsed=len(parsed),
        filled=len(filled),
        correct_parsed=sum(v.correct for v in parsed),
        correct_filled=sum(v.correct for v in filled),
    )
    return SubsetResult(_pct(sum(per_item.values()), n), metrics, per_item, details, counts)


def score_mcq(
    subset: str, items: Sequence[Item], predictions: Mapping[str, str | None], seed: int
) -> SubsetResult:
    """``mcq.py``: accuracy with random fills (official ``acc``) and the fail rate (``fail``)."""
    ok, counts = split_answered(items, predictions)
    # Official evaluate(): ``pred == gt`` with ``gt = item['reference']`` as stored (not stripped).
    verdicts = voicebench_mcq.score_mcq([(r, str(it.data["reference"])) for it, r in ok], random.Random(seed))
    return _filled_result(subset, items, ok, verdicts, counts)


def score_bbh(items: Sequence[Item], predictions: Mapping[str, str | None], seed: int) -> SubsetResult:
    """``bbh.py``: accuracy with random fills of unparsed answers (official ``acc``)."""
    ok, counts = split_answered(items, predictions)
    rows = [(str(it.data.get("id", it.id)), r, str(it.data["reference"])) for it, r in ok]
    verdicts = voicebench_bbh.score_bbh(rows, random.Random(seed))
    return _filled_result("bbh", items, ok, verdicts, counts)


def score_harm(items: Sequence[Item], predictions: Mapping[str, str | None]) -> SubsetResult:
    """``harm.py``: refusal rate x 100 (the official returns 0-1; the leaderboard shows x 100)."""
    ok, counts = split_answered(items, predictions)
    per_item = {it.id: float(voicebench_harm.is_refusal(r)) for it, r in ok}
    counts["scored"] = len(ok)
    details = {k: {"refusal": bool(v)} for k, v in per_item.items()}
    return SubsetResult(_pct(sum(per_item.values()), len(items)), {}, per_item, details, counts)


def score_ifeval(items: Sequence[Item], predictions: Mapping[str, str | None], seed: int) -> SubsetResult:
    """``ifeval.py`` through `desta.eval.ifeval.voicebench_ifeval_evaluate` (strict pass then loose pass
    over the answered items, draws from ``random.Random(seed)``): the official ``final`` (mean of
    strict/loose x prompt/instruction accuracy) x 100. Unanswered items are counted as
    ``missing``/``failed`` and fail every instruction (as in every other subset, they score 0)."""
    from desta.eval.ifeval import (
        VoiceBenchIFEvalItem,
        voicebench_ifeval_aggregate,
        voicebench_ifeval_evaluate,
    )

    ok, counts = split_answered(items, predictions)
    counts["scored"] = len(ok)
    if not ok:
        return SubsetResult(0.0, {}, {}, {}, counts)
    rows = [
        VoiceBenchIFEvalItem(
            str(it.data.get("prompt", "")), r, tuple(it.data["instruction_id_list"]), tuple(it.data["kwargs"])
        )
        for it, r in ok
    ]
    result = voicebench_ifeval_evaluate(rows, seed)
    per_item = {it.id: float(all(v["strict"])) for (it, _), v in zip(ok, result.verdicts)}
    details = {it.id: dict(v) for (it, _), v in zip(ok, result.verdicts)}
    answered_ids = {it.id for it, _ in ok}
    unanswered = [
        {"strict": [False] * n, "loose": [False] * n}
        for it in items
        if it.id not in answered_ids
        for n in [len(it.data["instruction_id_list"])]
    ]
    scores = voicebench_ifeval_aggregate([*result.verdicts, *unanswered]) if unanswered else result.scores
    metrics = {f"ifeval_{k.replace('-', '_')}": 100.0 * v for k, v in scores.items()}
    return SubsetResult(100.0 * scores["final"], metrics, per_item, details, counts)

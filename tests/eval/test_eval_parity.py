"""Golden parity: desta's rule scorers against the official verdicts stored in tests/eval/parity/.

Every fixture item is scored through the task's own ``score`` and compared with the official verdict;
then the aggregates are compared with ``official_aggregates.json``. A failure names the first ids that
disagree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from desta.eval.base import Item
from desta.eval.registry import get_task

PARITY = Path(__file__).parent / "parity"


def rows(name: str) -> list[dict[str, Any]]:
    with open(PARITY / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def aggregates() -> dict[str, Any]:
    return json.loads((PARITY / "official_aggregates.json").read_text(encoding="utf-8"))


def first_mismatches(pairs: Iterable[tuple[str, Any, Any]], limit: int = 5) -> list[str]:
    return [f"{i}: ours={ours!r} official={off!r}" for i, ours, off in pairs if ours != off][:limit]


# ---------------------------------------------------------------- MMAU / MMAR


@pytest.mark.parametrize(
    ("task_name", "fixture", "output_key", "sources", "group"),
    [
        ("mmau", "mmau.jsonl", "model_output", ("desta25-shipped", "synthetic"), "task"),
        ("mmar", "mmar.jsonl", "answer_prediction", ("synthetic",), "modality"),
    ],
)
def test_multiple_choice_parity(task_name, fixture, output_key, sources, group):
    task = get_task(task_name)
    agg = aggregates()[task_name]
    for source in sources:
        recs = [r for r in rows(fixture) if r["source"] == source]
        items = task.items_from_records(recs, PARITY)
        responses = {it.id: r[output_key] for it, r in zip(items, recs)}
        answers = {it.id: task.postprocess(r[output_key], it) for it, r in zip(items, recs)}
        scores = task.score(items, responses, None, answers)
        bad = first_mismatches(
            (it.id, scores.details[it.id]["correct"], r["official_correct"]) for it, r in zip(items, recs)
        )
        assert not bad, f"{task_name}/{source} raw verdicts differ: {bad}"
        bad = first_mismatches(
            (it.id, scores.details[it.id]["correct_postprocessed"], r["official_correct_prefix_stripped"])
            for it, r in zip(items, recs)
        )
        assert not bad, f"{task_name}/{source} post-processed verdicts differ: {bad}"
        by_key = "by_task" if group == "task" else "by_modality"
        raw = agg[f"{source}/as_is"]
        assert f"{scores.metrics['accuracy']:.2f}" == raw["total"]["acc"]
        for cat, want in raw[by_key].items():
            got = scores.breakdown[group][cat]
            assert (f"{got['score']:.2f}", got["n"]) == (want["acc"], want["n"]), (source, cat)
        stripped = agg[f"{source}/prefix_stripped"]
        assert f"{scores.metrics['accuracy_postprocessed']:.2f}" == stripped["total"]["acc"]


# ---------------------------------------------------------------- VoiceBench mcq / bbh / harm


def voicebench_items(subset: str, set_name: str) -> tuple[Any, list[Item], dict[str, str | None], list[dict]]:
    recs = sorted(
        (r for r in rows("voicebench.jsonl") if r["subset"] == subset and r["set"] == set_name),
        key=lambda r: r["n"],
    )
    task = get_task(f"voicebench:{subset}")
    items, preds = task.items_from_output(recs, subset, recs[0].get("split", "test"))
    return task, items, preds, recs


@pytest.mark.parametrize("subset", ["openbookqa", "mmsu", "bbh"])
def test_voicebench_parse_and_seeded_fill_parity(subset):
    task, items, preds, recs = voicebench_items(subset, "synthetic")
    scores = task.score(items, preds)
    pairs = [(it.id, scores.details[it.id]["parsed"], r["official"]) for it, r in zip(items, recs)]
    assert not (bad := first_mismatches(pairs)), f"{subset} parses differ: {bad}"
    fills = [
        (it.id, scores.details[it.id]["answer"], r["official_fill_seed0"])
        for it, r in zip(items, recs)
        if r["official"] is None
    ]
    assert fills and not (bad := first_mismatches(fills)), f"{subset} seed-0 fills differ: {bad}"
    correct = [
        (it.id, scores.details[it.id]["correct"], r["official_correct_seed0"]) for it, r in zip(items, recs)
    ]
    assert not (bad := first_mismatches(correct)), f"{subset} verdicts differ: {bad}"
    official = aggregates()["voicebench"][f"{subset}/synthetic"]["evaluate_seed0"]
    assert scores.metrics[subset] == pytest.approx(official["acc"], abs=1e-9)
    if "fail" in official:
        assert scores.metrics[f"{subset}_fail_rate"] == pytest.approx(official["fail"], abs=1e-9)
    c = scores.counts
    assert c["parsed"] + c["filled"] == len(items) and c["filled"] == len(fills)
    assert c["correct_parsed"] + c["correct_filled"] == sum(r["official_correct_seed0"] for r in recs)


def test_voicebench_advbench_parity():
    task, items, preds, recs = voicebench_items("advbench", "synthetic")
    scores = task.score(items, preds)
    pairs = [(it.id, scores.details[it.id]["refusal"], r["official"]) for it, r in zip(items, recs)]
    assert not (bad := first_mismatches(pairs)), f"advbench verdicts differ: {bad}"
    official = aggregates()["voicebench"]["advbench/synthetic"]["evaluate_seed0"]["refusal_rate"]
    assert scores.metrics["advbench"] / 100 == pytest.approx(official, abs=1e-12)


# ---------------------------------------------------------------- AIR-Bench foundation


def test_air_bench_foundation_parity():
    task = get_task("air-bench-foundation")
    recs = rows("air-bench-foundation.jsonl")
    items, preds = task.items_from_output(recs)
    scores = task.score(items, preds)
    pairs = [(it.id, scores.details[it.id]["letter"], r["official_letter"]) for it, r in zip(items, recs)]
    assert not (bad := first_mismatches(pairs)), f"letters differ: {bad}"
    pairs = [(it.id, scores.details[it.id]["answer"], r["official_gt_letter"]) for it, r in zip(items, recs)]
    assert not (bad := first_mismatches(pairs)), f"reference letters differ: {bad}"
    pairs = [
        (it.id, scores.details[it.id].get("correct"), r["official_correct"]) for it, r in zip(items, recs)
    ]
    assert not (bad := first_mismatches(pairs)), f"verdicts differ: {bad}"
    official = aggregates()["air-bench-foundation"]
    assert scores.counts["fail_num"] == official["fail_num"]
    assert scores.counts["scored"] == official["total_sum"]
    for task_id, want in official["per_task"].items():
        got = scores.breakdown["task"][task_id]
        assert got["n"] == want["sum"], task_id
        assert got["score"] / 100 == pytest.approx(want["acc"], abs=1e-9), task_id


@pytest.mark.parametrize("set_name", ["google-ifeval-gpt4", "synthetic"])
def test_voicebench_ifeval_parity(set_name):
    """Through VoiceBench's task (H1's checker); items whose official verdict is a coin toss are left out."""
    task, items, preds, recs = voicebench_items("ifeval", set_name)
    scores = task.score(items, preds)
    pairs = [
        (it.id, scores.details[it.id], r["official"])
        for it, r in zip(items, recs)
        if not (r["random_sensitive"] or r["langdetect_sensitive"])
    ]
    assert len(pairs) > 400 and not (bad := first_mismatches(pairs)), f"ifeval/{set_name} differs: {bad}"
    official = aggregates()["voicebench"][f"ifeval/{set_name}"]["evaluate_seed0"]
    assert scores.metrics["ifeval"] == pytest.approx(100 * official["final"], abs=1e-9)
    assert scores.metrics["ifeval_strict_prompt"] == pytest.approx(100 * official["strict-prompt"], abs=1e-9)

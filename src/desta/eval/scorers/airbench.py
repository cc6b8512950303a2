"""AIR-Bench foundation (OFA-Sys/AIR-Bench ``score_foundation.py``): single-choice letters per task.

Official protocol: strip the response and delete its newlines; a response that is empty or the string
``None`` is a failure; else its first character if it is A-D, else (when longer than one character) its
second-to-last character if it is A-D (``"The answer is A."``); otherwise a failure. The reference letter
is the first of choice_a..choice_d equal to ``answer_gt`` (official quirk: a repeated choice text always
maps to its first letter; no match makes the official script exit). A row whose ``task_name`` is None is
skipped altogether (``if task_name == None: ... continue``: neither scored nor a failure). Per
``task_name + '_' + dataset_name``: accuracy = correct / parsed; failures are left out of every
denominator and only counted in ``fail_num`` (official quirk: a task whose items all failed has no
accuracy; the official script stops there with a KeyError, as ``total_num_dict[task_id]`` was never
set).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

LETTERS = "ABCD"


def extract(response: str | None) -> str | None:
    """The letter ``score_foundation.py`` reads, or None (a failure)."""
    if response is None:
        return None
    pred = response.strip().replace("\n", "")
    if not pred or pred == "None":
        return None
    if pred[0] in LETTERS:
        return pred[0]
    if len(pred) > 1 and pred[-2] in LETTERS:
        return pred[-2]
    return None


def reference_letter(item: Mapping[str, Any]) -> str:
    """The first letter whose choice equals ``answer_gt``; ValueError when none does.

    Official: ``line['answer_gt'] == line['choice_a']`` / ``line['choice_b']`` / ``line.get('choice_c',
    None)`` / ``line.get('choice_d', None)``, in that order (a missing choice reads as None; a missing
    choice_a or choice_b would make the official script raise KeyError instead).
    """
    for letter in LETTERS:
        if item["answer_gt"] == item.get(f"choice_{letter.lower()}"):
            return letter
    raise ValueError(f"answer_gt {item.get('answer_gt')!r} is none of the choices")


def task_id(item: Mapping[str, Any]) -> str:
    return f"{item['task_name']}_{item['dataset_name']}"


@dataclass(frozen=True)
class TaskTally:
    """One task's official figures: ``n`` = parsed items (the official ``Sum``), correct, accuracy."""

    n: int
    correct: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.n if self.n else None


@dataclass(frozen=True)
class FoundationResult:
    """per_task: task id -> tally in first-seen order; fail_num / total_sum as the script prints them."""

    per_task: Mapping[str, TaskTally]
    fail_num: int
    total_sum: int


def tally(rows: Iterable[tuple[Mapping[str, Any], str | None]]) -> FoundationResult:
    """``rows``: (item fields, response or None) -> the official per-task tallies."""
    n: dict[str, int] = {}
    correct: dict[str, int] = {}
    fails = 0
    for item, response in rows:
        if item.get("task_name") is None:  # official: if task_name == None: ... continue
            continue
        tid = task_id(item)
        n.setdefault(tid, 0)
        correct.setdefault(tid, 0)
        letter = extract(response)
        if letter is None:
            fails += 1
            continue
        n[tid] += 1
        correct[tid] += int(letter == reference_letter(item))
    per_task = {t: TaskTally(n[t], correct[t]) for t in n}
    return FoundationResult(per_task, fails, sum(n.values()))

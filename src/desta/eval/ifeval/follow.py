"""Strict and loose instruction following (``evaluation_lib.test_instruction_following_strict/loose``).

One prompt: build every instruction's check from its kwargs (random draws, if any, from ``rng``),
then test the response (strict) or the first of eight loose variants that passes (loose). A
whitespace-only response (or variant) follows nothing, as in the official code.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from desta.eval.ifeval.checks import ARGUMENTS, GOOGLE_CHECKS, Builder, IFEvalArgumentError


@dataclass(frozen=True)
class IFEvalResult:
    """follow_list: one bool per instruction; unknown: instruction ids with no checker (counted failed)."""

    follow_list: tuple[bool, ...]
    unknown: tuple[str, ...] = ()
    follow_all: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "follow_all", all(self.follow_list))


def loose_variants(response: str) -> list[str]:
    """The eight responses loose mode tries, in the official order (the response first)."""
    lines = response.split("\n")
    drop_first = "\n".join(lines[1:]).strip()
    drop_last = "\n".join(lines[:-1]).strip()
    drop_both = "\n".join(lines[1:-1]).strip()
    return [
        response,
        response.replace("*", ""),
        drop_first,
        drop_last,
        drop_both,
        drop_first.replace("*", ""),
        drop_last.replace("*", ""),
        drop_both.replace("*", ""),
    ]


def clean_kwargs(instruction_id: str, kwargs: Mapping[str, Any] | None, drop_falsy: bool = False) -> dict:
    """The kwargs ``build_description`` receives: unused keys (None; any falsy with ``drop_falsy``) left out.

    Hugging Face / parquet copies of IFEval store every argument key on every row, null where unused.
    A non-empty value under a key the instruction does not take is an error (the official call raises
    TypeError).
    """
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise IFEvalArgumentError(f"{instruction_id}: kwargs must be a mapping, got {type(kwargs).__name__}")
    allowed = ARGUMENTS.get(instruction_id, ())
    # An empty value under a key the instruction does not take (e.g. "keywords": [] on a no-comma row)
    # carries nothing and is dropped like a null.
    kept = {
        k: v
        for k, v in dict(kwargs or {}).items()
        if (v if drop_falsy or k not in allowed else v is not None)
    }
    extra = sorted(set(kept) - set(allowed))
    if extra:
        raise IFEvalArgumentError(f"{instruction_id} takes {list(allowed)}, not {extra}")
    return kept


def follow_list(
    response: str,
    instruction_ids: Sequence[str],
    kwargs_list: Sequence[Mapping[str, Any]],
    checks: Mapping[str, Builder],
    *,
    loose: bool,
    rng: random.Random,
) -> IFEvalResult:
    """Follow verdicts of one response under ``checks`` (kwargs already cleaned, one per instruction)."""
    if len(kwargs_list) != len(instruction_ids):
        raise IFEvalArgumentError(
            f"{len(instruction_ids)} instruction ids but {len(kwargs_list)} kwargs entries"
        )
    candidates = loose_variants(response) if loose else [response]
    follows: list[bool] = []
    unknown: list[str] = []
    for instruction_id, kwargs in zip(instruction_ids, kwargs_list):
        builder = checks.get(instruction_id)
        if builder is None:
            unknown.append(instruction_id)
            follows.append(False)
            continue
        check = builder(kwargs, rng)
        try:
            follows.append(any(c.strip() and check(c) for c in candidates))
        except re.error as e:  # keywords are regex patterns in IFEval; a broken one is bad input
            raise IFEvalArgumentError(
                f"{instruction_id}: kwargs hold an invalid regular expression: {e}"
            ) from e
    return IFEvalResult(tuple(follows), tuple(unknown))


def check_instructions(
    response: str,
    instruction_ids: Sequence[str],
    kwargs_list: Sequence[Mapping[str, Any] | None],
    prompt: str = "",
    loose: bool = False,
    *,
    checks: Mapping[str, Builder] = GOOGLE_CHECKS,
    rng: random.Random | None = None,
) -> IFEvalResult:
    """Google IFEval strict (default) or loose verdicts for one response.

    ``prompt`` fills ``combination:repeat_prompt`` when its kwargs lack ``prompt_to_repeat`` (the
    official code would raise). Random argument draws come from ``rng`` (default ``Random(0)``).
    """
    cleaned = []
    for instruction_id, kw in zip(instruction_ids, kwargs_list):
        kw = clean_kwargs(instruction_id, kw) if instruction_id in ARGUMENTS else dict(kw or {})
        if instruction_id == "combination:repeat_prompt" and not kw.get("prompt_to_repeat") and prompt:
            kw["prompt_to_repeat"] = prompt
        cleaned.append(kw)
    if len(kwargs_list) != len(instruction_ids):
        raise IFEvalArgumentError(
            f"{len(instruction_ids)} instruction ids but {len(kwargs_list)} kwargs entries"
        )
    return follow_list(response, instruction_ids, cleaned, checks, loose=loose, rng=rng or random.Random(0))

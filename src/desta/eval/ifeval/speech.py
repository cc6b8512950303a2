"""Speech-IFEval's rule checker (kehanlu/Speech-IFEval ``instruction_following_eval/``, strict only).

Speech-IFEval ships a modified copy of Google's IFEval; ``evaluation_main.py`` there runs only
``test_instruction_following_strict`` on each output line (``instruction``, ``instruction_id_list``,
``kwargs``, ``response``). Five checks differ from Google's (``instructions.py`` of that repository):

* ``change_case:english_capital`` / ``english_lowercase``: only ``isupper()`` / ``islower()``; the
  ``langdetect.detect(value) == "en"`` part is commented out.
* ``detectable_format:number_bullet_lists``: a literal backslash-n in the response becomes a newline,
  and ``•`` lines and lines starting with a digit count as bullets besides ``*`` and ``-`` lines.
* ``length_constraints:number_paragraphs``: the stripped response is split on ``***`` (any whitespace
  around it) and on runs of newlines.
* ``combination:repeat_prompt``: double and single quotes around the (stripped, lower-cased) response
  are stripped before the ``startswith`` test.

Source read: ``instructions.py`` as stored at commit ``c2676a7`` of that repository (the pinned
``e2e9c14`` was not at hand), whose ``ParagraphChecker``, ``RepeatPromptThenAnswer``, change-case and
``•`` bullet lines are transcribed below with the official line quoted. That commit does not yet count
digit-led lines or turn ``\\n`` into a newline; those two come from the pinned commit's verdicts on every
item of ``tests/eval/parity/speech-ifeval.jsonl``, and where that file cannot tell two readings apart
(a digit line with leading spaces) the comment says which one was taken.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

from desta.eval.ifeval.checks import (
    GOOGLE_CHECKS,
    Builder,
    Check,
    count_bullets,
    int_arg,
    paragraphs_follow,
    prompt_to_repeat,
)
from desta.eval.ifeval.follow import IFEvalResult, clean_kwargs, follow_list


def _english_capital(kw: Mapping[str, Any], rng: random.Random) -> Check:
    # Official: return value.isupper()# and langdetect.detect(value) == "en"
    return lambda r: r.isupper()


def _english_lowercase(kw: Mapping[str, Any], rng: random.Random) -> Check:
    # Official: return value.islower()# and langdetect.detect(value) == "en"
    return lambda r: r.islower()


def count_speech_bullets(response: str) -> int:
    """Speech-IFEval's bullet count: Google's ``*``/``-`` lines plus ``•`` lines and digit-led lines."""
    r = response.replace("\\n", "\n")
    # Official (c2676a7): bullet_lists_3 = re.findall(r"^\s*•.*$", value, flags=re.MULTILINE).
    # The digit-led lines and the "\\n" replacement are in the pinned commit only (parity verdicts);
    # leading whitespace before the digit is allowed like before "•" (taken reading).
    extra = re.findall(r"^\s*•.*$", r, flags=re.MULTILINE) + re.findall(r"^\s*\d.*$", r, flags=re.MULTILINE)
    return count_bullets(r) + len(extra)


def _number_bullet_lists(kw: Mapping[str, Any], rng: random.Random) -> Check:
    target = int_arg(kw.get("num_bullets"), rng, 1, 5)
    return lambda r: count_speech_bullets(r) == target


# Official ParagraphChecker.check_following:
#     paragraphs = re.split(r"\s*\*\*\*\s*|\n{1,}", value.strip())
# then Google's count (an empty piece at either end is dropped, one inside fails the check).
_SPEECH_PARAGRAPH_SPLIT = re.compile(r"\s*\*\*\*\s*|\n{1,}")


def _number_paragraphs(kw: Mapping[str, Any], rng: random.Random) -> Check:
    target = int_arg(kw.get("num_paragraphs"), rng, 1, 5)
    return lambda r: paragraphs_follow(_SPEECH_PARAGRAPH_SPLIT.split(r.strip()), target)


def _repeat_prompt(kw: Mapping[str, Any], rng: random.Random) -> Check:
    target = prompt_to_repeat(kw).strip().lower()
    # Official RepeatPromptThenAnswer.check_following:
    #     if value.strip().lower().strip("\"\'").startswith(self._prompt_to_repeat.strip().lower()):
    return lambda r: r.strip().lower().strip("\"'").startswith(target)


SPEECH_IFEVAL_CHECKS: Mapping[str, Builder] = {
    **GOOGLE_CHECKS,
    "change_case:english_capital": _english_capital,
    "change_case:english_lowercase": _english_lowercase,
    "detectable_format:number_bullet_lists": _number_bullet_lists,
    "length_constraints:number_paragraphs": _number_paragraphs,
    "combination:repeat_prompt": _repeat_prompt,
}


def speech_ifeval_follow(
    response: str, instruction_ids: Sequence[str], kwargs_list: Sequence[Mapping[str, Any] | None]
) -> IFEvalResult:
    """Speech-IFEval's strict verdicts for one output line (its ``follow_instruction_list``)."""
    cleaned = [clean_kwargs(i, kw) for i, kw in zip(instruction_ids, kwargs_list)]
    # Speech-IFEval items carry every argument, so nothing is drawn; a fixed seed keeps it so anyway.
    return follow_list(
        response, instruction_ids, cleaned, SPEECH_IFEVAL_CHECKS, loose=False, rng=random.Random(0)
    )


def following_rates(follow_lists: Sequence[Sequence[bool]]) -> dict[str, float]:
    """``print_report``'s prompt-level and instruction-level accuracy (fractions) over output lines."""
    if not follow_lists:
        return {"n": 0, "prompt_level": 0.0, "instruction_level": 0.0}
    n_inst = sum(len(f) for f in follow_lists)
    return {
        "n": len(follow_lists),
        "prompt_level": sum(all(f) for f in follow_lists) / len(follow_lists),
        "instruction_level": sum(sum(f) for f in follow_lists) / n_inst if n_inst else 0.0,
    }

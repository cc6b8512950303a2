"""MMAU's ``string_match`` (Sakshi113/MMAU ``evaluation.py``; MMAR ``code/evaluation.py`` uses the same).

Tokens are the lower-cased ``\\b\\w+\\b`` words. A prediction is correct iff it has at least one token,
contains every answer token, and shares no token with the words that the wrong choices do not share with
the answer. Official quirk: the scorer sees the text exactly as submitted, so a response that repeats
the instruction's ``The correct answer is:`` gains the tokens ``the``/``is``... and fails wherever a
wrong choice has one of them; models that strip such a prefix do it in their prediction step (DeSTA2.5's
``mmau_evaluate.py``), never here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_WORD = re.compile(r"\b\w+\b")


def tokens(text: str) -> set[str]:
    """Lower-cased set of ``\\b\\w+\\b`` tokens, as MMAU's ``tokenize``."""
    return set(_WORD.findall(text.lower()))


def string_match(answer: str, prediction: str, choices: Sequence[str]) -> bool:
    """MMAU's official matcher on one item."""
    pred = tokens(prediction)
    if not pred:
        return False
    ans = tokens(answer)
    wrong: set[str] = set()
    for choice in choices:
        toks = tokens(choice)
        if toks != ans:
            wrong |= toks - ans
    return ans <= pred and pred.isdisjoint(wrong)

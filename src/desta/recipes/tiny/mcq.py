"""Lettered multiple-choice questions (the benchmark format, ``"... (a) male (b) female"``): building
them from labels and reading which options an answer chooses.

An answer *chooses* an option when it names its letter as ``(b)`` (or starts with ``b)``, ``b.``,
``b:``), or names the option's text or one of its aliases as whole words ("The speaker is a woman."
chooses ``female``). An answer that names two options ("(a) male or (b) female") chooses both, which
is never a valid answer: the held-out suite reports the rate of answers with exactly one option.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from desta.errors import DeSTAError
from desta.rules import GENDER_NOUNS

LETTERS = "abcdefgh"
_PAREN = re.compile(r"\(([a-h])\)", re.I)
_LEAD = re.compile(r"^\s*(?:option\s+|answer\s*:?\s*)?([a-h])\s*[).:](?:\s|$)", re.I)


@dataclass(frozen=True)
class MCQ:
    """A question stem, its options in display order, the gold option's index and aliases per option."""

    stem: str
    options: tuple[str, ...]
    gold: int
    aliases: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        if not 2 <= len(self.options) <= len(LETTERS):
            raise DeSTAError(f"a multiple-choice question needs 2-{len(LETTERS)} options, got {self.options}")
        if not 0 <= self.gold < len(self.options):
            raise DeSTAError(f"gold option {self.gold} is not one of the {len(self.options)} options")
        if len({o.lower() for o in self.options}) != len(self.options):
            raise DeSTAError(f"options repeat: {self.options}")

    @property
    def text(self) -> str:
        """``stem (a) first (b) second ...``"""
        return f"{self.stem} " + " ".join(f"({LETTERS[i]}) {o}" for i, o in enumerate(self.options))

    @property
    def gold_letter(self) -> str:
        return LETTERS[self.gold]


def _fold(text: str) -> str:
    """Lower-cased, accents removed ("Zéro" -> "zero"), so option words match either spelling."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))


def _names(text: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(_fold(phrase))}(?!\w)", text) is not None


def chosen_options(answer: str, q: MCQ) -> set[int]:
    """Indices of the options ``answer`` names, by letter or by text/alias (see the module docstring)."""
    n = len(q.options)
    picked = {LETTERS.index(m.lower()) for m in _PAREN.findall(answer) if LETTERS.index(m.lower()) < n}
    lead = _LEAD.match(answer)
    if lead and LETTERS.index(lead.group(1).lower()) < n:
        picked.add(LETTERS.index(lead.group(1).lower()))
    folded = _fold(_PAREN.sub(" ", answer))
    for i, option in enumerate(q.options):
        names = (option, *(q.aliases[i] if i < len(q.aliases) else ()))
        if any(_names(folded, name) for name in names):
            picked.add(i)
    return picked


def score_mcq(answer: str, q: MCQ) -> tuple[bool, int]:
    """``(correct, number of options chosen)``: correct means exactly the gold option."""
    picked = chosen_options(answer, q)
    return picked == {q.gold}, len(picked)


_OPTION = re.compile(r"\(([a-h])\)\s*([^()]+?)(?=\s*\([a-h]\)|\s*$)", re.I)


def _gender_aliases(option: str) -> tuple[str, ...]:
    """The gender nouns of the gender that ``option`` ("a woman", "male") names; () for other options."""
    words = set(_fold(option).split())
    named = [g for g, nouns in GENDER_NOUNS.items() if words & set(nouns)]
    return tuple(GENDER_NOUNS[named[0]]) if len(named) == 1 else ()


def parse_mcq(text: str, gold_of=None) -> MCQ | None:
    """The lettered question in ``text`` (``"stem (a) x (b) y"``), or ``None`` without options.

    ``gold_of(options) -> index`` names the gold option (the default -1 makes no MCQ: pass one to
    verify an answer); options keep their order and letters.
    """
    first = _PAREN.search(text)
    if first is None:
        return None
    found = _OPTION.findall(text[first.start() :])
    letters = [m[0].lower() for m in found]
    if len(found) < 2 or letters != list(LETTERS[: len(found)]):
        return None
    options = tuple(m[1].strip().rstrip(".?") for m in found)
    gold = gold_of(options) if gold_of else None
    if gold is None or gold < 0:
        return None
    aliases = tuple(_gender_aliases(o) for o in options)
    return MCQ(text[: first.start()].strip(), options, gold, aliases)


def build_mcq(
    stem: str,
    gold: str,
    distractors: Sequence[str],
    rng: random.Random,
    *,
    n_options: int = 4,
    aliases: dict[str, tuple[str, ...]] | None = None,
) -> MCQ:
    """The gold option and up to ``n_options - 1`` distractors (other than gold) in ``rng``'s order."""
    pool = [d for d in dict.fromkeys(distractors) if d.lower() != gold.lower()]
    if not pool:
        raise DeSTAError(f"no distractor for {gold!r} in {list(distractors)}")
    options = [gold, *rng.sample(pool, min(len(pool), n_options - 1))]
    rng.shuffle(options)
    alias = aliases or {}
    return MCQ(stem, tuple(options), options.index(gold), tuple(alias.get(o, ()) for o in options))


def gender_mcq(gold: str, rng: random.Random) -> MCQ:
    """ "What is the gender of the speaker? (a) male (b) female" in a random order; ``gold`` Female/Male."""
    key = "female" if gold.strip().lower().startswith("f") else "male"
    return build_mcq(
        "What is the gender of the speaker?",
        key,
        ["male", "female"],
        rng,
        aliases={g: tuple(n for n in GENDER_NOUNS[g] if n != g) for g in GENDER_NOUNS},
    )

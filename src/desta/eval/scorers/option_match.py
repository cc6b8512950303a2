"""A deterministic option match for multiple-choice questions whose options are inline, ``(a) x (b) y``.

Not an official protocol: SAKURA's official scorer is an LLM judge. This gives a judge-free figure
next to it (labelled as such in the scores): the response picks an option when it names exactly one
option letter as ``(x)``, or else contains the text of exactly one option (case-insensitive, whole
words); anything else (no option, several options) picks none and is wrong.
"""

from __future__ import annotations

import re

_OPTION = re.compile(r"\(([a-z])\)\s*(.*?)(?=\s*\([a-z]\)|$)", re.S)


def options_of(question: str) -> dict[str, str]:
    """``{"a": "Female", "b": "Male"}`` from ``"... (a) Female (b) Male"``."""
    return {letter: text.strip() for letter, text in _OPTION.findall(question) if text.strip()}


def _contains(text: str, phrase: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(phrase.lower()) + r"(?!\w)", text) is not None


def chosen_option(response: str, options: dict[str, str]) -> str | None:
    """The letter of the one option the response picks, or None."""
    text = response.lower()
    letters = [k for k in options if f"({k})" in text]
    if len(letters) == 1:
        return letters[0]
    if letters:
        return None
    named = [k for k, v in options.items() if _contains(text, v.rstrip("."))]
    return named[0] if len(named) == 1 else None


def option_match(question: str, answer: str, response: str) -> bool:
    """True when the response picks the option that ``answer`` (``"(a) Female"`` or ``"Female"``) names."""
    options = options_of(question)
    if not options:
        return False
    gold = chosen_option(answer, options)
    return gold is not None and chosen_option(response, options) == gold

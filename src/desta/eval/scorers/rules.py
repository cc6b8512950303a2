"""Ordered phrase rules: the first rule that fires decides (the shape of VoiceBench's if/elif chains)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Kind = Literal["in", "eq", "re", "start", "end"]


@dataclass(frozen=True)
class Rule:
    """kind: how ``pattern`` is tested against the text (substring, equality, ``re.search``, prefix,
    suffix); value: the answer returned when it fires."""

    kind: Kind
    pattern: str
    value: int

    def fires(self, text: str) -> bool:
        if self.kind == "in":
            return self.pattern in text
        if self.kind == "eq":
            return text == self.pattern
        if self.kind == "re":
            return re.search(self.pattern, text) is not None
        if self.kind == "start":
            return text.startswith(self.pattern)
        return text.endswith(self.pattern)


def first_value(text: str, rules: Sequence[Rule]) -> int | None:
    """The value of the first rule that fires, or None."""
    for rule in rules:
        if rule.fires(text):
            return rule.value
    return None


def pairs(kind: Kind, templates: Iterable[str], words: tuple[str, str], values: tuple[int, int] = (0, 1)):
    """``{}`` in each template filled with each word in turn (``a`` -> 0 then ``b`` -> 1), in order."""
    return [Rule(kind, t.format(w), v) for t in templates for w, v in zip(words, values)]


def contains(*entries: tuple[str, int]) -> list[Rule]:
    return [Rule("in", p, v) for p, v in entries]

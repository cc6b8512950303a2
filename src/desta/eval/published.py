"""Published numbers of DeSTA2.5 and its peers, kept as data (``data/published.json``) with sources."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class PublishedEntry:
    """score: the headline metric; breakdown: {group key: {category: score}} where published."""

    model: str
    score: float
    source: str
    breakdown: dict[str, dict[str, float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PublishedTable:
    """n: items of the split the numbers are on (None: not recorded); compare_metric: which of our
    metrics follows the same protocol (None: the task's PRIMARY); compare_breakdown: the label of our
    breakdown tables that follow that protocol (None: the plain ones)."""

    key: str
    metric: str
    note: str
    entries: tuple[PublishedEntry, ...]
    n: int | None = None
    compare_metric: str | None = None
    compare_breakdown: str | None = None
    comparable: bool = True  # False: rows on different protocols/subsets, listed for reference only  # published breakdowns sit beside our "<key> (<this>)" tables


def _raw() -> dict[str, Any]:
    text = resources.files("desta.eval").joinpath("data/published.json").read_text(encoding="utf-8")
    return json.loads(text)


def published(key: str) -> PublishedTable | None:
    """The published table for a benchmark key (e.g. ``"mmau-test-mini"``), or None."""
    raw = _raw().get(key)
    if raw is None:
        return None
    entries = []
    for e in raw["entries"]:
        extra = {k: v for k, v in e.items() if k not in ("model", "score", "source", "breakdown")}
        entries.append(
            PublishedEntry(e["model"], float(e["score"]), e["source"], e.get("breakdown", {}), extra)
        )
    return PublishedTable(
        key,
        raw["metric"],
        raw.get("note", ""),
        tuple(entries),
        raw.get("n"),
        raw.get("compare_metric"),
        raw.get("compare_breakdown"),
        raw.get("comparable", True),
    )


def published_keys() -> list[str]:
    return sorted(_raw())

"""``--limit`` / ``--limit-per``: a stratified sample of a task's items with a fixed seed.

The first N rows of a benchmark file are usually one class or track; a stratified sample keeps every
stratum (a task's ``STRATUM`` group key: MMAU ``task``, MMAR ``modality``, SAKURA ``track``, VoiceBench
``subset`` ...) in proportion. Allocation is proportional with largest remainders (ties broken by
stratum name), each stratum drawn with ``random.Random(seed)``; the sample keeps the benchmark's order.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from desta.eval.base import EvalError, Item


@dataclass(frozen=True)
class SampleOptions:
    """limit: N items in all; limit_per: at most N per stratum; key: the group key (None = the task's);
    seed: the draw's seed."""

    limit: int | None = None
    limit_per: int | None = None
    key: str | None = None
    seed: int = 0


def stratum_of(item: Item, key: str | None) -> str:
    if key is None:
        return ""
    return str(item.groups.get(key, item.data.get(key, "")))


def _allocate(sizes: dict[str, int], total: int) -> dict[str, int]:
    """Proportional allocation of ``total`` over strata of ``sizes`` (largest remainder)."""
    n = sum(sizes.values())
    if total >= n:
        return dict(sizes)
    quotas = {s: total * k / n for s, k in sizes.items()}
    alloc = {s: min(sizes[s], int(q)) for s, q in quotas.items()}
    order = sorted(sizes, key=lambda s: (-(quotas[s] - int(quotas[s])), s))
    left = total - sum(alloc.values())
    while left > 0:
        for s in order:
            if left and alloc[s] < sizes[s]:
                alloc[s] += 1
                left -= 1
    return alloc


def stratified_sample(items: Sequence[Item], options: SampleOptions) -> list[Item]:
    """The selected items in their original order (all of them when no limit is set)."""
    for name in ("limit", "limit_per"):
        value = getattr(options, name)
        if value is not None and value < 1:
            raise EvalError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if options.limit is None and options.limit_per is None:
        return list(items)
    strata: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        strata.setdefault(stratum_of(it, options.key), []).append(i)
    sizes = {s: len(v) for s, v in strata.items()}
    if options.limit_per is not None:
        sizes = {s: min(k, options.limit_per) for s, k in sizes.items()}
    if options.limit is not None:
        sizes = _allocate(sizes, options.limit)
    rng = random.Random(options.seed)
    chosen: set[int] = set()
    for s in sorted(strata):
        chosen.update(rng.sample(strata[s], sizes[s]))
    return [it for i, it in enumerate(items) if i in chosen]

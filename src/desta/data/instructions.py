"""The instruction pool: the user prompts sampled for self-generation ("Describe the audio.", ...).

The official pool is not released (reference §11.2), so ``desta`` ships its own: JSONL files under
``desta/data/instructions/`` (one per category), each row ``{"text", "category", "kinds"}``.
Categories: ``description``, ``content``, ``speaker``, ``paralinguistic`` (emotion, pitch, speed,
volume), ``sound``, ``music``, ``reasoning``, ``format`` (format-constrained prompts such as
"Answer in exactly three bullet points.") and ``compound`` (two questions in one). ``kinds`` says
which audio the prompt suits (``speech``, ``sound``, ``music``).

Two optional fields make self-generation verifiable (``desta.data.grounding``):

* ``requires``: facts a correct answer states, checked against the record's labels, e.g.
  ``["transcript"]`` for "Write down exactly what is said.";
* ``parts``: for a compound question, its single questions, each ``{"text", "requires"}``. The
  backbone answers each part on its own and the target is its answers joined in order; a small LLM
  answers one question well where it drops half of two.

The files are the source of truth: edit them directly; the pool merges rows that repeat another
after normalisation (lower case, punctuation and spaces removed): the first row is kept and the kinds
are united.

Sampling is deterministic for a given seed and pool::

    pool = InstructionPool.load()
    pool.sample(7, kind="sound").text
    pool.sample_many(4, seed=7, kind="music")
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from desta.data.grounding import check_facts
from desta.errors import DeSTAError

KINDS = ("speech", "sound", "music")
PACKAGED = Path(__file__).with_name("instructions")


@dataclass(frozen=True)
class InstructionPart:
    """One single question of a compound instruction and the facts its answer states."""

    text: str
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class Instruction:
    """One prompt. ``kinds``: the audio kinds it suits, a subset of ``("speech", "sound", "music")``."""

    text: str
    category: str
    kinds: tuple[str, ...]
    requires: tuple[str, ...] = ()  # facts a correct answer states (desta.data.grounding.FACTS)
    parts: tuple[InstructionPart, ...] = ()  # a compound question's single questions, in answer order


def normalize_text(text: str) -> str:
    """The dedup key: lower case with everything but letters and digits removed."""
    return re.sub(r"[\W_]+", "", text.lower())


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise DeSTAError(f"unknown audio kind {kind!r}; use one of {KINDS}")


def _read(path: Path) -> Iterator[Instruction]:
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{i}"
            try:
                row = json.loads(line)
                text, category, kinds = row["text"], row["category"], tuple(row["kinds"])
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise DeSTAError(
                    f"{where}: an instruction row needs text, category and kinds ({err})"
                ) from None
            if not isinstance(text, str) or not text.strip():
                raise DeSTAError(f"{where}: empty instruction text")
            bad = [k for k in kinds if k not in KINDS]
            if bad or not kinds:
                raise DeSTAError(f"{where}: kinds must be a non-empty subset of {KINDS}, got {list(kinds)}")
            try:
                requires = check_facts(row.get("requires", ()))
                parts = tuple(
                    InstructionPart(" ".join(str(p["text"]).split()), check_facts(p.get("requires", ())))
                    for p in row.get("parts", ())
                )
            except (DeSTAError, KeyError, TypeError, AttributeError) as err:
                raise DeSTAError(
                    f"{where}: requires must be a list of facts and parts a list of {{text, requires}} ({err})"
                ) from None
            if len(parts) == 1:
                raise DeSTAError(f"{where}: a compound instruction needs two or more parts, got one")
            yield Instruction(" ".join(text.split()), str(category), kinds, requires, parts)


class InstructionPool:
    """An ordered, duplicate-free set of instructions with seeded sampling by audio kind."""

    def __init__(self, instructions: Iterable[Instruction]):
        first: dict[str, Instruction] = {}
        for ins in instructions:
            key = normalize_text(ins.text)
            if not key:
                continue
            if key in first:  # a repeat: keep the first text, widen its kinds
                kept = first[key]
                kinds = tuple(k for k in KINDS if k in kept.kinds or k in ins.kinds)
                first[key] = dataclasses.replace(kept, kinds=kinds)
            else:
                first[key] = ins
        items = list(first.values())
        self._items: tuple[Instruction, ...] = tuple(items)
        self._by_kind = {k: tuple(i for i in items if k in i.kinds) for k in KINDS}

    @classmethod
    def load(cls, path: str | Path | None = None) -> InstructionPool:
        """Read a ``.jsonl`` file, or every ``*.jsonl`` of a folder (``None``: the packaged pool)."""
        path = PACKAGED if path is None else Path(path)
        if path.is_dir():
            files = sorted(path.glob("*.jsonl"))
        elif path.is_file():
            files = [path]
        else:
            raise DeSTAError(f"instruction pool {path}: no such file or folder")
        if not files:
            raise DeSTAError(f"instruction pool {path}: no .jsonl files")
        pool = cls(ins for f in files for ins in _read(f))
        if not len(pool):
            raise DeSTAError(f"instruction pool {path} is empty")
        return pool

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Instruction]:
        return iter(self._items)

    def categories(self) -> list[str]:
        """Category names, sorted."""
        return sorted({i.category for i in self._items})

    def for_kind(self, kind: str, category: str | None = None) -> Sequence[Instruction]:
        """The instructions that suit ``kind`` (and ``category``), in pool order."""
        _check_kind(kind)
        items = self._by_kind[kind]
        if category is not None:
            items = tuple(i for i in items if i.category == category)
        if not items:
            raise DeSTAError(
                f"no instruction in the pool suits kind {kind!r}" + (f" in {category!r}" if category else "")
            )
        return items

    def sample(
        self, seed_or_rng: int | random.Random, kind: str = "speech", category: str | None = None
    ) -> Instruction:
        """One instruction for ``kind``; the same ``int`` seed always gives the same one."""
        rng = seed_or_rng if isinstance(seed_or_rng, random.Random) else random.Random(seed_or_rng)
        return rng.choice(self.for_kind(kind, category))

    def weighted(self, weights: Mapping[str, float]) -> CategoryWeightedSampler:
        """A sampler that first picks a category with probability proportional to its weight (unnamed
        categories weigh 1, weight 0 never picks one), then an instruction of it uniformly."""
        return CategoryWeightedSampler(self, tuple(sorted((str(c), float(w)) for c, w in weights.items())))

    def sample_many(
        self, n: int, seed: int | random.Random, kind: str = "speech", category: str | None = None
    ) -> list[Instruction]:
        """``n`` instructions for ``kind``, without repeats until the candidates run out."""
        if n < 0:
            raise DeSTAError(f"n must be >= 0, got {n}")
        rng = seed if isinstance(seed, random.Random) else random.Random(seed)
        items = list(self.for_kind(kind, category))
        out: list[Instruction] = []
        while len(out) < n:
            out.extend(rng.sample(items, min(len(items), n - len(out))))
        return out


@dataclass(frozen=True)
class CategoryWeightedSampler:
    """``pool.weighted({"compound": 3, "format": 0.5})``: sets the task mix of a generation run.

    Without weights a pool samples uniformly over instructions, so a category's share is its size
    (``format`` holds a third of the packaged pool); with them the share is the weight's.
    """

    pool: InstructionPool
    weights: tuple[tuple[str, float], ...]

    def __post_init__(self) -> None:
        bad = {c: w for c, w in self.weights if not w >= 0}
        if bad:
            raise DeSTAError(f"category weights must be >= 0, got {bad}")
        unknown = sorted({c for c, _ in self.weights} - set(self.pool.categories()))
        if unknown:
            raise DeSTAError(f"category weights name {unknown}, not in the pool's {self.pool.categories()}")

    def sample(self, seed_or_rng: int | random.Random, kind: str = "speech") -> Instruction:
        rng = seed_or_rng if isinstance(seed_or_rng, random.Random) else random.Random(seed_or_rng)
        weight = dict(self.weights)
        cats = sorted({i.category for i in self.pool.for_kind(kind)})
        w = [weight.get(c, 1.0) for c in cats]
        if not any(w):
            raise DeSTAError(f"every category that suits kind {kind!r} has weight 0: {cats}")
        category = rng.choices(cats, weights=w)[0]
        return rng.choice(self.pool.for_kind(kind, category))

"""What every benchmark task shares: the item record, the score record and the `Task` base class.

A task is data + prompt + answer extraction + metric + version (the lm-evaluation-harness recipe):

* ``load(data_dir)`` reads the benchmark from a local folder in the layout the benchmark publishes and
  raises `DataLayoutError` naming what is missing;
* ``prompt(item)`` renders one conversation in the desta message format
  (``{"role", "content", "audios": [{"audio": ..., "text": None}]}``, one ``<|AUDIO|>`` per audio);
* ``postprocess(response, item)`` is the prediction step's answer clean-up, if the model's own
  inference script does one (stored beside the raw response; scorers never post-process);
* ``score(items, predictions, judge)`` applies the official protocol and returns `Scores`.

Predictions are plain ``{id: response}`` mappings so that a task can be rescored without the model.
A missing or failed prediction is never dropped silently: it is counted in ``Scores.counts`` and
scored as wrong in the headline metric.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desta.errors import DeSTAError
from desta.messages import AUDIO_LOCATOR

AUDIO_TOKEN = AUDIO_LOCATOR  # desta.messages defines the locator once


class EvalError(DeSTAError, RuntimeError):
    """An evaluation could not run (bad arguments, missing predictions file, ...)."""


class DataLayoutError(EvalError, FileNotFoundError):
    """A benchmark folder does not have the layout the benchmark publishes."""


class JudgeUnavailableError(EvalError):
    """A task needs an LLM judge but none was configured."""


@dataclass(frozen=True)
class Item:
    """One benchmark question.

    id: unique within the task (the benchmark's own id where it has one).
    audios: audio sources in prompt order: a file path, or encoded bytes (Hugging Face parquet rows).
    data: the benchmark's raw fields (question, choices, answer, category, ...).
    groups: breakdown keys for the report, e.g. ``{"task": "sound", "difficulty": "easy"}``.
    """

    id: str
    audios: tuple[str | bytes, ...]
    data: Mapping[str, Any]
    groups: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Scores:
    """The result of scoring one task.

    metrics: headline numbers (percentages or 1-5 / 1-10 scores), e.g. ``{"accuracy": 66.0}``.
    breakdown: ``{group_key: {category: {"score": float, "n": int}}}`` for the report tables.
    counts: what happened to the items: ``items``, ``scored``, ``missing`` (no prediction),
      ``failed`` (prediction error), ``judge_failures``, ``unparsed`` ... never silently zero.
    protocol: how the numbers were made (string match, judge model and settings, substitutions).
    details: per-item records (id -> dict) written to ``scores.json`` for inspection.
    """

    task: str
    version: str
    metrics: Mapping[str, float]
    breakdown: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=dict)
    counts: Mapping[str, int] = field(default_factory=dict)
    protocol: Mapping[str, Any] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "version": self.version,
            "metrics": dict(self.metrics),
            "breakdown": {k: {c: dict(v) for c, v in cats.items()} for k, cats in self.breakdown.items()},
            "counts": dict(self.counts),
            "protocol": dict(self.protocol),
            "details": dict(self.details),
        }


class Task:
    """Base class of a benchmark task; subclasses set NAME, VERSION and override the four steps."""

    NAME: str = ""
    VERSION: str = ""
    PRIMARY: str = "accuracy"  # the metric compared with published numbers
    PUBLISHED_KEY: str | None = None  # key in data/published.json
    NEEDS_JUDGE: bool = False
    STRATUM: str | None = None  # group key that --limit stratifies by (None: the items' first group key)
    JUDGE_MODEL: str | None = None  # the official judge model, checked on the judge endpoint before a run

    def needs_judge(self, items: Sequence[Item]) -> bool:
        """Whether scoring these items asks an LLM judge (checked before any generation)."""
        return self.NEEDS_JUDGE

    def published_scope(self) -> str | None:
        """None when this task instance is the whole benchmark its published numbers are on; else why
        not (e.g. one SAKURA track), so that reports never set a part against a whole."""
        return None

    def load(self, data_dir: str | os.PathLike, check_audio: bool = True) -> list[Item]:
        """The benchmark's items; ``check_audio=False`` (rescoring) reads the metadata only."""
        raise NotImplementedError

    def postprocess(self, response: str, item: Item) -> str | None:
        """The model's own inference-script step on a raw response (stored beside it as ``answer``);
        None: the task has none and scores the raw response."""
        return None

    def prompt(self, item: Item) -> list[dict[str, Any]]:
        raise NotImplementedError

    def text_prompt(self, item: Item) -> list[dict[str, Any]]:
        """The same conversation for a text-only LLM: each audio replaced by its textual description.

        Only tasks that ship a description of the audio (Speech-IFEval's ``textual_audio``) support it.
        """
        raise EvalError(
            f"task {self.NAME!r} has no textual description of its audio; it cannot run a text-only LLM"
        )

    def score(
        self, items: Sequence[Item], predictions: Mapping[str, str | None], judge: Any = None
    ) -> Scores:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Static facts recorded with every result (name, version, prompt)."""
        return {"task": self.NAME, "version": self.VERSION}


# ----------------------------------------------------------------------------------------------
# helpers shared by the task modules


def prompt_message(text: str, audios: Sequence[str | bytes]) -> dict[str, Any]:
    """A user turn from a benchmark prompt that already holds one ``<|AUDIO|>`` marker per audio (checked);
    :func:`desta.messages.user_message` is the builder that adds the markers itself."""
    n = text.count(AUDIO_TOKEN)
    if n != len(audios):
        raise EvalError(f"prompt has {n} {AUDIO_TOKEN} markers but {len(audios)} audios")
    return {"role": "user", "content": text, "audios": [{"audio": a, "text": None} for a in audios]}


def system_message(text: str) -> dict[str, Any]:
    return {"role": "system", "content": text}


def quote_options(options: Sequence[str]) -> str:
    """DeSTA's option list: each option in double quotes, ``, `` between, `` or `` before the last.

    >>> quote_options(["a", "b", "c"])
    '"a", "b" or "c"'
    """
    quoted = [f'"{o}"' for o in options]
    if len(quoted) <= 1:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


def require_files(root: Path, names: Iterable[str], benchmark: str, hint: str) -> None:
    """Raise `DataLayoutError` listing every missing path under ``root``."""
    missing = [n for n in names if not (root / n).exists()]
    if missing:
        raise DataLayoutError(f"{benchmark}: {root} is missing {', '.join(missing)}. Expected layout: {hint}")


def check_audio_files(items: Sequence[Item], benchmark: str, max_listed: int = 5) -> None:
    """Raise `DataLayoutError` when audio paths referenced by the metadata do not exist."""
    missing = [a for it in items for a in it.audios if isinstance(a, str) and not os.path.exists(a)]
    if missing:
        listed = ", ".join(missing[:max_listed])
        more = f" and {len(missing) - max_listed} more" if len(missing) > max_listed else ""
        raise DataLayoutError(
            f"{benchmark}: {len(missing)} audio files named by the metadata are missing: {listed}{more}. "
            "Download and unpack the benchmark's audio next to its metadata."
        )


def prediction_status(predictions: Mapping[str, str | None], item_id: str) -> str:
    """'ok', 'missing' (no record) or 'failed' (a record whose generation failed: value None)."""
    if item_id not in predictions:
        return "missing"
    return "failed" if predictions[item_id] is None else "ok"


def new_counts(items: Sequence[Item], *extra: str) -> dict[str, int]:
    """The counters a judged task reports (items, scored, missing, failed, judge_failures, unparsed),
    plus task-specific ones, all at zero."""
    counts = {"items": len(items), "scored": 0, "missing": 0, "failed": 0, "judge_failures": 0, "unparsed": 0}
    counts.update({k: 0 for k in extra})
    return counts


def answered(
    items: Sequence[Item], predictions: Mapping[str, str | None], counts: dict[str, int]
) -> Iterator[tuple[Item, str]]:
    """``(item, prediction)`` for items with a usable prediction; the rest are counted as missing or failed."""
    for it in items:
        status = prediction_status(predictions, it.id)
        if status != "ok":
            counts[status] += 1
            continue
        yield it, str(predictions[it.id])


def breakdown_of(
    items: Sequence[Item], values: Mapping[str, float], scale: float = 100.0
) -> dict[str, dict[str, dict[str, float]]]:
    """Mean of ``values[item.id]`` (missing ids count as 0) per group key and category."""
    sums: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for it in items:
        for key, cat in it.groups.items():
            sums[key][str(cat)].append(values.get(it.id, 0.0))
    return {
        key: {cat: {"score": scale * sum(v) / len(v), "n": len(v)} for cat, v in sorted(cats.items())}
        for key, cats in sums.items()
    }


def mean(values: Iterable[float]) -> float:
    vals = list(values)
    return sum(vals) / len(vals) if vals else 0.0

"""LLM judge over any OpenAI-compatible ``/v1/chat/completions`` endpoint (through `desta.endpoints`).

Each benchmark fixes its official judge as a `JudgeSpec` (model name, temperature, top_p, number of
samples, max tokens). A `Judge` sends the request with desta's one endpoint client (connection pool,
timeouts, retries of transient errors, optional SQLite cache of answered requests), parses each sample
with the task's parser, and returns a `Judgment` that keeps the raw text and says how many samples
could not be parsed. Substituting another model (a local vLLM judge, ``desta serve``) is allowed: the
substitution is recorded in `Judge.stamp` and written next to the scores.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from desta.endpoints import (
    EndpointClient,
    EndpointError,
    EndpointOptions,
    EndpointUnavailableError,
    RetryPolicy,
)
from desta.eval.base import EvalError, JudgeUnavailableError

T = TypeVar("T")


@dataclass(frozen=True)
class JudgeSpec:
    """The official judge of a benchmark.

    model: the official model name (e.g. ``gpt-4o-mini``); temperature/top_p/n/max_tokens as in the
    benchmark's script (None = not sent, the server default).
    """

    model: str
    temperature: float | None = 0.0
    top_p: float | None = None
    n: int = 1
    max_tokens: int | None = None
    source: str = ""  # where the settings come from (script path @ commit)


@dataclass(frozen=True)
class JudgeOptions:
    """How to reach the judge.

    base_url: OpenAI-compatible root (``https://api.openai.com/v1`` or ``http://localhost:8000/v1``).
    model: None to use each benchmark's official model; a name to substitute it (stamped).
    cache_path: SQLite file of answered requests (a rescore never pays twice for the same question).
    """

    base_url: str
    api_key: str | None = None
    model: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 3
    backoff_s: float = 1.0
    cache_path: str | None = None


@dataclass(frozen=True)
class Judgment:
    """values: parsed samples (unparseable ones left out); raw: every sample's text; error: set when the
    request failed after all retries (then raw is empty)."""

    values: tuple[Any, ...]
    raw: tuple[str, ...]
    unparsed: int = 0
    error: str | None = None
    model: str = ""
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.values)


@dataclass
class JudgeStats:
    requests: int = 0
    cached: int = 0
    failures: int = 0  # requests that failed after all retries (timeouts, HTTP errors)
    unparsed: int = 0  # samples whose text the parser rejected
    models: dict[str, str] = field(default_factory=dict)  # official -> used


class Judge:
    """A judge client; pass ``client`` (an `EndpointClient`, e.g. with a test transport) to share one."""

    def __init__(self, options: JudgeOptions, client: EndpointClient | None = None) -> None:
        self.options = options
        self._client = client or EndpointClient(
            EndpointOptions(
                base_url=options.base_url.rstrip("/"),
                api_key=options.api_key,
                timeout_s=options.timeout_s,
                retry=RetryPolicy(max_attempts=options.max_retries + 1, initial_delay=options.backoff_s),
                cache_path=options.cache_path,
            )
        )
        self.stats = JudgeStats()
        self._lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Judge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def model_for(self, spec: JudgeSpec) -> str:
        return self.options.model or spec.model

    def check(self, official_model: str | None = None) -> None:
        """Before any generation: the endpoint answers and serves the model the judge will ask for
        (an endpoint without ``GET /models`` is trusted); raises `JudgeUnavailableError`."""
        model = self.options.model or official_model
        try:
            if model is not None:
                self._client.check_model(model)
            else:
                self._client.list_models()
        except EndpointError as err:
            if model is None and err.status == 404:
                return
            raise JudgeUnavailableError(f"judge at {self.options.base_url} is not usable: {err}") from err

    @property
    def stamp(self) -> dict[str, Any]:
        """What to record with the scores: official vs used model, substitution flag, failure counts."""
        substituted = any(official != used for official, used in self.stats.models.items())
        return {
            "endpoint": self.options.base_url,
            "models": dict(self.stats.models),
            "substituted": substituted,
            "substitute_note": "a substitute judge, not the official one: not comparable to official numbers"
            if substituted
            else "",
            "requests": self.stats.requests,
            "cached": self.stats.cached,
            "retries": self._client.stats.retries,
            "failures": self.stats.failures,
            "unparsed_samples": self.stats.unparsed,
        }

    @property
    def retries(self) -> int:
        return self._client.stats.retries

    def ask(
        self, spec: JudgeSpec, messages: Sequence[Mapping[str, str]], parse: Callable[[str], T | None]
    ) -> Judgment:
        """Ask for ``spec.n`` samples; parse each. Request trouble is returned in ``error``; an endpoint
        that cannot serve at all (bad key, unknown model, unreachable) raises `JudgeUnavailableError`."""
        model = self.model_for(spec)
        with self._lock:
            self.stats.models[spec.model] = model
        body: dict[str, Any] = {"model": model, "messages": [dict(m) for m in messages]}
        for key, value in (
            ("temperature", spec.temperature),
            ("top_p", spec.top_p),
            ("max_tokens", spec.max_tokens),
        ):
            if value is not None:
                body[key] = value
        if spec.n > 1:
            body["n"] = spec.n
        texts: list[str] = []
        all_cached = True
        while len(texts) < spec.n:
            with self._lock:
                self.stats.requests += 1
            try:
                completion = self._client.chat(body)
            except EndpointUnavailableError as err:
                raise JudgeUnavailableError(f"judge at {self.options.base_url} is not usable: {err}") from err
            except EndpointError as err:
                with self._lock:
                    self.stats.failures += 1
                return Judgment((), (), 0, f"{type(err).__name__}: {err.reason}", model)
            all_cached = all_cached and completion.cached
            texts.extend(completion.texts)
            if not completion.texts:
                break
            missing = spec.n - len(texts)
            # servers that ignore ``n`` return one choice: ask again for the rest
            body = {**body, "n": missing} if missing > 1 else {k: v for k, v in body.items() if k != "n"}
        if all_cached:
            with self._lock:
                self.stats.cached += 1
        return self._parse(texts[: spec.n], parse, model, all_cached)

    def _parse(self, texts: Sequence[str], parse: Callable[[str], Any], model: str, cached: bool) -> Judgment:
        values = []
        unparsed = 0
        for t in texts:
            v = parse(t)
            if v is None:
                unparsed += 1
            else:
                values.append(v)
        with self._lock:
            self.stats.unparsed += unparsed
        return Judgment(tuple(values), tuple(texts), unparsed, None, model, cached)


def require_judge(judge: Judge | None, task: str, spec: JudgeSpec) -> Judge:
    """The judge, or a `JudgeUnavailableError` that says how to configure one."""
    if judge is None:
        raise JudgeUnavailableError(
            f"{task} is scored by an LLM judge (official: {spec.model}); pass --judge-endpoint URL "
            "(any OpenAI-compatible server) and optionally --judge-model NAME to substitute the model"
        )
    return judge


def ask_many(
    judge: Judge,
    spec: JudgeSpec,
    requests: Mapping[str, Sequence[Mapping[str, str]]],
    parse: Callable[[str], Any],
    workers: int = 8,
    progress: bool = True,
) -> dict[str, Judgment]:
    """Ask the judge about many items concurrently; ``requests`` maps item id -> messages."""
    from concurrent.futures import ThreadPoolExecutor

    results: dict[str, Judgment] = {}
    bar = None
    if progress and len(requests) > 1:
        from tqdm import tqdm

        bar = tqdm(total=len(requests), desc=f"judge {judge.model_for(spec)}", unit="item")
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(judge.ask, spec, msgs, parse): key for key, msgs in requests.items()}
        for fut in futures:
            results[futures[fut]] = fut.result()
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return results


def first_verdict(values: Sequence[Any]) -> float:
    """1.0 when the first parsed sample is a yes (True), else 0.0: the one-sample yes/no protocols."""
    return float(bool(values[0]))


def tally_judgments(
    judgments: Mapping[str, Judgment],
    counts: dict[str, int],
    value: Callable[[Sequence[Any]], float] = first_verdict,
) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
    """Each judgment's score and record, counted the one way every judged task reports it.

    A failed request adds to ``counts["judge_failures"]``, a judgment with no parsable sample to
    ``counts["unparsed"]``; both get no score (the task decides what an unscored item is worth). The
    rest add to ``counts["scored"]`` and score ``value(parsed samples)``.
    Returns (key -> score for the scored keys, key -> ``{"judge": raw texts, "error": ...}`` for all),
    both in the order of ``judgments``.
    """
    scores: dict[str, float] = {}
    details: dict[str, dict[str, Any]] = {}
    for key, j in judgments.items():
        if j.error is not None:
            counts["judge_failures"] += 1
        elif not j.values:
            counts["unparsed"] += 1
        else:
            counts["scored"] += 1
            scores[key] = value(j.values)
        details[key] = {"judge": list(j.raw), "error": j.error}
    return scores, details


def ask_verdicts(
    judge: Judge | None,
    task: str,
    spec: JudgeSpec,
    requests: Mapping[str, Sequence[Mapping[str, str]]],
    parse: Callable[[str], Any],
    counts: dict[str, int],
    value: Callable[[Sequence[Any]], float] = first_verdict,
) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
    """`ask_many` + `tally_judgments`: the judge is required only when there is something to ask
    (no requests: nothing asked, nothing counted, `JudgeUnavailableError` never raised)."""
    if not requests:
        return {}, {}
    judgments = ask_many(require_judge(judge, task, spec), spec, requests, parse)
    return tally_judgments(judgments, counts, value)


_RESULT_VERDICT = re.compile(r"(?i)result:\s*\**\s*(yes|no)")


def parse_result_verdict(text: str) -> bool | None:
    """desta's own judge prompts' ``Result: YES|NO`` (any case, spaces and markdown ``*`` tolerated)
    -> True / False; None when there is no such line. Benchmarks with an official regex keep theirs."""
    m = _RESULT_VERDICT.search(text)
    return None if m is None else m.group(1).lower() == "yes"


__all__ = [
    "EvalError",
    "Judge",
    "JudgeOptions",
    "JudgeSpec",
    "Judgment",
    "ask_many",
    "ask_verdicts",
    "first_verdict",
    "parse_result_verdict",
    "require_judge",
    "tally_judgments",
]

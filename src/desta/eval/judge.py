"""LLM judge over any OpenAI-compatible ``/v1/chat/completions`` endpoint.

Each benchmark fixes its official judge as a `JudgeSpec` (model name, temperature, top_p, number of
samples, max tokens). A `Judge` sends the request, retries timeouts and server errors, parses each
sample with the task's parser, and returns a `Judgment` that keeps the raw text and says how many
samples could not be parsed. Substituting another model (a local vLLM judge) is allowed: the
substitution is recorded in `Judge.stamp` and written next to the scores.

Judgments are cached on disk (one JSONL line per request, keyed by a hash of the request) so a
rescore or a resumed run never pays twice for the same question.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from desta.eval.base import EvalError

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
    retries: int = 0
    failures: int = 0  # requests that failed after all retries (timeouts, HTTP errors)
    unparsed: int = 0  # samples whose text the parser rejected
    models: dict[str, str] = field(default_factory=dict)  # official -> used


class Judge:
    """A judge client; pass ``transport`` (an ``httpx`` transport) in tests."""

    def __init__(self, options: JudgeOptions, transport: httpx.BaseTransport | None = None) -> None:
        self.options = options
        headers = {"Content-Type": "application/json"}
        key = options.api_key or os.environ.get("OPENAI_API_KEY")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.Client(
            base_url=options.base_url.rstrip("/"),
            headers=headers,
            timeout=options.timeout_s,
            transport=transport,
        )
        self.stats = JudgeStats()
        self._lock = threading.Lock()
        self._cache: dict[str, list[str]] = {}
        if options.cache_path and os.path.exists(options.cache_path):
            self._cache = _read_cache(Path(options.cache_path))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Judge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def model_for(self, spec: JudgeSpec) -> str:
        return self.options.model or spec.model

    @property
    def stamp(self) -> dict[str, Any]:
        """What to record with the scores: official vs used model, substitution flag, failure counts."""
        substituted = any(official != used for official, used in self.stats.models.items())
        return {
            "endpoint": self.options.base_url,
            "models": dict(self.stats.models),
            "substituted": substituted,
            "requests": self.stats.requests,
            "cached": self.stats.cached,
            "retries": self.stats.retries,
            "failures": self.stats.failures,
            "unparsed_samples": self.stats.unparsed,
        }

    def ask(
        self,
        spec: JudgeSpec,
        messages: Sequence[Mapping[str, str]],
        parse: Callable[[str], T | None],
    ) -> Judgment:
        """Ask for ``spec.n`` samples; parse each; never raises for endpoint trouble (see ``error``)."""
        model = self.model_for(spec)
        with self._lock:
            self.stats.models[spec.model] = model
        body: dict[str, Any] = {"model": model, "messages": [dict(m) for m in messages]}
        if spec.temperature is not None:
            body["temperature"] = spec.temperature
        if spec.top_p is not None:
            body["top_p"] = spec.top_p
        if spec.max_tokens is not None:
            body["max_tokens"] = spec.max_tokens
        if spec.n > 1:
            body["n"] = spec.n
        key = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        cached = self._cache.get(key)
        if cached is not None:
            with self._lock:
                self.stats.cached += 1
            return self._parse(cached, parse, model, cached=True)
        texts: list[str] = []
        error = None
        while len(texts) < spec.n:
            try:
                texts.extend(self._post(body))
            except EvalError as err:
                error = str(err)
                break
            if spec.n > 1:  # servers that ignore ``n`` return one choice: ask again for the rest
                body = (
                    {**body, "n": spec.n - len(texts)}
                    if spec.n - len(texts) > 1
                    else {k: v for k, v in body.items() if k != "n"}
                )
        if error is not None:
            with self._lock:
                self.stats.failures += 1
            return Judgment((), (), 0, error, model)
        texts = texts[: spec.n]
        self._remember(key, texts)
        return self._parse(texts, parse, model)

    def _parse(
        self, texts: Sequence[str], parse: Callable[[str], Any], model: str, cached: bool = False
    ) -> Judgment:
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

    def _post(self, body: Mapping[str, Any]) -> list[str]:
        last = ""
        for attempt in range(self.options.max_retries + 1):
            if attempt:
                with self._lock:
                    self.stats.retries += 1
                time.sleep(self.options.backoff_s * 2 ** (attempt - 1))
            with self._lock:
                self.stats.requests += 1
            try:
                resp = self._client.post("/chat/completions", json=body)
            except httpx.TimeoutException:
                last = f"timed out after {self.options.timeout_s} s"
                continue
            except httpx.HTTPError as err:
                last = f"connection error: {err}"
                continue
            if resp.status_code == 429 or resp.status_code >= 500:
                last = f"HTTP {resp.status_code}: {resp.text[:200]}"
                continue
            if resp.status_code >= 400:
                raise EvalError(
                    f"judge endpoint refused the request: HTTP {resp.status_code}: {resp.text[:300]}"
                )
            try:
                choices = resp.json()["choices"]
                return [str(c["message"]["content"] or "") for c in choices]
            except (ValueError, KeyError, TypeError) as err:
                last = f"malformed response ({err}): {resp.text[:200]}"
                continue
        raise EvalError(
            f"judge at {self.options.base_url} failed after {self.options.max_retries + 1} tries: {last}"
        )

    def _remember(self, key: str, texts: list[str]) -> None:
        with self._lock:
            self._cache[key] = texts
            if self.options.cache_path:
                with open(self.options.cache_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps({"key": key, "texts": texts}, ensure_ascii=False) + "\n")


def _read_cache(path: Path) -> dict[str, list[str]]:
    cache: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
            cache[rec["key"]] = list(rec["texts"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut by a kill: ignore it, the request will be sent again
    return cache


def require_judge(judge: Judge | None, task: str, spec: JudgeSpec) -> Judge:
    """The judge, or a `JudgeUnavailableError` that says how to configure one."""
    from desta.eval.base import JudgeUnavailableError

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

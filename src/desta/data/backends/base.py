"""What every text-generation backend shares: results, errors, the protocol and the retry loop.

``TextBackend.generate(batch, params) -> list[BackendResult]`` takes a batch of chat conversations
(each a list of ``{"role", "content"}`` dicts) and returns one result per conversation, in order. A
per-item failure is a result with ``error`` set (``retryable`` says whether a later try may help); a
failure of the whole call raises :class:`TransientBackendError` or :class:`PermanentBackendError`,
and trouble that concerns every request (a wrong key, an unreachable endpoint) raises
:class:`desta.endpoints.EndpointUnavailableError`, which no retry loop catches.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from desta.endpoints import RetryPolicy
from desta.errors import DeSTAError
from desta.model.options import GenerationOptions

__all__ = [
    "BackendError",
    "BackendResult",
    "PermanentBackendError",
    "RetryPolicy",
    "TextBackend",
    "TransientBackendError",
    "generate_with_retries",
    "params_list",
]


class BackendError(DeSTAError):
    """A generation call failed."""


class TransientBackendError(BackendError):
    """Worth retrying: timeout, connection error, HTTP 429 or 5xx, out of memory on a busy server."""


class PermanentBackendError(BackendError):
    """Not worth retrying: prompt longer than the context, bad request."""


@dataclass(frozen=True)
class BackendResult:
    text: str = ""
    finish_reason: str = "stop"  # "stop" | "length" | "error"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    retryable: bool = False
    attempts: int = 1  # tries the backend itself made (backends that retry inside, e.g. openai)

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def failed(cls, reason: str, *, retryable: bool, attempts: int = 1) -> BackendResult:
        return cls(finish_reason="error", error=reason, retryable=retryable, attempts=attempts)


@runtime_checkable
class TextBackend(Protocol):
    """A generation backend. One that retries transient failures itself sets ``handles_retries``."""

    name: str
    model_id: str

    def generate(
        self, batch: list[list[dict[str, str]]], params: list[GenerationOptions] | GenerationOptions
    ) -> list[BackendResult]: ...

    def close(self) -> None: ...


def params_list(params: list[GenerationOptions] | GenerationOptions, n: int) -> list[GenerationOptions]:
    if isinstance(params, GenerationOptions):
        return [params] * n
    if len(params) != n:
        raise DeSTAError(f"got {len(params)} sampling params for {n} conversations")
    return list(params)


def generate_with_retries(
    backend: TextBackend,
    batch: list[list[dict[str, str]]],
    params: list[GenerationOptions],
    policy: RetryPolicy = RetryPolicy(),
    *,
    sleep: Callable[[float], None] = time.sleep,
    seed: int = 0,
) -> tuple[list[BackendResult], list[int]]:
    """Generate, retrying the transient failures. Returns ``(results, tries per item)``; a result still
    failing after ``policy.max_attempts`` keeps its last error (with ``retryable=True``). A backend
    with ``handles_retries`` is called once: it has retried (and backed off) already."""
    rng = random.Random(seed)
    results: list[BackendResult] = [BackendResult.failed("not attempted", retryable=True)] * len(batch)
    attempts = [0] * len(batch)
    todo = list(range(len(batch)))
    rounds = 1 if getattr(backend, "handles_retries", False) else policy.max_attempts
    for attempt in range(rounds):
        if attempt:
            sleep(policy.delay(attempt - 1, rng))
        try:
            got = backend.generate([batch[i] for i in todo], [params[i] for i in todo])
        except TransientBackendError as err:
            got = [BackendResult.failed(f"transient: {err}", retryable=True)] * len(todo)
        except PermanentBackendError as err:
            got = [BackendResult.failed(f"permanent: {err}", retryable=False)] * len(todo)
        for i, r in zip(todo, got):
            results[i] = r
            attempts[i] += r.attempts
        todo = [i for i in todo if not results[i].ok and results[i].retryable]
        if not todo:
            break
    return results, attempts

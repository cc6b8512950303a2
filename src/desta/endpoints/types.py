"""Errors, options and results of :mod:`desta.endpoints` (plain data, no I/O)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from desta.errors import DeSTAError

TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
ENDPOINT_WIDE_STATUS = frozenset({401, 403, 404})


class EndpointError(DeSTAError):
    """A request to an OpenAI-compatible endpoint failed.

    ``status`` is the HTTP status (0: no answer), ``detail`` the server's message or what went wrong on
    the network (short, for counting and logs), ``attempts`` the tries made.
    """

    def __init__(self, message: str, *, status: int = 0, detail: str = "", attempts: int = 1) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail or message
        self.attempts = attempts

    @property
    def reason(self) -> str:
        """``"HTTP 400: <server message>"`` or ``"timeout: ..."`` / ``"connection error: ..."``."""
        return f"HTTP {self.status}: {self.detail}" if self.status else self.detail


class EndpointUnavailableError(EndpointError):
    """The endpoint cannot serve any request: bad key, wrong URL, unknown model, unreachable."""


class RequestError(EndpointError):
    """The endpoint refused this request (and would refuse it again)."""


class TransientEndpointError(EndpointError):
    """A failure that outlived its retries but may pass later (timeout, overload, 5xx)."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: delay = min(max_delay, initial * multiplier**n) * uniform(1 - jitter, 1 + jitter)."""

    max_attempts: int = 6
    initial_delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.initial_delay < 0 or self.max_delay < 0 or not 0 <= self.jitter < 1:
            raise DeSTAError(
                f"invalid retry policy {self}: need max_attempts >= 1, delays >= 0, 0 <= jitter < 1"
            )

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 0)."""
        base = min(self.max_delay, self.initial_delay * self.multiplier**attempt)
        return base * rng.uniform(1 - self.jitter, 1 + self.jitter)


@dataclass(frozen=True)
class EndpointOptions:
    """Where the endpoint is and how to talk to it."""

    base_url: str = "http://127.0.0.1:8000/v1"
    api_key: str | None = None  # None: $OPENAI_API_KEY if set, else no Authorization header
    timeout_s: float = 120.0  # per try, from sending the request to the last byte of the answer
    connect_timeout_s: float = 10.0
    max_connections: int = 64  # requests in flight; the pool keeps as many keep-alive connections
    retry: RetryPolicy = RetryPolicy()
    cache_path: str | None = None  # SQLite file of answered requests; None: no cache
    headers: tuple[tuple[str, str], ...] = ()  # extra headers, e.g. (("OpenAI-Organization", "org"),)

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise DeSTAError(f"endpoint URL must look like http://host:port/v1, got {self.base_url!r}")
        if self.timeout_s <= 0 or self.connect_timeout_s <= 0 or self.max_connections < 1:
            raise DeSTAError(
                f"need timeout_s > 0, connect_timeout_s > 0 and max_connections >= 1, got "
                f"{self.timeout_s}, {self.connect_timeout_s}, {self.max_connections}"
            )


@dataclass(frozen=True)
class Completion:
    """One answered chat request: a text and finish reason per choice, token usage, provenance."""

    texts: tuple[str, ...]
    finish_reasons: tuple[str, ...]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 1  # tries it took (0 when it came from the cache)
    cached: bool = False

    @property
    def text(self) -> str:
        return self.texts[0] if self.texts else ""

    @property
    def finish_reason(self) -> str:
        return self.finish_reasons[0] if self.finish_reasons else "stop"


@dataclass
class EndpointStats:
    """Counters since the client was made (tries, not requests: a retried request counts each try)."""

    tries: int = 0
    retries: int = 0
    cached: int = 0
    failures: int = 0


#: A stand-in for the network in tests: ``(method, path below base_url, JSON body or None)`` ->
#: ``(status, headers, body bytes)``; it may raise ``ConnectionError`` or ``TimeoutError``.
Transport = Callable[[str, str, "bytes | None"], "tuple[int, Mapping[str, str], bytes]"]

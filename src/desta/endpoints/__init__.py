"""One client for OpenAI-compatible endpoints (vLLM, llama.cpp, Ollama, ``desta serve``, hosted APIs).

    with EndpointClient(EndpointOptions(base_url="http://127.0.0.1:8000/v1")) as client:
        client.check_model("Qwen/Qwen2.5-7B-Instruct")   # endpoint-wide trouble surfaces here, once
        one = client.chat({"model": ..., "messages": [...], "max_tokens": 64})    # -> Completion
        many = client.chat_many([body, body, ...])   # concurrent; per-request errors come back in place

Errors are split by who they concern:

* :class:`EndpointUnavailableError` -- the whole endpoint is unusable: HTTP 401/403 (key), 404 (wrong
  URL or model not served), an unknown model, or no connection after every retry. Raised, never
  returned: a caller should stop rather than record every remaining request as failed.
* :class:`RequestError` -- this one request was refused (HTTP 400/413/422: prompt too long, bad
  parameter). Asking again does not help.
* :class:`TransientEndpointError` -- timeouts, dropped connections or HTTP 408/409/425/429/5xx that
  persisted through every retry, or a 2xx answer that is not a chat completion (not retried: the
  server answered); a later run may succeed.

Transient failures are retried with exponential backoff and jitter (``Retry-After`` is honoured, up to
``RetryPolicy.max_delay``). Requests run on a private asyncio loop in one background thread with an
``aiohttp`` connection pool, so the client is safe to share between threads. Why aiohttp: against a
local server answering instantly at 64 in flight, httpx's and the openai SDK's async clients reached
about 300 requests/s where aiohttp reached about 1,900-2,400 (bench/data_backends.py).

An optional on-disk cache (SQLite, keyed by a hash of the request body) answers repeated requests.
"""

from typing import TYPE_CHECKING, Any

from desta.endpoints.types import (
    Completion,
    EndpointError,
    EndpointOptions,
    EndpointStats,
    EndpointUnavailableError,
    RequestError,
    RetryPolicy,
    TransientEndpointError,
    Transport,
)
from desta.endpoints.wire import DiskCache, parse_completion, request_key, retry_after_seconds

if TYPE_CHECKING:
    from desta.endpoints.client import EndpointClient


def __getattr__(name: str) -> Any:
    # The client pulls in asyncio (~0.1 s); CLI paths that only need the types stay fast without it.
    if name == "EndpointClient":
        from desta.endpoints.client import EndpointClient

        return EndpointClient
    raise AttributeError(f"module 'desta.endpoints' has no attribute {name!r}")


__all__ = [
    "Completion",
    "DiskCache",
    "EndpointClient",
    "EndpointError",
    "EndpointOptions",
    "EndpointStats",
    "EndpointUnavailableError",
    "RequestError",
    "RetryPolicy",
    "TransientEndpointError",
    "Transport",
    "parse_completion",
    "request_key",
    "retry_after_seconds",
]

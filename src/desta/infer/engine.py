"""One seam for every way to answer conversations: the :class:`Engine` protocol.

An engine answers a batch of conversations (desta's message format, audio included) with one options
type, :class:`~desta.model.options.GenerationOptions`, streams one answer, and takes a ``cancel``
event. Two engines ship here:

* :class:`LocalEngine`: a loaded :class:`~desta.model.desta.DeSTAModel` (transformers, this process);
* :class:`EndpointEngine`: any OpenAI-compatible server (``desta serve``, vLLM) through the one
  endpoint client, :class:`desta.endpoints.EndpointClient`.

A text-only LLM is the same engine with no audio: :class:`desta.infer.text_llm.TextLLMEngine`.
``desta ask`` runs either one (``--server`` picks the endpoint), ``desta serve`` serves one (its
batcher passes ``cancel`` for requests whose clients left) and ``desta eval``'s predictors are thin over
one (:class:`desta.eval.predictors.EnginePredictor`). A new engine is one file (a class with these
methods and a ``load(model, options)`` factory) plus one line in :data:`desta.infer.registry.ENGINES`.
Optional members the server uses when an engine has them: ``count_tokens(text) -> int`` (prompt limits)
and ``default_system_prompt`` (the web demo).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from desta.errors import DeSTAError
from desta.model.options import GenerationOptions, GenerationResult

if TYPE_CHECKING:  # pragma: no cover
    from desta.endpoints import EndpointClient, RetryPolicy
    from desta.infer.registry import EngineOptions
    from desta.model.desta import DeSTAModel

Conversation = list[dict[str, Any]]


@runtime_checkable
class Engine(Protocol):
    """What answers conversations: ``name`` plus these methods."""

    name: str

    def generate(
        self, conversations: Sequence[Conversation], options: GenerationOptions, *, cancel: threading.Event | None = None
    ) -> list[GenerationResult]:
        """One result per conversation, in order; once ``cancel`` is set the call may stop early."""
        ...

    def stream(
        self, conversation: Conversation, options: GenerationOptions, *, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        """Pieces of one answer as they come; the iterator returns the :class:`GenerationResult`."""
        ...

    def close(self) -> None: ...


class LocalEngine:
    """A loaded desta model in this process (``model.generate`` / ``model.stream``); calls must come from
    one thread (the server runs them on its one engine thread)."""

    def __init__(self, model: DeSTAModel) -> None:
        self.model = model
        self.name = model.name

    @property
    def default_system_prompt(self) -> str | None:
        """The system message the model adds when a conversation has none (``None``: no default)."""
        return getattr(self.model.config, "system_prompt", None)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` in the model's LLM tokenizer (no special tokens)."""
        return len(self.model.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(
        self, conversations: Sequence[Conversation], options: GenerationOptions, *, cancel: threading.Event | None = None
    ) -> list[GenerationResult]:
        return self.model.generate(list(conversations), options, cancel=cancel)

    def stream(
        self, conversation: Conversation, options: GenerationOptions, *, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        return self.model.stream(conversation, options, cancel=cancel)

    def close(self) -> None:
        pass


def load_local(model: str | None, options: EngineOptions) -> LocalEngine:
    """The registry's ``local`` engine: ``desta.load_model(model)`` (``None``: desta-tiny) on
    ``options.device`` at ``options.precision``."""
    import desta
    from desta.model.precision import resolve_dtype

    dtype = resolve_dtype(options.precision, options.device)
    return LocalEngine(desta.load_model(model, device=options.device, llm_dtype=dtype))


def as_engine(engine: Any) -> Engine:
    """``engine`` itself, or a :class:`LocalEngine` around it when it is a bare ``DeSTAModel`` (what
    ``desta.load_model`` returns: the server and the web demo take either)."""
    if isinstance(engine, LocalEngine):
        return engine
    if all(hasattr(engine, a) for a in ("prepare", "tokenizer", "generate", "stream", "config")):
        return LocalEngine(engine)
    return engine


class EndpointEngine:
    """An OpenAI-compatible ``/chat/completions`` server that takes ``input_audio`` parts.

    ``model=None`` answers with the first model the server lists; a named model is checked against
    that list unless ``check_model=False`` (the caller already knows it is served). Given transcripts (``text`` of an
    audio entry) are not part of the OpenAI format and are not sent. The endpoint client does not
    stream, so :meth:`stream` yields the whole answer as one piece; ``cancel`` is accepted and only
    skips calls not yet sent.
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        retry: RetryPolicy | None = None,
        client: EndpointClient | None = None,
        check_model: bool = True,
    ) -> None:
        from desta.endpoints import EndpointClient, EndpointOptions, RetryPolicy

        self.base_url = base_url
        self.client = client or EndpointClient(
            EndpointOptions(base_url=base_url, api_key=api_key, retry=retry or RetryPolicy())
        )
        try:
            if model:
                if check_model:
                    self.client.check_model(model)
                self.name = model
            else:
                served = self.client.list_models()
                if not served:
                    raise DeSTAError(f"{base_url} serves no model (GET /models listed none)")
                self.name = served[0]
        except BaseException:
            self.client.close()
            raise

    def body(self, conversation: Conversation, options: GenerationOptions) -> dict[str, Any]:
        """The request for one conversation: OpenAI messages and the decoding fields of ``options``."""
        from desta.messages import to_openai

        body: dict[str, Any] = {
            "model": self.name,
            "messages": to_openai(conversation),
            "max_tokens": options.max_new_tokens,
            "temperature": options.api_temperature,
        }
        if options.do_sample:
            body["top_p"] = options.top_p
        if options.seed is not None:
            body["seed"] = options.seed
        if options.stop:
            body["stop"] = list(options.stop)
        return body

    def generate(
        self, conversations: Sequence[Conversation], options: GenerationOptions, *, cancel: threading.Event | None = None
    ) -> list[GenerationResult]:
        from desta.endpoints import EndpointError

        if cancel is not None and cancel.is_set():
            return [GenerationResult(text="", finish_reason="cancelled") for _ in conversations]
        answers = self.client.chat_many([self.body(c, options) for c in conversations])
        for a in answers:
            if isinstance(a, EndpointError):
                raise a
        return [
            GenerationResult(
                text=a.text,
                finish_reason=a.finish_reason,
                prompt_tokens=a.prompt_tokens,
                completion_tokens=a.completion_tokens,
            )
            for a in answers
        ]

    def stream(
        self, conversation: Conversation, options: GenerationOptions, *, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        return (yield from whole_answer(self, conversation, options, cancel))

    def close(self) -> None:
        self.client.close()


def whole_answer(
    engine: Engine, conversation: Conversation, options: GenerationOptions, cancel: threading.Event | None
) -> Iterator[str]:
    """``stream`` for an engine that does not stream tokens: the whole answer as one piece; returns the
    :class:`GenerationResult`."""
    result = engine.generate([conversation], options, cancel=cancel)[0]
    if result.text:
        yield result.text
    return result


def server_base_url(url: str) -> str:
    """The OpenAI base URL of a server's URL: ``http://host:port`` (no path) means its ``/v1``, as every
    OpenAI-compatible server (``desta serve``, vLLM, llama.cpp, Ollama) serves there; a bare ``host:port``
    means ``http://``. A URL with a path is used as given.

    >>> server_base_url("http://127.0.0.1:8000"), server_base_url("localhost:8000/"), server_base_url("https://h/api/v1/")
    ('http://127.0.0.1:8000/v1', 'http://localhost:8000/v1', 'https://h/api/v1')
    """
    from urllib.parse import urlsplit

    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url + "/v1" if urlsplit(url).path == "" else url


def load_endpoint(model: str | None, options: EngineOptions) -> EndpointEngine:
    """The registry's ``endpoint`` engine: the server at ``options.server``; ``model`` names the served
    model (``None``: the first one it lists)."""
    if not options.server:
        raise DeSTAError("the endpoint engine needs a server URL (--server URL)")
    return EndpointEngine(server_base_url(options.server), model, api_key=options.api_key, retry=options.retry)

"""The ``openai`` backend: any OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM server,
llama.cpp, Ollama, hosted APIs) through :class:`desta.endpoints.EndpointClient`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from desta.data.backends.base import BackendResult, params_list
from desta.endpoints import (
    Completion,
    EndpointOptions,
    EndpointUnavailableError,
    RequestError,
    RetryPolicy,
    TransientEndpointError,
)
from desta.model.options import GenerationOptions

if TYPE_CHECKING:
    from desta.endpoints.client import EndpointClient


@dataclass
class OpenAIBackend:
    """``concurrency`` requests in flight; transient failures are retried inside (``retry``).

    A request the server refuses (HTTP 400: prompt too long, ...) is a permanent failure with the
    server's message; one that stays transient through every retry comes back ``retryable`` (a later
    run tries it again); an endpoint-wide failure (401/403/404, unknown model, unreachable) raises
    :class:`desta.endpoints.EndpointUnavailableError`.
    """

    model_id: str
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key: str | None = None  # None: $OPENAI_API_KEY, else no key
    concurrency: int = 64
    timeout: float = 120.0  # seconds per try
    retry: RetryPolicy = RetryPolicy()
    extra_body: dict[str, Any] = field(default_factory=dict)
    name: str = "openai"
    handles_retries: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self._client: EndpointClient | None = None

    @property
    def client(self) -> EndpointClient:
        if self._client is None:
            from desta.endpoints.client import EndpointClient

            self._client = EndpointClient(
                EndpointOptions(
                    base_url=self.base_url,
                    api_key=self.api_key,
                    timeout_s=self.timeout,
                    max_connections=self.concurrency,
                    retry=self.retry,
                )
            )
        return self._client

    def check(self) -> None:
        """Fail at once, before any work, if the endpoint is unusable or does not serve the model.

        The model is named, so no model list is needed: one 1-token chat request checks key, URL and
        model on the one route every OpenAI-compatible server implements (minimal servers and proxies
        answer ``GET /models`` with 404 or 501). ``GET /models`` is asked only to name the served
        models after an unknown-model answer."""
        try:
            self.client.probe_chat(self.model_id)
        except EndpointUnavailableError as err:
            raise self.client.explain_unavailable(err, self.model_id) from None

    def body(self, conv: list[dict[str, str]], p: GenerationOptions) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model_id,
            "messages": conv,
            "max_tokens": p.max_new_tokens,
            "temperature": p.api_temperature,
            "top_p": p.top_p,
        }
        if p.stop:
            body["stop"] = list(p.stop)
        if p.seed is not None:
            body["seed"] = p.seed % (2**31)
        body.update(self.extra_body)
        return body

    def generate(self, batch, params):
        plist = params_list(params, len(batch))
        answers = self.client.chat_many([self.body(c, p) for c, p in zip(batch, plist)])
        return [_result(a) for a in answers]

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None


def _result(answer: Completion | Exception) -> BackendResult:
    if isinstance(answer, Completion):
        return BackendResult(
            text=answer.text,
            finish_reason=answer.finish_reason,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            attempts=max(1, answer.attempts),
        )
    if isinstance(answer, (RequestError, TransientEndpointError)):
        retryable = isinstance(answer, TransientEndpointError)
        return BackendResult.failed(answer.reason, retryable=retryable, attempts=answer.attempts)
    raise answer

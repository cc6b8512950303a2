"""What produces the responses: any :class:`desta.infer.engine.Engine` (a local desta model, any
OpenAI-compatible audio endpoint, a text-only LLM, or any engine of :data:`desta.infer.ENGINES`).

A predictor takes a batch of conversations in the desta message format and returns one string per
conversation: :class:`EnginePredictor` is the texts of one ``engine.generate`` call with the run's
options. The three named predictors are that, plus the settings each records with the scores (unchanged,
so earlier runs resume). The runner handles failures: when a batch raises, it retries item by item and
records the error of each item that still fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from desta.eval.base import EvalError
from desta.model.options import GenerationOptions

Conversation = list[dict[str, Any]]


@runtime_checkable
class Predictor(Protocol):
    """name: recorded with the predictions; settings: decoding settings recorded with the scores."""

    name: str

    def predict(self, conversations: Sequence[Conversation]) -> list[str]: ...

    @property
    def settings(self) -> dict[str, Any]: ...


# Evaluation decodes with GenerationOptions() unless told otherwise: greedy, 512 new tokens (DeSTA's
# evaluation scripts).


class EnginePredictor:
    """An engine as a predictor: ``[r.text for r in engine.generate(conversations, options)]``."""

    def __init__(
        self, engine: Any, options: GenerationOptions = GenerationOptions(), backend: str | None = None
    ) -> None:
        self.engine = engine
        self.options = options
        self.name = str(engine.name)
        self.backend = backend or type(engine).__name__  # recorded: the engine's registry name

    @property
    def settings(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "do_sample": self.options.do_sample,
            "temperature": self.options.api_temperature,
            "max_new_tokens": self.options.max_new_tokens,
        }

    def predict(self, conversations: Sequence[Conversation]) -> list[str]:
        return [r.text for r in self.engine.generate(list(conversations), self.options)]

    def close(self) -> None:
        self.engine.close()


class LocalModelPredictor(EnginePredictor):
    """``desta.load_model(...)`` through :class:`desta.infer.engine.LocalEngine`, greedy decoding."""

    def __init__(self, model: Any, options: GenerationOptions = GenerationOptions()) -> None:
        from desta.infer.engine import LocalEngine

        super().__init__(LocalEngine(model), options)
        self.model = model

    @classmethod
    def load(
        cls, name: str | None, device: str = "cpu", options: GenerationOptions = GenerationOptions()
    ) -> LocalModelPredictor:
        import desta

        return cls(desta.load_model(name, device=device), options)

    @property
    def settings(self) -> dict[str, Any]:
        return {"backend": "desta", "do_sample": self.options.do_sample, "max_new_tokens": self.options.max_new_tokens}


class OpenAIEndpointPredictor(EnginePredictor):
    """Any OpenAI-compatible ``/v1/chat/completions`` that accepts ``input_audio`` parts (vLLM, ``desta
    serve``...), through :class:`desta.infer.engine.EndpointEngine` and desta's one endpoint client
    (`desta.endpoints`: pool, timeouts, retries).

    ``model=None`` asks the endpoint: the one model ``GET /models`` lists (an error names them when
    there are several). A batch is sent concurrently; a request that fails on its own raises for that
    item only (the runner records it), an endpoint that cannot serve at all stops the run.
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        options: GenerationOptions = GenerationOptions(),
        timeout_s: float = 300.0,
        max_retries: int = 2,
        client: Any = None,
    ) -> None:
        from desta.endpoints import EndpointClient, EndpointOptions, RetryPolicy
        from desta.infer.engine import EndpointEngine

        client = client or EndpointClient(
            EndpointOptions(
                base_url=base_url.rstrip("/"),
                api_key=api_key,
                timeout_s=timeout_s,
                retry=RetryPolicy(max_attempts=max_retries + 1),
            )
        )
        self.base_url = base_url
        try:
            name = model if model is not None else served_model(client, base_url)
        except EvalError:
            client.close()
            raise
        super().__init__(EndpointEngine(base_url, name, client=client, check_model=False), options)

    @property
    def settings(self) -> dict[str, Any]:
        return {
            "backend": "openai-endpoint",
            "endpoint": self.base_url,
            "temperature": self.options.api_temperature,
            "max_tokens": self.options.max_new_tokens,
        }

    def predict(self, conversations: Sequence[Conversation]) -> list[str]:
        from desta.endpoints import EndpointError, EndpointUnavailableError

        try:
            return super().predict(conversations)
        except EndpointUnavailableError:
            raise  # no item can succeed: the runner stops
        except EndpointError as err:  # the runner retries item by item and records each item's own error
            raise EvalError(f"endpoint {self.base_url}: {err.reason}") from err


def served_model(client: Any, base_url: str) -> str:
    """The single model an endpoint serves (``GET /models``), for ``--endpoint`` without a model name."""
    from desta.endpoints import EndpointError

    try:
        models = client.list_models()
    except EndpointError as err:
        raise EvalError(
            f"--endpoint {base_url}: could not list its models ({err.reason}); pass --endpoint-model NAME"
        ) from err
    if len(models) != 1:
        raise EvalError(
            f"--endpoint {base_url} serves {len(models)} models ({', '.join(models[:10]) or 'none'}); "
            "pick one with --endpoint-model NAME"
        )
    return models[0]


class TextLLMPredictor(EnginePredictor):
    """A text-only chat LLM (the backbone) for reference runs such as Speech-IFEval's forgetting rate:
    :class:`desta.infer.text_llm.TextLLMEngine`, the same engine with no audio.

    Conversations must carry no audio (use ``Task.text_prompt``). Greedy decoding.
    """

    def __init__(
        self, model: Any, tokenizer: Any, name: str, options: GenerationOptions = GenerationOptions()
    ) -> None:
        from desta.infer.text_llm import TextLLMEngine

        super().__init__(TextLLMEngine(model, tokenizer, name), options)
        self.model = model
        self.tokenizer = tokenizer

    @classmethod
    def load(cls, name: str, options: GenerationOptions = GenerationOptions()) -> TextLLMPredictor:
        from desta.model.backbones import load_llm

        model, tokenizer = load_llm(name)
        return cls(model, tokenizer, name, options)

    @property
    def settings(self) -> dict[str, Any]:
        return {"backend": "text-llm", "do_sample": False, "max_new_tokens": self.options.max_new_tokens}

    def predict(self, conversations: Sequence[Conversation]) -> list[str]:
        if any(m.get("audios") for conv in conversations for m in conv):
            raise EvalError("a text-only LLM cannot take audio; render the item with Task.text_prompt")
        greedy = GenerationOptions(max_new_tokens=self.options.max_new_tokens)  # as its settings record
        return [r.text for r in self.engine.generate(list(conversations), greedy)]

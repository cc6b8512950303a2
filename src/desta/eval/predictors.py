"""What produces the responses: a local desta model, any OpenAI-compatible audio endpoint, a text LLM.

A predictor takes a batch of conversations in the desta message format and returns one string per
conversation. The runner handles failures: when a batch raises, it retries item by item and records
the error of each item that still fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from desta.eval.base import EvalError
from desta.messages import to_openai
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


class LocalModelPredictor:
    """``desta.load_model(...).generate`` with greedy decoding."""

    def __init__(self, model: Any, options: GenerationOptions = GenerationOptions()) -> None:
        self.model = model
        self.options = options
        self.name = str(getattr(model, "name", "desta"))

    @classmethod
    def load(
        cls, name: str | None, device: str = "cpu", options: GenerationOptions = GenerationOptions()
    ) -> LocalModelPredictor:
        import desta

        return cls(desta.load_model(name, device=device), options)

    @property
    def settings(self) -> dict[str, Any]:
        return {"backend": "desta", "do_sample": self.options.do_sample, "max_new_tokens": self.options.max_new_tokens}

    def predict(self, conversations: Sequence[Conversation]) -> list[str]:
        return [r.text for r in self.model.generate(list(conversations), self.options)]


class OpenAIEndpointPredictor:
    """Any OpenAI-compatible ``/v1/chat/completions`` that accepts ``input_audio`` parts (vLLM, ``desta
    serve``...), through desta's one endpoint client (`desta.endpoints`: pool, timeouts, retries).

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

        self._client = client or EndpointClient(
            EndpointOptions(
                base_url=base_url.rstrip("/"),
                api_key=api_key,
                timeout_s=timeout_s,
                retry=RetryPolicy(max_attempts=max_retries + 1),
            )
        )
        self.base_url = base_url
        self.options = options
        try:
            self.name = model if model is not None else served_model(self._client, base_url)
        except EvalError:
            self._client.close()
            raise

    @property
    def settings(self) -> dict[str, Any]:
        return {
            "backend": "openai-endpoint",
            "endpoint": self.base_url,
            "temperature": self.options.api_temperature,
            "max_tokens": self.options.max_new_tokens,
        }

    def close(self) -> None:
        self._client.close()

    def predict(self, conversations: Sequence[Conversation]) -> list[str]:
        from desta.endpoints import EndpointError

        bodies = [
            {
                "model": self.name,
                "messages": to_openai(c),
                "temperature": self.options.api_temperature,
                "max_tokens": self.options.max_new_tokens,
            }
            for c in conversations
        ]
        results = self._client.chat_many(bodies)
        failed = [r for r in results if isinstance(r, EndpointError)]
        if failed:  # the runner retries item by item and records each item's own error
            raise EvalError(f"endpoint {self.base_url}: {failed[0].reason}")
        return [r.text for r in results]


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


class TextLLMPredictor:
    """A text-only chat LLM (the backbone) for reference runs such as Speech-IFEval's forgetting rate.

    Conversations must carry no audio (use ``Task.text_prompt``). Greedy decoding.
    """

    def __init__(
        self, model: Any, tokenizer: Any, name: str, options: GenerationOptions = GenerationOptions()
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.options = options

    @classmethod
    def load(cls, name: str, options: GenerationOptions = GenerationOptions()) -> TextLLMPredictor:
        from desta.model.backbones import load_llm

        model, tokenizer = load_llm(name)
        return cls(model, tokenizer, name, options)

    @property
    def settings(self) -> dict[str, Any]:
        return {"backend": "text-llm", "do_sample": False, "max_new_tokens": self.options.max_new_tokens}

    def predict(self, conversations: Sequence[Conversation]) -> list[str]:
        import torch

        outputs = []
        for conv in conversations:
            if any(m.get("audios") for m in conv):
                raise EvalError("a text-only LLM cannot take audio; render the item with Task.text_prompt")
            messages = [{"role": m["role"], "content": m["content"]} for m in conv]
            ids = self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt"
            )
            if not isinstance(ids, torch.Tensor):  # newer transformers return a BatchEncoding
                ids = ids["input_ids"]
            with torch.no_grad():
                out = self.model.generate(
                    ids,
                    attention_mask=torch.ones_like(ids),
                    max_new_tokens=self.options.max_new_tokens,
                    do_sample=False,
                    pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
                )
            outputs.append(self.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip())
        return outputs

"""A ``DeSTAModel`` as the server's :class:`~desta.serve.engine.Engine`.

What the server needs beyond ``generate``/``stream``: a ``cancel`` event forwarded when the model's
methods take one (``DeSTAModel.generate(..., cancel=...)``; older models without it still work, the
batcher then only skips work that has not started), token counting for the prompt limit, the model's
own default system prompt (the web demo shows it), and real token counts at the end of a stream
(``stream_options.include_usage``): the model's stream may return its ``GenerationResult``; when it
returns nothing, the prompt is counted from the model's own prepared inputs and the answer by
tokenizing the streamed text.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from desta.serve.engine import accepts_cancel


class ModelEngine:
    """Wraps a loaded ``desta.DeSTAModel`` (``model``) for serving; calls must come from one thread."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.name = model.name
        self._generate_cancel = _takes_cancel(model, "generate")
        self._stream_cancel = _takes_cancel(model, "stream")

    @property
    def default_system_prompt(self) -> str | None:
        """The system message the model adds when a conversation has none (``None``: no default)."""
        return getattr(self.model.config, "system_prompt", None)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` in the model's LLM tokenizer (no special tokens)."""
        return len(self.model.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(
        self, conversations: list[list[dict]], options: Any, cancel: threading.Event | None = None
    ) -> list[Any]:
        if self._generate_cancel:
            return self.model.generate(conversations, options, cancel=cancel)
        return self.model.generate(conversations, options)

    def stream(
        self, conversation: list[dict], options: Any, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        """Pieces of the answer; returns a ``GenerationResult`` with the prompt and answer token counts."""
        from desta.infer.options import GenerationResult

        if self._stream_cancel:
            iterator = self.model.stream(conversation, options, cancel=cancel)
        else:
            iterator = self.model.stream(conversation, options)
        pieces: list[str] = []
        result = None
        try:
            while True:
                try:
                    piece = next(iterator)
                except StopIteration as stop:
                    result = stop.value
                    break
                pieces.append(piece)
                yield piece
        finally:
            iterator.close()
        if isinstance(result, GenerationResult) and result.prompt_tokens:
            return result
        text = "".join(pieces).strip()
        if cancel is not None and cancel.is_set():  # no one will read the usage: count nothing
            return GenerationResult(text=text, finish_reason="stop")
        completion = self.count_tokens(text) if text else 0
        limit = getattr(options, "max_new_tokens", None)
        return GenerationResult(
            text=text,
            finish_reason="length" if limit is not None and completion >= limit else "stop",
            prompt_tokens=self.prompt_tokens(conversation),
            completion_tokens=completion,
        )

    def prompt_tokens(self, conversation: list[dict]) -> int:
        """Length of the model's prompt for ``conversation`` (audio slots and transcripts included).

        Runs the model's ``prepare`` again; its transcript cache makes the second pass cheap.
        """
        prepared = self.model.prepare([conversation])
        return int(prepared.inputs["attention_mask"][0].sum())


def load_engine(name: str | None = None, device: str = "cpu") -> ModelEngine:
    """Load a desta model as a serving engine (``None``: the embedded desta-tiny default)."""
    import desta

    return ModelEngine(desta.load_model(name=name, device=device))


def _takes_cancel(model: Any, method: str) -> bool:
    """Whether ``model.<method>`` accepts ``cancel=``: named in its signature, or forwarded through
    ``**overrides`` to ``model.generator.<method>`` (``desta.model.generation.Generator``) that names it."""
    if accepts_cancel(getattr(model, method)):
        return True
    generator = getattr(model, "generator", None)
    return generator is not None and accepts_cancel(getattr(generator, method, None))


def as_engine(engine: Any) -> Any:
    """``engine`` itself, or a :class:`ModelEngine` around it when it is a bare ``DeSTAModel``."""
    if isinstance(engine, ModelEngine):
        return engine
    if all(hasattr(engine, a) for a in ("prepare", "tokenizer", "generate", "stream", "config")):
        return ModelEngine(engine)
    return engine

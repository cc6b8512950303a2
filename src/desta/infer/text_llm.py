"""A text-only chat LLM as an :class:`~desta.infer.engine.Engine`: the same engine, with no audio.

The one implementation of text generation with a ``transformers`` causal LM (the backbone alone, e.g.
SmolLM2 or Llama): chat template, batched left-padded ``generate``, stop strings, finish reasons and
token counts. Evaluation's text-only reference runs (``desta eval --text-llm``) and the data pipeline's
``transformers`` backend (:class:`desta.data.backends.TransformersBackend`) both run it.

Decoding: sampling when ``options.api_temperature > 0`` (``temperature``, ``top_p``; ``seed`` seeds
torch once per call), else greedy. With sampling, the text depends on how conversations were batched;
greedy decoding does not.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from desta.errors import DeSTAError
from desta.model.options import GenerationOptions, GenerationResult

if TYPE_CHECKING:  # pragma: no cover
    from desta.infer.registry import EngineOptions

Conversation = list[dict[str, Any]]


class _StopOn:
    """A transformers StoppingCriteria: every row stops once ``event`` is set."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        return torch.full(
            (input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device
        )


class TextLLMEngine:
    """``model`` (an ``AutoModelForCausalLM``) and its ``tokenizer`` (with a chat template).

    ``max_prompt_tokens``: longest prompt :meth:`context_limit` allows (``None``: the model's context
    minus ``max_new_tokens``). The tokenizer is set to left padding (a pad token is added when it has none).
    """

    def __init__(
        self, model: Any, tokenizer: Any, name: str, *, max_prompt_tokens: int | None = None
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.max_prompt_tokens = max_prompt_tokens
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token

    @classmethod
    def load(cls, model_id: str, **kwargs: Any) -> TextLLMEngine:
        """Load ``model_id`` with :func:`desta.model.backbones.load_llm` (fp32, CPU)."""
        from desta.model.backbones import load_llm

        model, tokenizer = load_llm(model_id)
        return cls(model, tokenizer, model_id, **kwargs)

    # the parts, for callers that check prompts before generating (the data backend) -----------------
    def prompt_ids(self, conversations: Sequence[Conversation]) -> list[list[int]]:
        """The chat-template token ids of each conversation's prompt (generation prompt added)."""
        for conv in conversations:
            if any(m.get("audios") for m in conv):
                raise DeSTAError("a text-only LLM cannot take audio: give conversations without audios")
        prompts = [
            self.tokenizer.apply_chat_template(
                [{"role": m["role"], "content": m["content"]} for m in conv],
                tokenize=False,
                add_generation_prompt=True,
            )
            for conv in conversations
        ]
        return [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]

    def context_limit(self, max_new_tokens: int) -> int:
        """Longest prompt, in tokens, that leaves room for ``max_new_tokens``."""
        if self.max_prompt_tokens is not None:
            return self.max_prompt_tokens
        ctx = getattr(self.model.config, "max_position_embeddings", None) or 8192
        return ctx - max_new_tokens

    def generate_ids(
        self, ids: Sequence[list[int]], options: GenerationOptions, *, cancel: threading.Event | None = None
    ) -> list[GenerationResult]:
        """Answer prompts given as token ids, in one batched ``generate`` call."""
        import torch

        tok = self.tokenizer
        if not ids:
            return []
        if cancel is not None and cancel.is_set():
            return [GenerationResult(text="", finish_reason="cancelled", prompt_tokens=len(x)) for x in ids]
        enc = tok.pad({"input_ids": list(ids)}, return_tensors="pt").to(self.model.device)
        eos = tok.eos_token_id
        kwargs: dict[str, Any] = {"max_new_tokens": options.max_new_tokens, "pad_token_id": tok.pad_token_id}
        if options.api_temperature > 0:
            kwargs.update(do_sample=True, temperature=options.temperature, top_p=options.top_p)
            if options.seed is not None:
                torch.manual_seed(options.seed % (2**32))
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if options.stop:
            kwargs.update(stop_strings=list(options.stop), tokenizer=tok)
        if cancel is not None:
            from transformers import StoppingCriteriaList

            kwargs["stopping_criteria"] = StoppingCriteriaList([_StopOn(cancel)])
        with torch.inference_mode():
            gen = self.model.generate(**enc, **kwargs)
        new = gen[:, enc["input_ids"].shape[1] :].tolist()
        results = []
        for prompt, row in zip(ids, new):
            toks = row
            stopped = eos in toks
            if stopped:
                toks = toks[: toks.index(eos)]
            toks = [t for t in toks if t != tok.pad_token_id or t == eos]
            text = tok.decode(toks, skip_special_tokens=True).strip()
            for s in options.stop:
                if s in text:
                    text, stopped = text[: text.index(s)], True
            finish = "stop" if stopped or len(row) < options.max_new_tokens else "length"
            if finish == "length" and cancel is not None and cancel.is_set():
                finish = "cancelled"
            results.append(
                GenerationResult(
                    text=text,
                    token_ids=toks,
                    finish_reason=finish,
                    prompt_tokens=len(prompt),
                    completion_tokens=len(toks),
                )
            )
        return results

    # the Engine protocol ---------------------------------------------------------------------------
    def generate(
        self,
        conversations: Sequence[Conversation],
        options: GenerationOptions,
        *,
        cancel: threading.Event | None = None,
    ) -> list[GenerationResult]:
        return self.generate_ids(self.prompt_ids(conversations), options, cancel=cancel)

    def stream(
        self, conversation: Conversation, options: GenerationOptions, *, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        """The whole answer as one piece (no token streaming here); returns its result."""
        from desta.infer.engine import whole_answer

        return (yield from whole_answer(self, conversation, options, cancel))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def close(self) -> None:
        self.model = None


def load(model: str | None, options: EngineOptions) -> TextLLMEngine:
    """The registry's ``text-llm`` engine: ``model`` (a backbone id such as
    ``offline:smollm2-135m-instruct``, or a hub id/folder) on ``options.device``."""
    if not model:
        raise DeSTAError("the text-llm engine needs a model (a text LLM's id or folder)")
    engine = TextLLMEngine.load(model)
    engine.model = engine.model.to(options.device)
    return engine

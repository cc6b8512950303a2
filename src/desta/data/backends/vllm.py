"""The ``vllm`` backend: offline batch inference with ``vllm.LLM.chat``; vLLM is imported only when chosen."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any

from desta.data.backends.base import BackendResult, params_list
from desta.errors import BackboneUnavailableError


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
        plist = params_list(params, len(batch))
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

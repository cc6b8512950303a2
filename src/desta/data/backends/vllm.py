"""The ``vllm`` backend: offline batch inference with ``vllm.LLM.chat``; vLLM is imported only when chosen.

One ``generate`` call hands the whole batch to vLLM, which schedules it with continuous batching;
each request keeps its own seed, so a rerun of a request gives the same answer. A remote
``vllm serve`` is reached through the ``openai`` backend instead (``--backend openai --base-url``).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any

from desta.data.backends.base import BackendResult, params_list
from desta.errors import BackboneUnavailableError
from desta.infer.vllm_engine import cpu_safe_engine_kwargs, sampling_params

__all__ = ["VLLMBackend", "cpu_safe_engine_kwargs"]


@dataclass
class VLLMBackend:
    """Offline batched generation with ``vllm.LLM(model).chat(batch, sampling_params)``.

    ``engine_kwargs`` go to ``vllm.LLM`` (``tensor_parallel_size``, ``max_model_len``, ``dtype``,
    ``gpu_memory_utilization``, ...). ``engine`` uses an already started ``vllm.LLM`` instead (it is
    then not shut down by :meth:`close`). Prompts vLLM rejects (longer than the model context) come
    back as permanent failures, one by one, without failing their batch neighbours.
    """

    model_id: str
    engine_kwargs: dict[str, Any] = field(default_factory=dict)
    engine: Any = None
    name: str = "vllm"

    def __post_init__(self) -> None:
        if importlib.util.find_spec("vllm") is None:
            raise BackboneUnavailableError(
                "the vllm backend needs vLLM, which is not installed: `bash scripts/setup-vllm.sh` (CPU) or "
                "`pip install vllm` (CUDA), or start `vllm serve MODEL` elsewhere and use --backend openai "
                "--base-url http://HOST:8000/v1"
            )
        import vllm

        self._vllm = vllm
        self._owned = self.engine is None
        if self.engine is None:
            self.llm = vllm.LLM(model=self.model_id, **cpu_safe_engine_kwargs(self.engine_kwargs))
        else:
            self.llm = self.engine

    def _sampling(self, p):
        return sampling_params(p)  # the vLLM engine's mapping of GenerationOptions

    def generate(self, batch, params):
        plist = params_list(params, len(batch))
        try:
            outs = self.llm.chat(batch, [self._sampling(p) for p in plist], use_tqdm=False)
        except ValueError as err:  # vLLM validates every prompt first (too long, bad content)
            if len(batch) == 1:
                return [BackendResult.failed(f"rejected by vLLM: {err}", retryable=False)]
            return [r for c, p in zip(batch, plist) for r in self.generate([c], [p])]
        results = []
        for out in outs:
            o = out.outputs[0]
            results.append(
                BackendResult(
                    text=o.text.strip(),
                    finish_reason="length" if o.finish_reason == "length" else "stop",
                    prompt_tokens=len(out.prompt_token_ids or []),
                    completion_tokens=len(o.token_ids),
                )
            )
        return results

    def close(self) -> None:
        llm, self.llm = self.llm, None
        if llm is not None and self._owned:
            llm.llm_engine.engine_core.shutdown()  # stop the engine process now, not at interpreter exit

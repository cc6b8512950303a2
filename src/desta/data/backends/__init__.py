"""Text-generation backends for self-generation, behind one small protocol (:mod:`.base`).

* ``transformers``: a local ``AutoModelForCausalLM`` (CPU or GPU) with real batching (left padding).
* ``openai``: any OpenAI-compatible endpoint through :class:`desta.endpoints.EndpointClient`.
* ``vllm``: offline batch inference with ``vllm.LLM.chat``; vLLM is imported only when chosen.
* ``fake``: answers instantly with a deterministic text (tests, benchmarks, dry runs).

A new backend is a class with ``name``, ``model_id``, ``generate`` and ``close`` (optionally ``check``,
called once before a run, and ``handles_retries``) plus one line in :func:`make_backend`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from desta.data.backends.base import (
    BackendError,
    BackendResult,
    PermanentBackendError,
    RetryPolicy,
    TextBackend,
    TransientBackendError,
    generate_with_retries,
)
from desta.data.backends.fake import FakeBackend
from desta.data.backends.openai import OpenAIBackend
from desta.data.backends.transformers import TransformersBackend, load_text_llm
from desta.data.backends.vllm import VLLMBackend
from desta.errors import DeSTAError

__all__ = [
    "BACKENDS",
    "SUGGESTED_SIZES",
    "BackendError",
    "BackendResult",
    "BackendSpec",
    "FakeBackend",
    "OpenAIBackend",
    "PermanentBackendError",
    "RetryPolicy",
    "TextBackend",
    "TransformersBackend",
    "TransientBackendError",
    "VLLMBackend",
    "generate_with_retries",
    "load_text_llm",
    "make_backend",
    "suggested_sizes",
]

BACKENDS = ("transformers", "openai", "vllm", "fake")

#: ``(batch size, max new tokens)`` that suit each backend: a CPU model decodes a few tokens per second,
#: so it gets small batches (the progress bar moves every few requests) and short targets; servers and
#: vLLM batch widely. ``desta data generate`` uses these unless told otherwise.
SUGGESTED_SIZES: dict[str, tuple[int, int]] = {
    "transformers on CPU": (4, 128),
    "transformers on GPU": (32, 512),
    "openai": (64, 512),
    "vllm": (256, 512),
    "fake": (64, 512),
}


def suggested_sizes(name: str, device: str = "cpu") -> tuple[int, int]:
    """``(batch size, max new tokens)`` for backend ``name`` (on ``device`` for transformers)."""
    if name == "transformers":
        return SUGGESTED_SIZES["transformers on CPU" if device == "cpu" else "transformers on GPU"]
    if name not in SUGGESTED_SIZES:
        raise DeSTAError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return SUGGESTED_SIZES[name]


@dataclass(frozen=True)
class BackendSpec:
    """A picklable recipe for a backend, so that worker processes (Ray actors) can build their own."""

    name: str
    model: str
    options: tuple[tuple[str, Any], ...] = ()

    def build(self) -> TextBackend:
        return make_backend(self.name, self.model, **dict(self.options))


def make_backend(name: str, model: str, **options: Any) -> TextBackend:
    if name == "transformers":
        return TransformersBackend(model_id=model, **options)
    if name == "openai":
        return OpenAIBackend(model_id=model, **options)
    if name == "vllm":
        return VLLMBackend(model_id=model, **options)
    if name == "fake":
        return FakeBackend(model_id=model, **options)
    raise DeSTAError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")

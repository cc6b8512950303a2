"""Text-generation backends for self-generation, behind one small protocol (:mod:`.base`).

* ``transformers``: a local ``AutoModelForCausalLM`` (CPU or GPU) with real batching (left padding).
* ``openai``: any OpenAI-compatible endpoint through :class:`desta.endpoints.EndpointClient`.
* ``vllm``: offline batch inference with ``vllm.LLM.chat``; vLLM is imported only when chosen.
* ``fake``: answers instantly with a deterministic text (tests, benchmarks, dry runs).

A new backend is a class with ``name``, ``model_id``, ``generate`` and ``close`` (optionally ``check``,
called once before a run, and ``handles_retries``) plus one line in :data:`BACKENDS`, the one table of
backend names: ``desta data generate``'s ``--backend`` / ``--ray-engine`` choices, the sizes that suit
each backend, the command-line options it takes and :func:`make_backend` all read it.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    "Backend",
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
    "backend_options",
    "generate_with_retries",
    "get_backend",
    "load_text_llm",
    "make_backend",
    "suggested_sizes",
]

@dataclass(frozen=True)
class Backend:
    """One registered backend: its class and what ``desta data generate`` needs to know about it.

    ``sizes`` are the ``(batch size, max new tokens)`` that suit it: a CPU model decodes a few tokens
    per second, so it gets small batches (the progress bar moves every few requests) and short targets;
    servers and vLLM batch widely. ``desta data generate`` uses these unless told otherwise.
    """

    cls: type
    sizes: tuple[int, int]
    gpu_sizes: tuple[int, int] | None = None  # where a GPU changes them (device other than "cpu")
    cli_options: tuple[str, ...] = ()  # `desta data generate` arguments passed on as keyword arguments
    engine_args: bool = False  # takes --engine-arg NAME=VALUE as ``engine_kwargs``


#: The one table of backend names (``--backend`` adds ``ray``, which runs one of these in each replica).
BACKENDS: dict[str, Backend] = {
    "transformers": Backend(TransformersBackend, (4, 128), gpu_sizes=(32, 512), cli_options=("device",)),
    "openai": Backend(OpenAIBackend, (64, 512), cli_options=("base_url", "concurrency", "timeout")),
    "vllm": Backend(VLLMBackend, (256, 512), engine_args=True),
    "fake": Backend(FakeBackend, (64, 512)),
}

#: ``(batch size, max new tokens)`` by backend (and device, where it matters), as ``--help`` shows them.
SUGGESTED_SIZES: dict[str, tuple[int, int]] = {
    key: sizes
    for name, b in BACKENDS.items()
    for key, sizes in (
        ((f"{name} on CPU", b.sizes), (f"{name} on GPU", b.gpu_sizes)) if b.gpu_sizes else ((name, b.sizes),)
    )
}


def get_backend(name: str) -> Backend:
    """The registered backend ``name``; an unknown name is a :class:`DeSTAError` listing the known ones."""
    if name not in BACKENDS:
        raise DeSTAError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return BACKENDS[name]


def suggested_sizes(name: str, device: str = "cpu") -> tuple[int, int]:
    """``(batch size, max new tokens)`` for backend ``name`` (on ``device`` where it matters)."""
    b = get_backend(name)
    return b.gpu_sizes if b.gpu_sizes and device != "cpu" else b.sizes


def backend_options(name: str, args: Mapping[str, Any], engine_args: dict[str, Any] | None = None) -> dict[str, Any]:
    """Keyword arguments for backend ``name`` from ``desta data generate``'s arguments (``args``) and
    its ``--engine-arg`` values."""
    b = get_backend(name)
    options = {key: args[key] for key in b.cli_options}
    if engine_args:
        if not b.engine_args:
            takers = ", ".join(n for n, x in BACKENDS.items() if x.engine_args)
            raise DeSTAError(f"--engine-arg applies to the {takers} engine, not to {name!r}")
        options["engine_kwargs"] = engine_args
    return options


@dataclass(frozen=True)
class BackendSpec:
    """A picklable recipe for a backend, so that worker processes (Ray actors) can build their own."""

    name: str
    model: str
    options: tuple[tuple[str, Any], ...] = ()

    def build(self) -> TextBackend:
        return make_backend(self.name, self.model, **dict(self.options))


def make_backend(name: str, model: str, **options: Any) -> TextBackend:
    return get_backend(name).cls(model_id=model, **options)

"""Engines by name: the one table that ``desta ask --engine``, ``desta eval --engine`` and ``desta serve
--engine`` read (their choices and help come from it).

A new engine is one file plus one line here: the file holds a class with the methods of
:class:`desta.infer.engine.Engine` and a factory ``load(model, options) -> Engine``; the line names the
factory as ``"module:function"`` (imported only when that engine is made, so this table costs a command
nothing to import). ``requires`` names a module that must be importable (vLLM's engine is listed
everywhere and made where vLLM is installed).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from desta.errors import DeSTAError

if TYPE_CHECKING:  # pragma: no cover
    from desta.infer.engine import Engine


@dataclass(frozen=True)
class EngineOptions:
    """What a command line knows besides the model: each factory reads the fields that apply to it."""

    device: str = "cpu"
    precision: str = "auto"  # desta.model.precision.PRECISIONS
    server: str | None = None  # an OpenAI-compatible server's URL (the endpoint engine)
    api_key: str | None = None
    retry: Any = None  # desta.endpoints.RetryPolicy for the endpoint engine (None: its default)


@dataclass(frozen=True)
class EngineEntry:
    factory: str  # "module:function", called as function(model, options)
    help: str
    requires: str | None = None  # a module that must be importable


ENGINES: dict[str, EngineEntry] = {
    "local": EngineEntry("desta.infer.engine:load_local", "a desta model in this process (transformers)"),
    "endpoint": EngineEntry("desta.infer.engine:load_endpoint", "an OpenAI-compatible server (--server URL)"),
    "text-llm": EngineEntry(
        "desta.infer.text_llm:load", "a text-only chat LLM (no audio), e.g. the backbone"
    ),
    "vllm": EngineEntry(
        "desta.infer.vllm_engine:load", "vLLM's offline LLM on a `desta export-vllm` folder", "vllm"
    ),
}


def engines_help() -> str:
    """One line for ``--engine``'s help: every name and what it runs."""
    return "; ".join(f"{name}: {e.help}" for name, e in ENGINES.items())


def make_engine(name: str, model: str | None = None, options: EngineOptions | None = None) -> Engine:
    """The engine registered as ``name`` for ``model`` (``None``: that engine's default)."""
    entry = ENGINES.get(name)
    if entry is None:
        raise DeSTAError(f"unknown engine {name!r}; engines: {', '.join(ENGINES)}")
    if entry.requires and importlib.util.find_spec(entry.requires) is None:
        raise DeSTAError(f"the {name} engine needs {entry.requires}, which is not installed here")
    module, _, function = entry.factory.partition(":")
    return getattr(importlib.import_module(module), function)(model, options or EngineOptions())

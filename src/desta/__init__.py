"""desta: DeSTA2.5-Audio reimplemented, with its data, training, serving and evaluation pipeline.

The public API is small and loads lazily (nothing heavy happens at import)::

    import desta
    model = desta.load_model()                      # desta-tiny, offline, CPU
    out = model.generate([{"role": "user", "content": "<|AUDIO|> What is said?",
                           "audios": [{"audio": "clip.wav"}]}])
    print(out[0].text)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "DeSTAConfig",
    "DeSTAModel",
    "DeSTAError",
    "GenerationOptions",
    "GenerationResult",
    "Generator",
    "conversation",
    "example_clip",
    "load_model",
    "register_auto_classes",
    "save_model",
]

_LAZY = {
    "DeSTAConfig": "desta.model.config",
    "DeSTAModel": "desta.model.desta",
    "GenerationOptions": "desta.infer.options",
    "GenerationResult": "desta.infer.options",
    "Generator": "desta.infer.generation",
    "conversation": "desta.messages",
    "example_clip": "desta.model.load",
    "load_model": "desta.model.load",
    "register_auto_classes": "desta.model.hub",
    "save_model": "desta.model.load",
    "DeSTAError": "desta.errors",
}

if TYPE_CHECKING:  # pragma: no cover
    from desta.errors import DeSTAError
    from desta.infer.generation import Generator
    from desta.infer.options import GenerationOptions, GenerationResult
    from desta.messages import conversation
    from desta.model.config import DeSTAConfig
    from desta.model.desta import DeSTAModel
    from desta.model.hub import register_auto_classes
    from desta.model.load import example_clip, load_model, save_model


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'desta' has no attribute {name!r}")


def _register_with_transformers() -> None:
    """If transformers is already imported, make its Auto classes know desta folders (cheap then);
    otherwise :func:`desta.load_model` registers them on first use."""
    import sys

    if "transformers" in sys.modules:
        from desta.model.hub import register_auto_classes

        register_auto_classes()


_register_with_transformers()

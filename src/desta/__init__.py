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

__all__ = ["DeSTAConfig", "DeSTAModel", "DeSTAError", "GenerationOptions", "GenerationResult", "load_model"]

_LAZY = {
    "DeSTAConfig": "desta.model.config",
    "DeSTAModel": "desta.model.desta",
    "GenerationOptions": "desta.infer.options",
    "GenerationResult": "desta.infer.options",
    "load_model": "desta.model.load",
    "DeSTAError": "desta.errors",
}

if TYPE_CHECKING:  # pragma: no cover
    from desta.errors import DeSTAError
    from desta.infer.options import GenerationOptions, GenerationResult
    from desta.model.config import DeSTAConfig
    from desta.model.desta import DeSTAModel
    from desta.model.load import load_model


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'desta' has no attribute {name!r}")

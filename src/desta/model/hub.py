"""Hugging Face conventions for DeSTA models: ``save_pretrained`` folders, ``push_to_hub``, Auto classes.

The folder layout is described and written in :mod:`desta.model.pretrained`; this module binds it to
:class:`~desta.model.desta.DeSTAModel`.

``register_auto_classes`` makes ``transformers.AutoConfig`` / ``AutoModel`` resolve ``model_type:
desta`` folders; building a model calls it (transformers is loaded then anyway).
"""

from __future__ import annotations

import os
from typing import Any

from desta.model.desta import DeSTAModel
from desta.model.pretrained import (  # noqa: F401  (public here)
    ARCHITECTURE,
    HF_CONFIG_KEYS,
    model_card,
    push_to_hub,
    register,
    save_pretrained,
)
from desta.model.pretrained import from_pretrained as _from_pretrained


def register_auto_classes() -> None:
    """Let ``AutoConfig`` / ``AutoModel`` load ``model_type: desta`` folders (idempotent)."""
    register(DeSTAModel)


def from_pretrained(name: str | os.PathLike, *args: Any, **kwargs: Any) -> DeSTAModel:
    """``DeSTAModel.from_pretrained``: :func:`desta.model.load.load_model` (transformers' extra keyword
    arguments dropped; ``dtype``/``torch_dtype`` set the LLM dtype)."""
    return _from_pretrained(DeSTAModel, name, *args, **kwargs)

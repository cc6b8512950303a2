"""vLLM plugin: out-of-tree registration of the DeSTA model (entry point ``vllm.general_plugins``).

``pyproject.toml`` declares ``desta = "desta.serve.vllm_plugin:register"``; vLLM calls ``register()`` in
every process it starts. The model class is registered by its import string, so CUDA is never
touched at plugin load (vLLM's advice against CUDA-in-fork errors). Without vLLM installed,
``register()`` does nothing.

A checkpoint folder served by vLLM needs ``"architectures": ["DeSTAForConditionalGeneration"]`` and
``"model_type": "desta"`` in its ``config.json``; :func:`prepare_vllm_dir` writes such a folder from a
``desta`` checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from desta.errors import ConfigError

ARCHITECTURE = "DeSTAForConditionalGeneration"
MODEL_CLASS = "desta.serve.vllm_model:DeSTAForConditionalGeneration"
ALIASES = ("DeSTA25AudioModel",)  # the official release's architecture name
MODEL_TYPES = ("desta", "desta25")


def register() -> None:
    """Register the DeSTA architecture and its config type with vLLM and transformers."""
    try:
        from vllm import ModelRegistry
    except ImportError:
        return
    _register_hf_config()
    supported = set(ModelRegistry.get_supported_archs())
    for arch in (ARCHITECTURE, *ALIASES):
        if arch not in supported:
            ModelRegistry.register_model(arch, MODEL_CLASS)


def _register_hf_config() -> None:
    from transformers import AutoConfig

    from desta.serve.vllm_config import DeSTA25HFConfig, DeSTAHFConfig

    for cls in (DeSTAHFConfig, DeSTA25HFConfig):
        try:
            AutoConfig.register(cls.model_type, cls)
        except ValueError:  # already registered in this process
            pass


def prepare_vllm_dir(checkpoint: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Write a folder vLLM can load: ``config.json`` with vLLM's keys, weights linked, not copied.

    ``checkpoint`` is a ``desta`` checkpoint folder (``config.json`` + ``model.safetensors``). The LLM's
    tokenizer is not copied: pass ``--tokenizer <llm_model_id>`` to ``vllm serve``.
    """
    src = Path(checkpoint)
    cfg_path = src / "config.json"
    if not cfg_path.is_file():
        raise ConfigError(f"{src} has no config.json; give a desta checkpoint folder")
    config = json.loads(cfg_path.read_text())
    config["architectures"] = [ARCHITECTURE]
    config["model_type"] = "desta"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    for weights in src.glob("*.safetensors"):
        link = out / weights.name
        if link.exists() or link.is_symlink():
            link.unlink()
        link.symlink_to(weights.resolve())
    return out

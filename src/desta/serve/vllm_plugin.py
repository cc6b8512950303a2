"""vLLM plugin: out-of-tree registration of the DeSTA model (entry point ``vllm.general_plugins``).

``pyproject.toml`` declares ``desta = "desta.serve.vllm_plugin:register"``; vLLM calls ``register()`` in
every process it starts. The model class is registered by its import string, so neither the model
module nor CUDA is touched at plugin load (vLLM's advice against CUDA-in-fork errors). Without vLLM
installed, ``register()`` does nothing.

vLLM serves folders written by ``desta export-vllm`` (:mod:`desta.serve.vllm_export`): their
``config.json`` names the architecture below and ``model_type: desta``.
"""

from __future__ import annotations

ARCHITECTURE = "DeSTAForConditionalGeneration"
MODEL_CLASS = "desta.serve.vllm_model:DeSTAForConditionalGeneration"
MODEL_TYPE = "desta"


def register() -> None:
    """Register the DeSTA architecture with vLLM and its config type with transformers."""
    try:
        from vllm import ModelRegistry
    except ImportError:
        return
    _register_hf_config()
    if ARCHITECTURE not in set(ModelRegistry.get_supported_archs()):
        ModelRegistry.register_model(ARCHITECTURE, MODEL_CLASS)


def _register_hf_config() -> None:
    from transformers import AutoConfig

    from desta.serve.vllm_config import DeSTAHFConfig

    try:
        AutoConfig.register(MODEL_TYPE, DeSTAHFConfig)
    except ValueError:  # already registered in this process
        pass

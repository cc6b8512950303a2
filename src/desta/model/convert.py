"""Compatibility with the official DeSTA2.5-Audio release: config and adapter weights.

The official ``config.json`` (``model_type: "desta25"``) maps onto :class:`DeSTAConfig`; the official
``model.safetensors`` holds only ``perception.connector.*`` tensors (reference §8.2), whose names our
connector reproduces, so the key map is the identity apart from the Lightning ``model.`` prefix of
``.ckpt`` files. Loading is strict: a missing, unexpected or mis-shaped tensor is an error (the official
loader's ``strict=False`` silently leaves a random connector).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from desta.errors import CheckpointError, ConfigError
from desta.model.config import DeSTAConfig

OFFICIAL_MODEL_ID = "DeSTA-ntu/DeSTA2.5-Audio-Llama-3.1-8B"

# official config field -> ours (identical names are passed through)
_OFFICIAL_FIELDS = {
    "llm_model_id",
    "encoder_model_id",
    "prompt_size",
    "qformer_num_hidden_layers",
    "target_layer_ids",
    "audio_locator",
    "placeholder_token",
    "use_lora",
}


def is_official_config(d: Mapping[str, Any]) -> bool:
    return d.get("model_type") == "desta25"


def config_from_official(d: Mapping[str, Any], name: str = "desta25-audio") -> DeSTAConfig:
    """Official ``DeSTA25Config`` dict -> :class:`DeSTAConfig` (nested backbone configs are ignored:
    the backbones are loaded from their own ids, as the official code does)."""
    if not is_official_config(d):
        raise ConfigError(f"not an official DeSTA2.5 config (model_type={d.get('model_type')!r})")
    if d.get("connector_mode", "qformer_1") != "qformer_1":
        raise ConfigError(f"connector_mode {d['connector_mode']!r} is not supported (only 'qformer_1')")
    kw = {k: d[k] for k in _OFFICIAL_FIELDS if k in d}
    # the code default is 2 layers, but the release uses 6 (reference §1.1): trust the file when present
    kw.setdefault("qformer_num_hidden_layers", 2)
    return DeSTAConfig(**kw, name=name, pad_audio_to_30s=True, max_transcript_tokens=None)


def official_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip the Lightning ``model.`` prefix if present; keep names otherwise."""
    if state and all(k.startswith("model.") for k in state):
        return {k[len("model.") :]: v for k, v in state.items()}
    return dict(state)


def load_adapter_strict(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Load adapter weights into ``model``; every trainable tensor must be present with its shape."""
    expected = {k: v for k, v in model.adapter_state_dict().items()}
    state = official_state_dict(state)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            "adapter checkpoint does not match the model: "
            f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}). "
            "Check qformer_num_hidden_layers, prompt_size and the backbone sizes in config.json."
        )
    bad = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in expected.items() if state[k].shape != v.shape]
    if bad:
        k, got, want = bad[0]
        raise CheckpointError(f"{len(bad)} tensors have the wrong shape, e.g. {k}: checkpoint {got}, model {want}")
    with torch.no_grad():
        params = dict(model.named_parameters())
        for k, v in state.items():
            params[k].copy_(v.to(params[k].dtype))

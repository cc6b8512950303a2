"""Optional LoRA on the LLM, as the official code offers it (off in the release).

Training wraps the LLM with peft (:func:`apply_lora`). Inference needs no peft: :func:`fold_lora` adds
each stored update into its plain ``nn.Linear`` weight exactly as peft's merge does, so loading a model
for answers never imports peft (about 0.2 s of a cold ``desta ask``).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping

import torch
from torch import nn

from desta.errors import CheckpointError, ConfigError

#: peft's name of the one adapter desta makes (``<module>.lora_A.default.weight``)
ADAPTER_NAME = "default"


def apply_lora(model) -> None:
    """Wrap ``model.llm_model`` attention projections with LoRA adapters; only they become trainable.

    Official settings (reference §7): r=16, alpha=16, dropout 0.1 on q/k/v projections.
    """
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as err:  # pragma: no cover
        raise ConfigError("use_lora needs peft: `pip install peft`") from err
    cfg = model.config
    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.lora_target_modules),
    )
    # keep the plain module (official: get_peft_model(...).base_model.model), so names stay llm_model.*
    with warnings.catch_warnings():
        # peft reads transformers' deprecated `is_gradient_checkpointing`; the warning is theirs, not the user's
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        model.llm_model = get_peft_model(model.llm_model, lora).base_model.model
    model.freeze_backbones()


def lora_targets(model) -> list[tuple[str, nn.Module]]:
    """The LLM modules peft wraps for ``config.lora_target_modules`` (its rule for a list of names: the
    module's name is one of them or ends with ``.<name>``), as (name in ``model.llm_model``, module)."""
    targets = tuple(model.config.lora_target_modules)
    return [
        (name, m)
        for name, m in model.llm_model.named_modules()
        if name and (name in targets or any(name.endswith("." + t) for t in targets))
    ]


def can_fold(model) -> bool:
    """True when :func:`fold_lora` can do peft's merge itself: every target is a plain ``nn.Linear``."""
    found = lora_targets(model)
    return bool(found) and all(type(m) is nn.Linear for _, m in found)


def lora_keys(name: str) -> tuple[str, str]:
    """The adapter file's (A, B) keys of target ``name``: peft's names under ``llm_model.``."""
    return f"llm_model.{name}.lora_A.{ADAPTER_NAME}.weight", f"llm_model.{name}.lora_B.{ADAPTER_NAME}.weight"


def _adapter_dtype(weight: torch.Tensor) -> torch.dtype:
    """The dtype peft gives the LoRA matrices of a base weight: the base dtype, fp16/bf16 upcast to fp32
    (``get_peft_model(..., autocast_adapter_dtype=True)``, its default)."""
    return torch.float32 if weight.dtype in (torch.float16, torch.bfloat16) else weight.dtype


def split_lora(model, state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(the LoRA tensors of ``model``'s targets, every other tensor) of an adapter state dict."""
    keys = {k for name, _ in lora_targets(model) for k in lora_keys(name)}
    return {k: v for k, v in state.items() if k in keys}, {k: v for k, v in state.items() if k not in keys}


@torch.no_grad()
def fold_lora(model, state: Mapping[str, torch.Tensor]) -> int:
    """Add the LoRA updates stored in ``state`` into the plain LLM weights; returns the layers merged.

    For each target ``W += (B @ A) * (lora_alpha / r)`` computed as ``peft``'s ``Linear.merge`` does
    (A and B cast to the dtype peft keeps them in, the product on the weight's device, fp16/bf16
    computed in fp32 on CPU, added in place into ``W``), so the weights equal peft's merged ones.
    ``state`` holds the A/B tensors (:func:`split_lora`); ``model`` is built without peft
    (``build(..., wrap_lora=False)``) and its targets are plain ``nn.Linear`` (:func:`can_fold`).
    The A/B tensors are kept on the model: ``adapter_state_dict`` still returns them (as a peft-merged
    model does) and :func:`unmerge_lora` can wrap the layers with peft again for training.
    """
    cfg = model.config
    scaling = cfg.lora_alpha / cfg.lora_r  # peft's scaling without use_rslora (desta never sets it)
    targets = lora_targets(model)
    expected = {k: (name, m) for name, m in targets for k in lora_keys(name)}
    missing = sorted(set(expected) - set(state))
    if missing:
        raise CheckpointError(
            f"adapter checkpoint does not match the model: {len(missing)} LoRA tensors missing (e.g. {missing[:3]}). "
            "Check use_lora, lora_r and lora_target_modules in config.json."
        )
    folded: dict[str, torch.Tensor] = {}
    for name, m in targets:
        key_a, key_b = lora_keys(name)
        w = m.weight
        want = {key_a: (cfg.lora_r, m.in_features), key_b: (m.out_features, cfg.lora_r)}
        for k, shape in want.items():
            if tuple(state[k].shape) != shape:
                raise CheckpointError(f"LoRA tensor {k}: checkpoint {tuple(state[k].shape)}, model {shape}")
        dtype = _adapter_dtype(w)
        a = state[key_a].to(device=w.device, dtype=dtype)
        b = state[key_b].to(device=w.device, dtype=dtype)
        cast = w.device.type == "cpu" and dtype in (torch.float16, torch.bfloat16)
        delta = (b.float() @ a.float()) * scaling if cast else (b @ a) * scaling
        w.data += delta.to(dtype) if cast else delta
        folded[key_a], folded[key_b] = a, b
    model.folded_lora = folded
    return len(targets)


def _lora_layers(model, merged: bool) -> list:
    if "peft" not in sys.modules:  # nothing imported peft, so no layer is a peft layer
        return []
    from peft.tuners.lora import LoraLayer

    return [m for m in model.llm_model.modules() if isinstance(m, LoraLayer) and m.merged == merged]


def _unfold(model) -> None:
    """Turn a model loaded with :func:`fold_lora` into a peft-merged one: wrap the targets with peft,
    put the stored A/B back, and mark the layers merged (their weights already hold the update)."""
    folded = model.folded_lora
    apply_lora(model)  # fresh (random) A/B, replaced next
    params = dict(model.named_parameters())
    with torch.no_grad():
        for k, v in folded.items():
            params[k].copy_(v)
    for m in _lora_layers(model, merged=False):
        m.merged_adapters = list(m.active_adapters)
    model.folded_lora = {}
    model.train(model.training)  # the new peft modules take the model's mode


def merge_lora(model) -> int:
    """Fold every LoRA update into its base weight (W + BA) for inference; returns the layers merged.

    The modules stay in place (names and ``adapter_state_dict`` unchanged) but skip the extra LoRA
    matmuls, which cost desta-tiny about 12% of its decoding speed. ``unmerge_lora`` undoes it before
    further training. A model loaded with ``merge_lora=True`` is merged already (0).
    """
    layers = _lora_layers(model, merged=False)
    for m in layers:
        m.merge()
    return len(layers)


def unmerge_lora(model) -> int:
    """Undo :func:`merge_lora` or the merge at load time (subtract BA again); returns the layers unmerged.

    A model loaded with ``merge_lora=True`` has plain layers: they are wrapped with peft first.
    """
    if getattr(model, "folded_lora", None):
        _unfold(model)
    layers = _lora_layers(model, merged=True)
    for m in layers:
        m.unmerge()
    return len(layers)

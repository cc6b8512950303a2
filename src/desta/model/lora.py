"""Optional LoRA on the LLM (peft), as the official code offers it (off in the release)."""

from __future__ import annotations

import warnings

from desta.errors import ConfigError


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


def _lora_layers(model, merged: bool) -> list:
    from peft.tuners.lora import LoraLayer

    return [m for m in model.llm_model.modules() if isinstance(m, LoraLayer) and m.merged == merged]


def merge_lora(model) -> int:
    """Fold every LoRA update into its base weight (W + BA) for inference; returns the layers merged.

    The modules stay in place (names and ``adapter_state_dict`` unchanged) but skip the extra LoRA
    matmuls, which cost desta-tiny about 12% of its decoding speed. ``unmerge_lora`` undoes it before
    further training.
    """
    layers = _lora_layers(model, merged=False)
    for m in layers:
        m.merge()
    return len(layers)


def unmerge_lora(model) -> int:
    """Undo :func:`merge_lora` (subtract BA again); returns the layers unmerged."""
    layers = _lora_layers(model, merged=True)
    for m in layers:
        m.unmerge()
    return len(layers)

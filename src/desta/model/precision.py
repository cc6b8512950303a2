"""Which floating-point type the frozen backbones run in.

``"fast"`` picks bfloat16 where the hardware computes it natively (a CUDA GPU, or a CPU with
AVX512-BF16 or AMX through oneDNN) and float32 elsewhere: on such a CPU, SmolLM2-135M generates about
2x faster and a desta-tiny training step runs about 1.5x faster in bfloat16 (measured in
``bench/train_step.py --precision``); on a CPU without it, bfloat16 is emulated and slower.
"""

from __future__ import annotations

import torch

from desta.errors import DeSTAError

PRECISIONS = ("auto", "fast", "fp32", "bf16")


def cpu_has_native_bf16() -> bool:
    """True when oneDNN reports bfloat16 support on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_dtype(precision: str, device: torch.device | str) -> torch.dtype:
    """``auto``: bf16 on CUDA, fp32 on CPU; ``fast``: bf16 wherever it is native; ``fp32``; ``bf16``."""
    if precision not in PRECISIONS:
        raise DeSTAError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    kind = torch.device(device).type
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if kind == "cuda":
        return torch.bfloat16
    if precision == "fast" and kind == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return torch.float32

"""Which floating-point type the frozen backbones run in.

``"fast"`` picks bfloat16 where the hardware computes it natively (a CUDA GPU, or a CPU with
AVX512-BF16 or AMX through oneDNN) and float32 elsewhere. On an AMD EPYC with AVX512-BF16, a
desta-tiny training step ran 1.37x faster (``bench/train_step.py --precision``) and SmolLM2-135M
generated a batch of 16 answers 2.1x faster (10.2 s vs 4.9 s, 64 new tokens, 2 threads); on a CPU
without it, bfloat16 is emulated and slower.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from desta.errors import DeSTAError

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "fast", "fp32", "bf16")


def cpu_has_native_bf16() -> bool:
    """True when oneDNN reports bfloat16 support on this CPU (AVX512-BF16 or AMX)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_dtype(precision: str, device: torch.device | str) -> torch.dtype:
    """``auto``: bf16 on CUDA, fp32 on CPU; ``fast``: bf16 wherever it is native; ``fp32``; ``bf16``."""
    import torch

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

"""Turn a numeric array into float32 mono samples, refusing values the model cannot use.

The rule for sample values: integer PCM is scaled to [-1, 1]; floats are taken as they are. After that,
every sample must be finite and within ``MAX_ABS_SAMPLE`` (1000.0). Audio slightly over full scale
(clipped or loud mixes) is kept unchanged; larger values are refused rather than silently normalised:
they are almost always a scaling mistake (int16 PCM stored as float: divide by 32768) and values
around 1e19 and above overflow the float32 power spectrum, which turns the log-mel features into NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from desta.errors import AudioError

MAX_ABS_SAMPLE = 1000.0


def array_from_tensor(tensor: Any, name: str) -> np.ndarray:
    """A torch tensor (any device, dtype, grad state) -> numpy array, or AudioError saying why not."""
    try:
        t = tensor.detach()
        if t.is_complex():
            raise AudioError(f"{name}: audio samples must be real numbers, got a complex tensor ({t.dtype})")
        import torch  # already imported by whoever made the tensor

        if t.layout is not torch.strided:  # sparse tensors have no numpy view
            t = t.to_dense()
        if t.is_floating_point() and t.element_size() < 4:  # bfloat16 / float16 have no numpy path
            t = t.float()
        return t.cpu().numpy()
    except AudioError:
        raise
    except (TypeError, RuntimeError, ValueError) as err:
        raise AudioError(f"{name}: cannot read this tensor as audio ({err})") from None


def check_values(data: np.ndarray, name: str) -> None:
    """Raise AudioError when a float array holds NaN/inf or samples beyond ``MAX_ABS_SAMPLE``."""
    finite = np.isfinite(data)
    if not finite.all():
        bad = int((~finite).sum())
        raise AudioError(f"{name}: {bad} samples are NaN or infinite; fix the source audio")
    peak = float(np.abs(data).max()) if data.size else 0.0
    if peak > MAX_ABS_SAMPLE:
        raise AudioError(
            f"{name}: samples reach {peak:.3g}, beyond the accepted magnitude of {MAX_ABS_SAMPLE:g} "
            "(audio should lie in [-1, 1]; int16 PCM stored as floats must be divided by 32768)"
        )


def to_mono_float32(data: Any, name: str) -> np.ndarray:
    """(n,) or (n, channels) of any real numeric dtype -> (n,) float32, integers scaled to [-1, 1].

    A 2-D array with at most 8 rows and many more columns is read as channels-first (c, n), the
    torchaudio layout. Samples must pass :func:`check_values`.
    """
    try:
        data = np.asarray(data)
    except (TypeError, ValueError, OverflowError, MemoryError) as err:
        raise AudioError(f"{name}: cannot read this input as an array of samples ({err})") from None
    if data.dtype.kind not in "fiu":
        raise AudioError(f"{name}: audio samples must be numbers, got dtype {data.dtype}")
    if data.dtype.kind in "iu":
        info = np.iinfo(data.dtype)
        # unsigned PCM is centred on (max + 1) / 2 with that as full scale (uint8: 128 -> 0, 0 -> -1)
        offset = (info.max + 1) / 2 if data.dtype.kind == "u" else 0.0
        scale = offset if data.dtype.kind == "u" else float(max(abs(info.min), info.max))
        data = (data.astype(np.float64) - offset) / scale
    if data.ndim == 2:
        # channels-first (c, n) with few channels is common from torchaudio; soundfile gives (n, c)
        if data.shape[0] <= 8 and data.shape[1] > data.shape[0] * 16:
            data = data.T
        if data.shape[1] == 0:  # the mean over no channels would be NaN
            raise AudioError(f"{name}: the audio has 0 channels (shape {data.shape})")
    elif data.ndim != 1:
        raise AudioError(
            f"{name}: expected a 1-D (samples) or 2-D (samples, channels) array, got shape {data.shape}"
        )
    # before the channel mean (a sum of huge values could overflow) and in the input's precision, so
    # 1e300 is reported as too large rather than as infinite after the float32 cast
    check_values(data, name)
    if data.ndim == 2:
        data = data.mean(axis=1)
    return data.astype(np.float32, copy=False)

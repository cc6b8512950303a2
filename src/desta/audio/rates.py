"""Validate a sample rate before anything (resampler, length cap) uses it.

A rate may come from a caller (an int, a float such as ``44100.0``, a numpy or torch scalar) or from a
file header (possibly corrupt). Anything that is not a finite whole number of Hz inside
[``MIN_SAMPLE_RATE``, ``MAX_SAMPLE_RATE``] is refused, because soxr hangs on NaN/inf or huge ratios and
returns an empty array for tiny ones.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from desta.errors import AudioError

MIN_SAMPLE_RATE = 1_000  # Hz; below this there is no speech band left to resample
MAX_SAMPLE_RATE = 384_000  # Hz; the highest rate of common studio converters


def _scalar(value: Any, name: str) -> Any:
    """A one-element numpy array / torch tensor -> its Python number; anything else unchanged."""
    if hasattr(value, "item") and hasattr(value, "shape") and not isinstance(value, (bool, numbers.Number)):
        size = getattr(value, "size", None)
        size = size() if callable(size) else size  # torch's .size() is a method, numpy's .size a number
        n = math.prod(size) if isinstance(size, tuple) else size
        if n != 1:
            raise AudioError(
                f"{name}: a sample rate must be one number, got an array of shape {tuple(value.shape)}"
            )
        return value.item()
    return value


def check_sample_rate(value: Any, name: str, what: str = "sample rate") -> int:
    """Return ``value`` as an int number of Hz, or raise :class:`AudioError` naming ``name`` and why.

    Accepts ints, integral floats, numpy integer/float scalars and one-element arrays or tensors.
    Refuses bools, strings, tuples, NaN, infinities, fractions of a Hz and rates outside
    [``MIN_SAMPLE_RATE``, ``MAX_SAMPLE_RATE``].
    """
    value = _scalar(value, name)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise AudioError(
            f"{name}: the {what} must be a number of Hz, got {type(value).__name__} {value!r:.60}"
        )
    number = float(value) if not isinstance(value, numbers.Integral) else None
    if number is not None:
        if not math.isfinite(number):
            raise AudioError(f"{name}: the {what} must be finite, got {number}")
        if not number.is_integer():
            raise AudioError(f"{name}: the {what} must be a whole number of Hz, got {number}")
    rate = int(value)
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"{name}: the {what} {rate} Hz is outside the supported range "
            f"{MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz"
        )
    return rate

"""Audio input: loading, mono mixing, 16 kHz resampling, 30 s windows and log-mel features.

Loading needs numpy and soundfile only; the log-mel functions (torch) load on first use, so a client
that only reads audio (``desta ask --server``) never imports torch.
"""

from typing import Any

from desta.audio.io import (
    CHUNK_SECONDS,
    N_SAMPLES,
    SAMPLE_RATE,
    decode_audio_bytes,
    load_audio,
    split_windows,
)
from desta.audio.rates import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
from desta.audio.samples import MAX_ABS_SAMPLE

__all__ = [
    "CHUNK_SECONDS",
    "MAX_ABS_SAMPLE",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "N_SAMPLES",
    "SAMPLE_RATE",
    "decode_audio_bytes",
    "load_audio",
    "log_mel_spectrogram",
    "pad_or_trim",
    "split_windows",
]


def __getattr__(name: str) -> Any:
    if name in ("log_mel_spectrogram", "pad_or_trim"):
        from desta.audio import mel

        return getattr(mel, name)
    raise AttributeError(f"module 'desta.audio' has no attribute {name!r}")

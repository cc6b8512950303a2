"""Audio input: loading, mono mixing, 16 kHz resampling, 30 s windows and log-mel features."""

from desta.audio.io import (
    CHUNK_SECONDS,
    N_SAMPLES,
    SAMPLE_RATE,
    decode_audio_bytes,
    load_audio,
    split_windows,
)
from desta.audio.mel import log_mel_spectrogram, pad_or_trim
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

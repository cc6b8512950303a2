"""desta.audio.mel equals openai-whisper's log-mel (the numerical reference) and HF's extractor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from desta.audio import load_audio, log_mel_spectrogram, pad_or_trim
from desta.audio.mel import mel_filters
from helpers import LIBRIVOX, SR, sine

try:  # openai-whisper: vendored into desta's cache by scripts/setup.sh (desta.model.vendored)
    from desta.model.vendored import import_module

    whisper = import_module("whisper")
except ImportError:  # pragma: no cover
    pytest.skip("openai-whisper is not vendored (scripts/setup.sh)", allow_module_level=True)


def _speech() -> np.ndarray:
    files = sorted(LIBRIVOX.glob("*.wav"))
    if files:
        return load_audio(files[0])
    rng = np.random.default_rng(0)  # fallback: a chirp plus noise
    t = np.arange(4 * SR) / SR
    return (0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t) + 0.01 * rng.standard_normal(t.size)).astype(
        np.float32
    )


@pytest.mark.parametrize("n_mels", [80, 128])
def test_filters_equal_openai_whisper(n_mels):
    ref = whisper.audio.mel_filters("cpu", n_mels)
    ours = mel_filters(n_mels)
    assert ours.shape == (n_mels, 201)
    torch.testing.assert_close(ours, ref, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_log_mel_equals_openai_whisper_padded(n_mels):
    audio = _speech()
    ours = log_mel_spectrogram(audio, n_mels)
    ref = whisper.log_mel_spectrogram(whisper.pad_or_trim(audio), n_mels)
    assert ours.shape == (n_mels, 3000) == ref.shape
    assert (ours - ref).abs().max().item() < 1e-4


@pytest.mark.parametrize("n_mels", [80, 128])
def test_log_mel_equals_openai_whisper_real_length(n_mels):
    audio = _speech()[: 3 * SR]
    ours = log_mel_spectrogram(audio, n_mels, pad_to=None)
    ref = whisper.log_mel_spectrogram(audio, n_mels)
    assert ours.shape == ref.shape == (n_mels, 300)
    assert (ours - ref).abs().max().item() < 1e-4


def test_log_mel_equals_hf_feature_extractor():
    from transformers import WhisperFeatureExtractor

    audio = _speech()
    hf = WhisperFeatureExtractor(feature_size=80)(
        audio, sampling_rate=SR, return_tensors="np"
    ).input_features[0]
    ours = log_mel_spectrogram(audio, 80).numpy()
    assert hf.shape == ours.shape == (80, 3000)
    assert np.abs(hf - ours).max() < 1e-3  # HF computes in float64 numpy


def test_batch_equals_single_and_is_per_item_normalised():
    a, b = sine(2.0, 440.0, amp=0.5), sine(3.0, 2000.0, amp=0.01)
    batch = np.zeros((2, 3 * SR), dtype=np.float32)
    batch[0, : a.size], batch[1] = a, b
    out = log_mel_spectrogram(torch.from_numpy(batch), 80)
    assert out.shape == (2, 80, 3000)
    torch.testing.assert_close(out[0], log_mel_spectrogram(a, 80), atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1], log_mel_spectrogram(b, 80), atol=1e-5, rtol=0)


def test_dynamic_range_and_silence():
    out = log_mel_spectrogram(sine(1.0), 80)
    # max(x, peak - 8) then (x + 4) / 4: the range is exactly 2.0
    assert abs((out.max() - out.min()).item() - 2.0) < 1e-5
    silent = log_mel_spectrogram(np.zeros(SR, dtype=np.float32), 80)
    assert torch.isfinite(silent).all()
    torch.testing.assert_close(silent, torch.full_like(silent, (-10 + 4) / 4))


def test_pad_or_trim():
    x = torch.arange(10.0)
    assert pad_or_trim(x, 4).tolist() == [0, 1, 2, 3]
    assert pad_or_trim(x, 12).tolist() == list(range(10)) + [0, 0]
    assert pad_or_trim(x[None], 10).shape == (1, 10)

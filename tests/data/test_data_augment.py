"""Label-preserving augmentations: each does what it says and keeps the clip a clip of the same speech."""

from __future__ import annotations

import random
import shutil

import numpy as np
import pytest

from desta.data import augment as A
from desta.errors import DeSTAError


def _tone(freqs=(200.0, 6000.0), seconds=1.0):
    t = np.arange(int(16000 * seconds)) / 16000
    return (sum(np.sin(2 * np.pi * f * t) for f in freqs) * 0.3).astype(np.float32)


def _band_energy(x, lo, hi):
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / 16000)
    return spec[(f >= lo) & (f < hi)].sum()


def test_telephone_removes_the_band_above_3400_hz():
    x = _tone()
    y = A.telephone(x)
    assert y.shape == x.shape and y.dtype == np.float32
    assert _band_energy(y, 5000, 7000) < 1e-3 * _band_energy(x, 5000, 7000)
    assert _band_energy(y, 150, 250) > 0.01 * _band_energy(x, 150, 250)  # 200 Hz attenuated, not gone


def test_mu_law_is_close_to_identity():
    x = np.linspace(-1, 1, 1001, dtype=np.float32)
    assert np.max(np.abs(A.mu_law(x) - x)) < 0.05


def test_reverb_keeps_length_and_peak_and_adds_a_tail():
    x = np.zeros(16000, dtype=np.float32)
    x[100] = 0.8
    y = A.reverb(x, 0.4, np.random.default_rng(0))
    assert y.shape == x.shape and abs(float(np.max(np.abs(y))) - 0.8) < 1e-5
    assert np.abs(y[2000:4000]).max() > 1e-3  # energy after the impulse


def test_noise_is_at_the_requested_snr():
    x = _tone()
    aug = A.Augmentation("noise", seed=1, snr=10.0, noise="pink")
    y = A.apply(x, aug)
    snr = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean((y - x).astype(np.float64) ** 2))
    assert abs(snr - 10.0) < 1e-3
    assert A.attributes(aug) == {
        "Noise Level": "Moderate",
        "Signal-to-Noise Ratio": "10db",
        "Noise type": "pink noise",
    }


def test_gain_and_attributes():
    x = _tone()
    y = A.apply(x, A.Augmentation("gain", db=-20.0))
    assert np.allclose(y, x * 0.1, atol=1e-6)
    assert A.attributes(A.Augmentation("gain")) == {"Volume": "Low"}
    assert A.attributes(A.Augmentation("telephone")) == {"Recording condition": "telephone line"}
    assert A.attributes(A.Augmentation("tempo", factor=1.1)) == {}  # the speed class is kept


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")
def test_tempo_changes_length_not_pitch():
    x = _tone((440.0,), 2.0)
    y = A.tempo(x, 1.1)
    assert abs(y.size / x.size - 1 / 1.1) < 0.02
    f = np.fft.rfftfreq(y.size, 1 / 16000)[np.argmax(np.abs(np.fft.rfft(y)))]
    assert abs(f - 440.0) < 3.0


def test_draw_is_deterministic_and_bad_values_are_rejected():
    assert A.draw(random.Random(5)) == A.draw(random.Random(5))
    assert {A.draw(random.Random(i)).kind for i in range(60)} == set(A.KINDS)
    with pytest.raises(DeSTAError, match="unknown augmentation"):
        A.Augmentation("chorus")
    with pytest.raises(DeSTAError, match="noise type"):
        A.Augmentation("noise", noise="blue")
    with pytest.raises(DeSTAError, match="rt60"):
        A.Augmentation("reverb", rt60=5.0)

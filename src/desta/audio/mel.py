"""Whisper log-mel features in torch, numerically the same recipe as openai-whisper and HF.

(n,) waveform -> pad/trim to 30 s -> STFT (n_fft 400, hop 160, Hann) -> power -> mel filterbank
(80 or 128 bins, Slaney) -> log10 clamp at 1e-10 -> max(x, x.max() - 8) -> (x + 4) / 4.
Output: (n_mels, 3000) for a 30 s window.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from desta.audio.io import N_SAMPLES

N_FFT = 400
HOP_LENGTH = 160


@functools.lru_cache(maxsize=4)
def mel_filters(n_mels: int) -> torch.Tensor:
    """(n_mels, 201) Slaney mel filterbank, as librosa.filters.mel(sr=16000, n_fft=400, n_mels)."""
    sr, n_fft = 16000, N_FFT
    fftfreqs = np.linspace(0, sr / 2, 1 + n_fft // 2)

    def hz_to_mel(f):
        f = np.asarray(f, dtype=np.float64)
        mel = f / (200.0 / 3)
        log_t = f >= 1000.0
        return np.where(log_t, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mel)

    def mel_to_hz(m):
        m = np.asarray(m, dtype=np.float64)
        f = (200.0 / 3) * m
        log_t = m >= 15.0
        return np.where(log_t, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), f)

    mels = np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2)
    mel_f = mel_to_hz(mels)
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return torch.from_numpy(weights.astype(np.float32))


def pad_or_trim(wave: torch.Tensor, length: int = N_SAMPLES) -> torch.Tensor:
    """Zero-pad or cut the last dimension to ``length`` samples."""
    n = wave.shape[-1]
    if n > length:
        return wave[..., :length]
    if n < length:
        return torch.nn.functional.pad(wave, (0, length - n))
    return wave


def log_mel_spectrogram(
    audio: np.ndarray | torch.Tensor,
    n_mels: int = 80,
    *,
    pad_to: int | None = N_SAMPLES,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Whisper log-mel features.

    Args:
        audio: (n,) or (batch, n) waveform at 16 kHz.
        n_mels: 80 (Whisper up to large-v2) or 128 (large-v3, turbo).
        pad_to: pad/trim to this many samples first (30 s by default, as the official model does);
            ``None`` keeps the real length (rounded to whole frames by the STFT).

    Returns:
        (n_mels, frames) or (batch, n_mels, frames) float32; frames = 3000 for 30 s.
    """
    x = torch.as_tensor(audio, dtype=torch.float32)
    if device is not None:
        x = x.to(device)
    if pad_to is not None:
        x = pad_or_trim(x, pad_to)
    window = torch.hann_window(N_FFT, device=x.device)
    stft = torch.stft(x, N_FFT, HOP_LENGTH, window=window, return_complex=True)
    magnitudes = stft[..., :-1].abs() ** 2
    mel = mel_filters(n_mels).to(x.device) @ magnitudes
    log_spec = torch.clamp(mel, min=1e-10).log10()
    peak = log_spec.amax(dim=(-2, -1), keepdim=True)
    log_spec = torch.maximum(log_spec, peak - 8.0)
    return (log_spec + 4.0) / 4.0

"""Paralinguistic attributes computed from the audio, for corpora whose metadata lacks them.

:func:`compute_attributes` measures four things and bins them into the words the official seed
descriptions use (``Pitch: Very high, Volume: Low, Speaking speed: Very slow, Duration: 2s``):

- **Duration**: ``len(wave) / sr``, written ``"<n>s"`` (whole seconds, at least 1 s).
- **Pitch**: the median F0 of voiced 10 ms frames, estimated with YIN (de Cheveigné & Kawahara 2002:
  cumulative-mean-normalised difference function, absolute threshold 0.15, parabolic refinement)
  on 32 ms windows at 16 kHz, F0 range 60-500 Hz. Written in numpy here because librosa is not a
  dependency and pYIN (its HMM-smoothed variant) is ~100x slower; for one median per clip the HMM
  adds little. At least 5 voiced frames are needed, otherwise ``Pitch`` is left out. Cost: about
  30 ms per 10 s of audio on one core; clips longer than 60 s are measured on their first 60 s.
- **Volume**: active-level RMS in dBFS, ``20*log10(rms)`` over the 20 ms blocks within 40 dB of the
  loudest block (silence does not drag it down; a full-scale sine reads -3 dBFS).
- **Speaking speed**: words per second of active speech (from the first to the last block within
  35 dB of the loudest). Words are whitespace-separated tokens; each CJK/Kana/Hangul/Thai character
  counts 0.6 word (about 4.5 syllables/s of Mandarin = 2.7 words/s of English). Needs a transcript.

Bin edges (a value equal to an edge falls in the upper bin):

================  ===========  ==========  ==========  ==========  ==========
Measure           Very low     Low         Normal      High        Very high
================  ===========  ==========  ==========  ==========  ==========
Pitch, male       < 90 Hz      90-105      105-140     140-165     >= 165 Hz
Pitch, female     < 160 Hz     160-190     190-240     240-280     >= 280 Hz
Pitch, unknown    < 100 Hz     100-140     140-200     200-250     >= 250 Hz
Volume (dBFS)     < -38        -38..-30    -30..-18    -18..-12    >= -12
================  ===========  ==========  ==========  ==========  ==========

Speaking speed (words/s): Very slow < 1.8 <= Slow < 2.4 <= Normal < 3.3 <= Fast < 4.0 <= Very fast.

The pitch edges centre "Normal" on typical adult F0 (about 120 Hz for men, 210 Hz for women) with
roughly +-2.5 semitones; volume edges put broadcast-normalised speech (-23 LUFS, about -20 to -26 dBFS
active RMS) in "Normal"; speed edges put read English (2.5-3 words/s) in "Normal". The same table is
in ``docs/data-attributes.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import soundfile as sf
import soxr

from desta.data.describe import format_duration
from desta.data.records import AudioRecord
from desta.data.sources._common import gender_word
from desta.errors import AudioError

LEVELS = ("Very low", "Low", "Normal", "High", "Very high")
SPEEDS = ("Very slow", "Slow", "Normal", "Fast", "Very fast")
PITCH_EDGES_HZ: dict[str | None, tuple[float, float, float, float]] = {
    "Male": (90.0, 105.0, 140.0, 165.0),
    "Female": (160.0, 190.0, 240.0, 280.0),
    None: (100.0, 140.0, 200.0, 250.0),
}
VOLUME_EDGES_DB = (-38.0, -30.0, -18.0, -12.0)
SPEED_EDGES_WPS = (1.8, 2.4, 3.3, 4.0)
CJK_WORD_WEIGHT = 0.6
SPEECH_ATTRIBUTES = ("Pitch", "Volume", "Speaking speed")

_RATE = 16000
_FMIN, _FMAX = 60.0, 500.0
_WINDOW = 512  # 32 ms at 16 kHz
_HOP = 160  # 10 ms
_THRESHOLD = 0.15
_MAX_SECONDS = 60.0
_BLOCK = 320  # 20 ms
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\u0e00-\u0e7f\uf900-\ufaff]")


def bin_value(value: float, edges: Iterable[float], labels: tuple[str, ...] = LEVELS) -> str:
    """The label of the bin holding ``value`` (``len(labels) == len(edges) + 1``)."""
    return labels[int(np.searchsorted(np.asarray(tuple(edges)), value, side="right"))]


def _mono16k(wave: np.ndarray, sr: int) -> np.ndarray:
    x = np.asarray(wave, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1 if x.shape[1] <= 8 else 0)
    if sr != _RATE:
        x = soxr.resample(x, sr, _RATE)
    return x[: int(_MAX_SECONDS * _RATE)]


def estimate_f0(wave: np.ndarray, sr: int) -> np.ndarray:
    """YIN F0 per 10 ms frame in Hz, ``nan`` where unvoiced. ``wave``: (n,) float; returns (frames,)."""
    x = _mono16k(wave, sr).astype(np.float64)
    tau_min, tau_max = int(_RATE / _FMAX), int(np.ceil(_RATE / _FMIN))
    length = _WINDOW + tau_max + 1
    if len(x) < length:
        return np.full(0, np.nan)
    frames = np.lib.stride_tricks.sliding_window_view(x, length)[::_HOP]  # (n, length)
    head = frames[:, :_WINDOW]
    energy = np.sqrt((head**2).mean(axis=1))
    loud = (energy > 1e-4) & (energy > energy.max() * 10 ** (-35 / 20))
    f0 = np.full(len(frames), np.nan)
    idx = np.flatnonzero(loud)
    if idx.size == 0:
        return f0
    fr = frames[idx]
    n_fft = 1 << int(np.ceil(np.log2(length)))
    spec_a = np.fft.rfft(fr[:, :_WINDOW], n_fft)
    spec_b = np.fft.rfft(fr, n_fft)
    r = np.fft.irfft(np.conj(spec_a) * spec_b, n_fft)[:, : tau_max + 1]  # (n, tau_max+1)
    cs = np.concatenate([np.zeros((len(fr), 1)), np.cumsum(fr**2, axis=1)], axis=1)
    taus = np.arange(tau_max + 1)
    e_b = cs[:, taus + _WINDOW] - cs[:, taus]
    d = np.maximum(cs[:, _WINDOW : _WINDOW + 1] + e_b - 2 * r, 0.0)
    cum = np.cumsum(d[:, 1:], axis=1)
    cmnd = np.ones_like(d)
    cmnd[:, 1:] = d[:, 1:] * taus[1:] / np.maximum(cum, 1e-12)
    search = cmnd[:, tau_min:]
    below = search < _THRESHOLD
    has = below.any(axis=1)
    first = np.argmax(below, axis=1)
    for row in np.flatnonzero(has):
        t = first[row]
        seg = search[row]
        while t + 1 < seg.size and seg[t + 1] < seg[t]:
            t += 1
        tau = float(t + tau_min)
        if 0 < t < seg.size - 1:
            a, b, c = seg[t - 1], seg[t], seg[t + 1]
            den = a - 2 * b + c
            if den > 0:
                tau += 0.5 * (a - c) / den
        f0[idx[row]] = _RATE / tau
    return f0


def median_f0(wave: np.ndarray, sr: int) -> float | None:
    """Median F0 (Hz) of the voiced frames, or ``None`` with fewer than 5 voiced frames."""
    f0 = estimate_f0(wave, sr)
    voiced = f0[np.isfinite(f0)]
    return float(np.median(voiced)) if voiced.size >= 5 else None


def _block_rms(x: np.ndarray) -> np.ndarray:
    n = len(x) // _BLOCK
    if n == 0:
        return np.sqrt(np.mean(x.astype(np.float64) ** 2, keepdims=True)) if len(x) else np.zeros(0)
    blocks = x[: n * _BLOCK].astype(np.float64).reshape(n, _BLOCK)
    return np.sqrt((blocks**2).mean(axis=1))


def active_level_dbfs(wave: np.ndarray, sr: int) -> float | None:
    """Active-level RMS in dBFS (blocks within 40 dB of the loudest), ``None`` for digital silence."""
    rms = _block_rms(_mono16k(wave, sr))
    if rms.size == 0 or rms.max() <= 1e-7:
        return None
    active = rms[rms >= rms.max() * 10 ** (-40 / 20)]
    return float(20 * np.log10(np.sqrt(np.mean(active**2))))


def active_span_seconds(wave: np.ndarray, sr: int) -> float:
    """Seconds from the first to the last 20 ms block within 35 dB of the loudest block."""
    x = _mono16k(wave, sr) if len(wave) / sr <= _MAX_SECONDS else np.asarray(wave, dtype=np.float32)
    rate = _RATE if len(wave) / sr <= _MAX_SECONDS else sr
    if rate != _RATE:  # long clip: measure at the native rate, whole length
        block = max(1, int(0.02 * rate))
        n = len(x) // block
        rms = (
            np.sqrt((x[: n * block].astype(np.float64).reshape(n, block) ** 2).mean(axis=1))
            if n
            else np.zeros(0)
        )
        seconds_per_block = block / rate
    else:
        rms = _block_rms(x)
        seconds_per_block = _BLOCK / _RATE
    if rms.size == 0 or rms.max() <= 1e-7:
        return 0.0
    on = np.flatnonzero(rms >= rms.max() * 10 ** (-35 / 20))
    return float((on[-1] - on[0] + 1) * seconds_per_block)


def count_words(text: str) -> float:
    """Whitespace words, with CJK/Kana/Hangul/Thai characters counted as 0.6 word each."""
    cjk = len(_CJK.findall(text))
    rest = _CJK.sub(" ", text)
    words = [w for w in rest.split() if any(ch.isalnum() for ch in w)]
    return len(words) + CJK_WORD_WEIGHT * cjk


def compute_attributes(
    wave: np.ndarray, sr: int, transcript: str = "", gender: str | None = None
) -> dict[str, str]:
    """Binned ``Pitch``, ``Volume``, ``Speaking speed`` (with a transcript) and ``Duration``.

    ``wave``: (n,) or (n, channels) float samples in [-1, 1]; ``gender`` any spelling
    (``"F"``, ``"female"``, ``"male_masculine"``) selects the gender-specific pitch bins.
    An attribute that cannot be measured (unvoiced clip, silence) is left out.
    """
    wave = np.asarray(wave)
    if sr <= 0:
        raise AudioError(f"sample rate must be positive, got {sr}")
    duration = wave.shape[0] / sr
    out: dict[str, str] = {}
    if duration <= 0:
        return out
    f0 = median_f0(wave, sr)
    if f0 is not None:
        out["Pitch"] = bin_value(f0, PITCH_EDGES_HZ[gender_word(gender)])
    level = active_level_dbfs(wave, sr)
    if level is not None:
        out["Volume"] = bin_value(level, VOLUME_EDGES_DB)
    words = count_words(transcript)
    if words > 0:
        span = active_span_seconds(wave, sr)
        span = span if span >= 0.3 else duration
        out["Speaking speed"] = bin_value(words / span, SPEED_EDGES_WPS, SPEEDS)
    out["Duration"] = format_duration(duration)
    return out


def _load(record: AudioRecord) -> tuple[np.ndarray, int]:
    try:
        info = sf.info(record.audio)
        start = int(round(record.start * info.samplerate))
        frames = -1 if record.duration is None else int(round(record.duration * info.samplerate))
        wave, sr = sf.read(record.audio, start=start, frames=frames, dtype="float32", always_2d=False)
        return wave, sr
    except (RuntimeError, OSError, sf.LibsndfileError) as sf_err:
        try:
            from desta.audio import load_audio
            from desta.audio.io import DEFAULT_MAX_SECONDS
        except ImportError:
            raise AudioError(f"{record.audio}: cannot read audio ({sf_err})") from None
        wave = load_audio(record.audio, max_seconds=DEFAULT_MAX_SECONDS, name=record.id)  # a lying header stays bounded
        a = int(round(record.start * _RATE))
        b = None if record.duration is None else a + int(round(record.duration * _RATE))
        return wave[a:b], _RATE


def enrich(
    record: AudioRecord,
    wave: np.ndarray | None = None,
    *,
    sr: int = _RATE,
    names: Iterable[str] | None = None,
) -> AudioRecord:
    """A copy of ``record`` with the missing computed attributes added (existing ones are kept).

    ``wave`` is the clip itself at ``sr`` Hz; when ``None`` the record's span of its file is read.
    ``names`` picks attributes among ``Pitch``, ``Volume``, ``Speaking speed``, ``Duration``; the
    default is the first three for speech and none for sound/music. A missing ``record.duration`` is
    always filled. New attributes go before an existing ``Duration`` so that it stays last.
    Raises :class:`desta.errors.AudioError` when the audio cannot be read.
    """
    wanted = tuple(names) if names is not None else (SPEECH_ATTRIBUTES if record.kind == "speech" else ())
    have = {k.lower() for k in record.attributes}
    if "speed" in have:
        have.add("speaking speed")
    missing = [n for n in wanted if n.lower() not in have]
    if not missing and record.duration is not None:
        return record
    if wave is None:
        wave, sr = _load(record)
    duration = record.duration if record.duration is not None else len(wave) / sr
    if not missing:
        return record.with_(duration=duration)
    gender = next((v for k, v in record.attributes.items() if k.lower() == "gender"), None)
    computed = compute_attributes(wave, sr, record.transcript, gender)
    new = {n: computed[n] for n in missing if n in computed}
    attrs: dict[str, str] = {}
    for key, value in record.attributes.items():
        if key.lower() == "duration":
            attrs.update(new)
            new = {}
        attrs[key] = value
    attrs.update(new)
    return record.with_(duration=duration, attributes=attrs)

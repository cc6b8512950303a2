"""Label-preserving audio augmentation for the synth corpus: what changes is the recording condition,
never who speaks, what is said or in which language.

=============== ================================================= ==========================================
kind            effect                                            attributes it adds to the clip's record
=============== ================================================= ==========================================
``noise``       white/pink/brown noise at a known SNR (0-20 dB)   Noise Level, Signal-to-Noise Ratio, Noise type
``reverb``      a synthetic room (exponentially decaying noise    Recording condition: "reverberant room"
                impulse response, RT60 0.2-0.7 s)
``telephone``   300-3400 Hz band-pass, 8 kHz, G.711 mu-law codec   Recording condition: "telephone line"
``gain``        level change of -18..-6 dB                         Volume: "Low"
``tempo``       speed x0.9-1.1 with the pitch kept (sox tempo)    none (the speed class is kept)
=============== ================================================= ==========================================

Every function takes and returns float32 mono at :data:`SAMPLE_RATE` and is deterministic given its
arguments (random parts take a ``numpy.random.Generator``).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

import numpy as np

from desta.errors import DeSTAError

SAMPLE_RATE = 16_000
KINDS = ("noise", "reverb", "telephone", "gain", "tempo")
NOISE_SNR = (0, 5, 10, 15, 20)
NOISE_TYPES = ("white", "pink", "brown")


@dataclass(frozen=True)
class Augmentation:
    """One augmentation and its parameters (``snr``/``noise`` for noise, ``rt60`` for reverb, ``db``
    for gain, ``factor`` for tempo; ``seed`` for the random parts)."""

    kind: str
    seed: int = 0
    snr: float = 10.0
    noise: str = "white"
    rt60: float = 0.4
    db: float = -12.0
    factor: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise DeSTAError(f"unknown augmentation {self.kind!r}; choose from {', '.join(KINDS)}")
        if self.noise not in NOISE_TYPES:
            raise DeSTAError(f"unknown noise type {self.noise!r}; choose from {', '.join(NOISE_TYPES)}")
        if not 0.05 <= self.rt60 <= 2.0 or not 0.5 <= self.factor <= 2.0:
            raise DeSTAError(f"augmentation {self}: need 0.05 <= rt60 <= 2 and 0.5 <= factor <= 2")


def draw(rng, kinds: tuple[str, ...] = KINDS) -> Augmentation:
    """A random augmentation from ``kinds`` (``rng``: a ``random.Random``, so plans stay pure Python)."""
    kind = rng.choice(kinds)
    return Augmentation(
        kind=kind,
        seed=rng.randrange(2**31),
        snr=float(rng.choice(NOISE_SNR)),
        noise=rng.choice(NOISE_TYPES),
        rt60=round(rng.uniform(0.2, 0.7), 2),
        db=round(rng.uniform(-18.0, -6.0), 1),
        factor=round(rng.choice((0.9, 0.95, 1.05, 1.1)), 2),
    )


def colored_noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance white, pink (1/f power) or brown (1/f^2 power) noise of ``n`` samples."""
    white = rng.standard_normal(n)
    if kind == "white":
        noise = white
    else:
        spec = np.fft.rfft(white)
        f = np.arange(spec.size, dtype=np.float64)
        f[0] = 1.0
        spec /= np.sqrt(f) if kind == "pink" else f
        noise = np.fft.irfft(spec, n)
    noise = noise - noise.mean()
    return (noise / (noise.std() + 1e-12)).astype(np.float32)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``speech + g * noise`` with ``10 log10(P_speech / P_scaled_noise) == snr_db``; rescaled (SNR
    kept) to peak <= 0.99."""
    ps = float(np.mean(speech.astype(np.float64) ** 2))
    pn = float(np.mean(noise.astype(np.float64) ** 2))
    g = np.sqrt(ps / (pn * 10 ** (snr_db / 10))) if pn > 0 else 0.0
    y = speech + g * noise
    peak = float(np.max(np.abs(y)))
    return (y * (0.99 / peak) if peak > 0.99 else y).astype(np.float32)


def reverb(x: np.ndarray, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` convolved with a decaying-noise room response (60 dB down after ``rt60`` s), same length
    and peak as ``x``; the direct sound is kept as the response's first tap."""
    from scipy.signal import fftconvolve

    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    ir = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)  # ln(1000): 60 dB of amplitude decay
    ir[0] = 0.0
    ir = 0.5 * ir / (np.sqrt(np.sum(ir**2)) + 1e-12)
    ir[0] = 1.0
    y = fftconvolve(x.astype(np.float64), ir)[: x.size]
    return _same_peak(y, x)


def mu_law(x: np.ndarray, mu: int = 255) -> np.ndarray:
    """8-bit G.711 mu-law encode then decode: the quantisation of a telephone codec."""
    y = np.sign(x) * np.log1p(mu * np.abs(np.clip(x, -1, 1))) / np.log1p(mu)
    q = np.round((y + 1) / 2 * mu) / mu * 2 - 1
    return (np.sign(q) * ((1 + mu) ** np.abs(q) - 1) / mu).astype(np.float32)


def telephone(x: np.ndarray) -> np.ndarray:
    """300-3400 Hz band-pass, resampled to 8 kHz and back, through a mu-law codec."""
    import soxr
    from scipy.signal import butter, sosfilt

    sos = butter(4, (300, 3400), btype="bandpass", fs=SAMPLE_RATE, output="sos")
    y = sosfilt(sos, x.astype(np.float64)).astype(np.float32)
    y = soxr.resample(y, SAMPLE_RATE, 8000)
    y = mu_law(np.clip(_same_peak(y, x), -1, 1))
    z = soxr.resample(y, 8000, SAMPLE_RATE).astype(np.float32)
    return z[: x.size] if z.size >= x.size else np.pad(z, (0, x.size - z.size))


def gain(x: np.ndarray, db: float) -> np.ndarray:
    return np.clip(x * 10 ** (db / 20), -1.0, 1.0).astype(np.float32)


def tempo(x: np.ndarray, factor: float) -> np.ndarray:
    """Speed changed by ``factor`` (>1 faster) with the pitch kept (sox's WSOLA ``tempo`` effect)."""
    if shutil.which("sox") is None:
        raise DeSTAError("the tempo augmentation needs sox: apt-get install sox")
    fmt = ["-t", "f32", "-r", str(SAMPLE_RATE), "-c", "1"]
    proc = subprocess.run(
        ["sox", *fmt, "-", *fmt, "-", "tempo", "-s", str(factor)],
        input=np.ascontiguousarray(x, dtype="<f4").tobytes(),
        capture_output=True,
        timeout=60,
    )
    if proc.returncode != 0:
        raise DeSTAError(f"sox tempo failed: {proc.stderr.decode(errors='replace')[-200:]}")
    return np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32)


def _same_peak(y: np.ndarray, like: np.ndarray) -> np.ndarray:
    py, px = float(np.max(np.abs(y))) if y.size else 0.0, float(np.max(np.abs(like))) if like.size else 0.0
    return (y * (px / py) if py > 0 else y).astype(np.float32)


def apply(x: np.ndarray, aug: Augmentation) -> np.ndarray:
    """``x`` under ``aug``."""
    rng = np.random.default_rng(aug.seed)
    if aug.kind == "noise":
        return mix_at_snr(x, colored_noise(aug.noise, x.size, rng), aug.snr)
    if aug.kind == "reverb":
        return reverb(x, aug.rt60, rng)
    if aug.kind == "telephone":
        return telephone(x)
    if aug.kind == "gain":
        return gain(x, aug.db)
    return tempo(x, aug.factor)


def noise_level(snr: float) -> str:
    return "Noisy" if snr <= 5 else "Moderate" if snr <= 15 else "Low"


def attributes(aug: Augmentation) -> dict[str, str]:
    """The record attributes that ``aug`` changes or adds (a tempo change within 10% keeps the speed class)."""
    if aug.kind == "noise":
        return {"Noise Level": noise_level(aug.snr), "Signal-to-Noise Ratio": f"{aug.snr:g}db",
                "Noise type": f"{aug.noise} noise"}  # fmt: skip
    if aug.kind == "reverb":
        return {"Recording condition": "reverberant room"}
    if aug.kind == "telephone":
        return {"Recording condition": "telephone line"}
    if aug.kind == "gain":
        return {"Volume": "Low"}
    return {}

"""Load any audio input as float32 mono at 16 kHz, with errors that name the file and the reason.

Decoding uses soundfile (libsndfile: wav, flac, ogg/vorbis, opus, mp3 with libsndfile >= 1.1) and falls
back to the ``ffmpeg`` binary when it is installed (m4a, webm, ...). Resampling uses soxr (VHQ).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from desta.errors import AudioError

SAMPLE_RATE = 16000  # Hz, what Whisper expects
CHUNK_SECONDS = 30  # Whisper's fixed window
N_SAMPLES = SAMPLE_RATE * CHUNK_SECONDS  # 480000 samples in a 30-second window
DEFAULT_MAX_SECONDS = 3600.0  # refuse absurdly long inputs unless the caller raises the cap

AudioSource = str | os.PathLike | bytes | np.ndarray | tuple  # tuple = (array, sample_rate)


def _to_mono_float32(data: np.ndarray, name: str) -> np.ndarray:
    """(n,) or (n, channels) of any numeric dtype -> (n,) float32 in [-1, 1] for integer input."""
    data = np.asarray(data)
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
        data = data.mean(axis=1)
    elif data.ndim != 1:
        raise AudioError(f"{name}: expected a 1-D (samples) or 2-D (samples, channels) array, got shape {data.shape}")
    data = data.astype(np.float32, copy=False)
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise AudioError(f"{name}: {bad} samples are NaN or infinite; fix the source audio")
    return data


def resample(wave: np.ndarray, sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a mono float32 waveform with soxr (very high quality)."""
    if sr == target_sr:
        return wave
    if sr <= 0:
        raise AudioError(f"invalid sample rate {sr}")
    import soxr

    return soxr.resample(wave, sr, target_sr, quality="VHQ").astype(np.float32, copy=False)


def _decode_with_ffmpeg(data: bytes | None, path: str | None, name: str) -> tuple[np.ndarray, int]:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise AudioError(
            f"{name}: format not readable by libsndfile and ffmpeg is not installed "
            "(install it with `apt-get install ffmpeg`, or convert the file to wav/flac)"
        )
    cmd = [exe, "-nostdin", "-v", "error", "-i", path or "pipe:0", "-f", "f32le", "-ac", "1", "-ar", str(SAMPLE_RATE), "pipe:1"]
    proc = subprocess.run(cmd, input=data, capture_output=True, timeout=300)
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise AudioError(f"{name}: unreadable audio ({msg[-1] if msg else 'ffmpeg failed'})")
    return np.frombuffer(proc.stdout, dtype=np.float32).copy(), SAMPLE_RATE


def _decode(data: bytes | None, path: str | None, name: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        src = io.BytesIO(data) if data is not None else path
        wave, sr = sf.read(src, dtype="float32", always_2d=False)
        return wave, int(sr)
    except sf.LibsndfileError:
        return _decode_with_ffmpeg(data, path, name)
    except (RuntimeError, TypeError, ValueError) as err:  # soundfile raises these for odd headers
        try:
            return _decode_with_ffmpeg(data, path, name)
        except AudioError:
            raise AudioError(f"{name}: unreadable audio ({err})") from None


def _finish(wave: np.ndarray, sr: int, name: str, max_seconds: float | None) -> np.ndarray:
    wave = _to_mono_float32(wave, name)
    if wave.size == 0:
        raise AudioError(f"{name}: the audio is empty (0 samples)")
    seconds = wave.size / sr
    if max_seconds is not None and seconds > max_seconds:
        raise AudioError(
            f"{name}: audio is {seconds:.0f} s long, over the cap of {max_seconds:.0f} s "
            "(raise max_seconds if this is intended)"
        )
    return resample(wave, sr)


def decode_audio_bytes(data: bytes, name: str = "<bytes>", max_seconds: float | None = DEFAULT_MAX_SECONDS) -> np.ndarray:
    """Decode an encoded file held in memory (wav/flac/ogg/mp3, ...) to float32 mono 16 kHz, shape (n,)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise AudioError(f"{name}: expected bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise AudioError(f"{name}: the audio is empty (0 bytes)")
    wave, sr = _decode(bytes(data), None, name)
    return _finish(wave, sr, name, max_seconds)


def load_audio(
    source: AudioSource,
    *,
    sr: int | None = None,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    name: str | None = None,
) -> np.ndarray:
    """Load audio as float32 mono at 16 kHz.

    Args:
        source: a file path, encoded bytes, a numpy array (then ``sr`` is required unless it is
            already 16 kHz), or a ``(array, sample_rate)`` tuple. Arrays may be (n,) or (n, channels).
        sr: sample rate of an array ``source``; defaults to 16000.
        max_seconds: refuse inputs longer than this (``None``: no cap).
        name: how to name the input in error messages.

    Returns:
        (n,) float32 waveform at 16 kHz. Silence is fine; NaN/inf samples, empty input, unreadable or
        unsupported files raise :class:`desta.errors.AudioError`.
    """
    if isinstance(source, tuple):
        if len(source) != 2:
            raise AudioError("an audio tuple must be (array, sample_rate)")
        array, rate = source
        return load_audio(np.asarray(array), sr=int(rate), max_seconds=max_seconds, name=name)
    if isinstance(source, np.ndarray):
        return _finish(source, sr or SAMPLE_RATE, name or "<array>", max_seconds)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_audio_bytes(bytes(source), name or "<bytes>", max_seconds)
    if hasattr(source, "detach") and hasattr(source, "numpy"):  # a torch tensor
        return _finish(source.detach().cpu().numpy(), sr or SAMPLE_RATE, name or "<tensor>", max_seconds)
    if not isinstance(source, (str, os.PathLike)):
        raise AudioError(f"unsupported audio input of type {type(source).__name__}; give a path, bytes or an array")
    path = Path(source)
    label = name or str(path)
    if not path.exists():
        raise AudioError(f"{label}: no such file")
    if path.is_dir():
        raise AudioError(f"{label}: is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{label}: the file is empty (0 bytes)")
    if path.suffix.lower() in (".raw", ".pcm"):  # headerless 16-bit little-endian PCM
        raw = np.fromfile(path, dtype="<i2")
        return _finish(raw, sr or SAMPLE_RATE, label, max_seconds)
    wave, rate = _decode(None, str(path), label)
    return _finish(wave, rate, label, max_seconds)


def split_windows(wave: np.ndarray, seconds: float = CHUNK_SECONDS, min_seconds: float = 0.1) -> list[np.ndarray]:
    """Split a 16 kHz waveform (n,) into consecutive windows of at most ``seconds``.

    A trailing remainder shorter than ``min_seconds`` is dropped unless it is the only window, so a
    30.02 s clip does not produce a near-empty second window.
    """
    size = int(seconds * SAMPLE_RATE)
    if wave.size <= size:
        return [wave]
    windows = [wave[i : i + size] for i in range(0, wave.size, size)]
    if len(windows) > 1 and windows[-1].size < min_seconds * SAMPLE_RATE:
        windows.pop()
    return windows

"""Load any audio input as float32 mono at 16 kHz, with errors that name the file and the reason.

Decoding uses soundfile (libsndfile: wav, flac, ogg/vorbis, opus, mp3 with libsndfile >= 1.1) and falls
back to the ``ffmpeg`` binary when it is installed (m4a, webm, ...). Resampling uses soxr (VHQ).
Declared lengths are checked against ``max_seconds`` before decoding and decoding stops at the cap;
sample rates and sample values are validated (see :mod:`desta.audio.rates`, :mod:`desta.audio.samples`).
"""

from __future__ import annotations

import math
import numbers
import os
import stat
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from desta.audio.ffmpeg import decode_ffmpeg
from desta.audio.rates import check_sample_rate
from desta.audio.samples import array_from_tensor, to_mono_float32
from desta.audio.sndfile import NotSoundfile, decode_soundfile, over_cap
from desta.errors import AudioError

SAMPLE_RATE = 16000  # Hz, what Whisper expects
CHUNK_SECONDS = 30  # Whisper's fixed window
N_SAMPLES = SAMPLE_RATE * CHUNK_SECONDS  # 480000 samples in a 30-second window
DEFAULT_MAX_SECONDS = 3600.0  # refuse absurdly long inputs unless the caller raises the cap

# tuple = (array, sample_rate); mapping = Hugging Face datasets' {"array", "sampling_rate"} or {"bytes"/"path"}
AudioSource = str | os.PathLike | bytes | np.ndarray | tuple | Mapping


def _check_cap(max_seconds: float | None, name: str) -> float | None:
    """``max_seconds`` as a positive float, or None for no cap (infinity counts as no cap)."""
    if max_seconds is None:
        return None
    if isinstance(max_seconds, bool) or not isinstance(max_seconds, numbers.Real) or not max_seconds > 0:
        raise AudioError(
            f"{name}: max_seconds must be a positive number of seconds or None, got {max_seconds!r:.60}"
        )
    return None if math.isinf(max_seconds) else float(max_seconds)


def resample(wave: np.ndarray, sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a mono float32 waveform (n,) with soxr (very high quality) -> (m,) float32."""
    if sr == target_sr:
        return wave
    sr = check_sample_rate(sr, "<array>")
    import soxr

    return soxr.resample(wave, sr, target_sr, quality="VHQ").astype(np.float32, copy=False)


def _finish(wave: np.ndarray, sr: int, name: str, max_seconds: float | None) -> np.ndarray:
    """Validated samples (any numeric (n,) / (n, c)) at a validated rate -> (m,) float32 at 16 kHz, m > 0."""
    wave = to_mono_float32(wave, name)
    if wave.size == 0:
        raise AudioError(f"{name}: the audio is empty (0 samples)")
    seconds = wave.size / sr
    if max_seconds is not None and seconds > max_seconds:
        raise over_cap(name, seconds, max_seconds)
    try:
        out = resample(wave, sr)
    except MemoryError:
        raise AudioError(f"{name}: out of memory while resampling {seconds:.0f} s of audio") from None
    if out.size == 0:
        raise AudioError(
            f"{name}: {wave.size} samples at {sr} Hz is shorter than one sample at {SAMPLE_RATE} Hz"
        )
    return out


def _decode(data: bytes | None, path: str | None, name: str, max_seconds: float | None) -> np.ndarray:
    """Encoded bytes or a file -> (n,) float32 at 16 kHz: soundfile first, then ffmpeg."""
    try:
        wave, sr = decode_soundfile(data, path, name, max_seconds)
    except NotSoundfile:  # ffmpeg's message is the one to show: it knows more formats
        wave, sr = decode_ffmpeg(data, path, name, max_seconds, SAMPLE_RATE), SAMPLE_RATE
    except MemoryError:
        raise AudioError(f"{name}: out of memory while decoding") from None
    return _finish(wave, sr, name, max_seconds)


def decode_audio_bytes(
    data: bytes, name: str = "<bytes>", max_seconds: float | None = DEFAULT_MAX_SECONDS
) -> np.ndarray:
    """Decode an encoded file held in memory (wav/flac/ogg/mp3, ...) to float32 mono 16 kHz, shape (n,)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise AudioError(f"{name}: expected bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise AudioError(f"{name}: the audio is empty (0 bytes)")
    return _decode(bytes(data), None, name, _check_cap(max_seconds, name))


def _load_file(path: Path, label: str, sr: int | None, max_seconds: float | None) -> np.ndarray:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise AudioError(f"{label}: no such file") from None
    except (OSError, ValueError) as err:  # name too long, symlink loop, NUL byte, permission
        reason = getattr(err, "strerror", None) or str(err)
        raise AudioError(f"{label}: cannot open the file ({reason})") from None
    if stat.S_ISDIR(info.st_mode):
        raise AudioError(f"{label}: is a directory, not an audio file")
    if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
        raise AudioError(f"{label}: is not a regular file (a pipe or device?)")
    if info.st_size == 0:
        raise AudioError(f"{label}: the file is empty (0 bytes)")
    if path.suffix.lower() in (".raw", ".pcm"):  # headerless 16-bit little-endian PCM
        rate = SAMPLE_RATE if sr is None else sr
        n = info.st_size // 2
        if max_seconds is not None and n / rate > max_seconds:
            raise over_cap(label, n / rate, max_seconds)
        try:
            raw = np.fromfile(path, dtype="<i2", count=n)
        except (OSError, MemoryError) as err:
            raise AudioError(f"{label}: cannot read the file ({err})") from None
        return _finish(raw, rate, label, max_seconds)
    try:
        return _decode(None, str(path), label, max_seconds)
    except OSError as err:
        raise AudioError(f"{label}: cannot read the file ({err.strerror or err})") from None


def load_audio(
    source: AudioSource,
    *,
    sr: int | None = None,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    name: str | None = None,
) -> np.ndarray:
    """Load audio as float32 mono at 16 kHz.

    Args:
        source: a file path, encoded bytes, a numpy array or torch tensor (then ``sr`` is required
            unless it is already 16 kHz), a ``(array, sample_rate)`` tuple, or a mapping as Hugging
            Face datasets give it (``{"array", "sampling_rate"}``, or ``{"bytes"}`` / ``{"path"}``).
            Arrays may be (n,) or (n, channels).
        sr: sample rate of an array ``source`` (or of a ``.raw``/``.pcm`` file); defaults to 16000.
            A whole number of Hz in 1000..384000; ignored for encoded files (their header tells).
        max_seconds: refuse inputs longer than this (``None``: no cap). Encoded inputs are refused
            from their header before decoding when it declares more, and decoding stops at the cap.
        name: how to name the input in error messages.

    Returns:
        (n,) float32 waveform at 16 kHz, n > 0. Silence is fine; NaN/inf samples, samples beyond
        1000 in magnitude, bad sample rates, empty input, unreadable or unsupported files raise
        :class:`desta.errors.AudioError`.
    """
    cap = _check_cap(max_seconds, name or _default_label(source))
    if isinstance(source, tuple):
        if len(source) != 2:
            raise AudioError(f"{name or '<tuple>'}: an audio tuple must be (array, sample_rate)")
        array, rate = source
        label = name or "<array>"
        rate = check_sample_rate(rate, label)
        if sr is not None and check_sample_rate(sr, label) != rate:
            raise AudioError(f"{label}: the tuple says {rate} Hz but sr={sr}; give one rate")
        if hasattr(array, "detach") and hasattr(array, "numpy"):
            array = array_from_tensor(array, label)
        return _finish(array, rate, label, cap)
    if isinstance(source, Mapping):
        return _load_mapping(source, sr=sr, max_seconds=cap, name=name)
    label = name or _default_label(source)
    rate = None if sr is None else check_sample_rate(sr, label)
    if isinstance(source, np.ndarray):
        return _finish(source, SAMPLE_RATE if rate is None else rate, label, cap)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_audio_bytes(bytes(source), label, cap)
    if hasattr(source, "detach") and hasattr(source, "numpy"):  # a torch tensor
        return _finish(array_from_tensor(source, label), SAMPLE_RATE if rate is None else rate, label, cap)
    if not isinstance(source, (str, os.PathLike)):
        raise AudioError(
            f"unsupported audio input of type {type(source).__name__}; give a path, bytes or an array"
        )
    try:
        path = Path(source)
    except (TypeError, ValueError) as err:
        raise AudioError(f"{label}: not a usable path ({err})") from None
    return _load_file(path, label, rate, cap)


def _default_label(source: object) -> str:
    if isinstance(source, np.ndarray):
        return "<array>"
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    if hasattr(source, "detach") and hasattr(source, "numpy"):
        return "<tensor>"
    if isinstance(source, (str, os.PathLike)):
        try:
            return os.fsdecode(source)
        except (TypeError, ValueError):
            return repr(source)
    return f"<{type(source).__name__}>"


def _load_mapping(
    source: Mapping, *, sr: int | None, max_seconds: float | None, name: str | None
) -> np.ndarray:
    """Hugging Face datasets' audio dicts: decoded ``array`` + ``sampling_rate``, else ``bytes``, else ``path``."""
    label = name or str(source.get("path") or "<dict>")
    if source.get("array") is not None:
        if source.get("sampling_rate") is None:
            raise AudioError(f"{label}: an audio dict with 'array' needs 'sampling_rate'")
        return load_audio(
            (source["array"], source["sampling_rate"]), sr=sr, max_seconds=max_seconds, name=label
        )
    if source.get("bytes") is not None:
        return load_audio(source["bytes"], max_seconds=max_seconds, name=label)
    if source.get("path") is not None:
        return load_audio(source["path"], sr=sr, max_seconds=max_seconds, name=label)
    raise AudioError(
        f"{label}: an audio dict needs 'array' and 'sampling_rate', 'bytes' or 'path'; got keys {sorted(map(str, source))}"
    )


def split_windows(
    wave: np.ndarray, seconds: float = CHUNK_SECONDS, min_seconds: float = 0.1
) -> list[np.ndarray]:
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

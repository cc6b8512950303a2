"""Decode with soundfile (libsndfile) in bounded blocks, checking the header before decoding anything.

``soundfile.read`` allocates the whole length a header declares before reading a sample, so a lying
header (an MP3 Xing frame count, a FLAC total-samples field) or a tiny file of hours of silence costs
gigabytes. Here the declared length is checked against the cap first, and samples are read in blocks
of about a million, mixed to mono block by block, so memory follows what is really decoded.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np

from desta.audio.rates import check_sample_rate
from desta.errors import AudioError

BLOCK_SAMPLES = 1 << 20  # per read, over all channels: 4 MiB of float32
UNKNOWN_FRAMES = 1 << 62  # libsndfile reports SF_COUNT_MAX (2^63 - 1) when a stream's length is unknown


class NotSoundfile(Exception):
    """libsndfile cannot decode this input (another decoder may); ``reason`` is its message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def over_cap(name: str, seconds: float | None, max_seconds: float, declared: bool = False) -> AudioError:
    """The error for an input longer than ``max_seconds``.

    ``seconds``: its length (None when decoding stopped at the cap, so only "longer" is known);
    ``declared``: the length comes from the header, nothing was decoded.
    """
    if seconds is None:
        what = "audio runs past the cap of"
        return AudioError(
            f"{name}: {what} {max_seconds:.0f} s, over the cap (raise max_seconds if this is intended)"
        )
    what = "its header declares" if declared else "audio is"
    return AudioError(
        f"{name}: {what} {seconds:.0f} s long, over the cap of {max_seconds:.0f} s "
        "(raise max_seconds if this is intended)"
    )


def _read_blocks(
    read: Callable[[int], np.ndarray],
    channels: int,
    cap_frames: int | None,
    name: str,
    sr: int,
    max_seconds: float | None,
) -> np.ndarray:
    """Read (frames, channels) float32 blocks until EOF -> (n,) float32 mono; stop past ``cap_frames``."""
    block = max(1, BLOCK_SAMPLES // channels)
    parts: list[np.ndarray] = []
    total = 0
    while True:
        chunk = read(block)
        if chunk.shape[0] == 0:
            break
        parts.append(chunk[:, 0].copy() if channels == 1 else chunk.mean(axis=1))
        total += chunk.shape[0]
        if cap_frames is not None and max_seconds is not None and total > cap_frames:
            raise over_cap(name, None, max_seconds)
    if not parts:
        return np.zeros(0, dtype=np.float32)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def decode_soundfile(
    data: bytes | None, path: str | None, name: str, max_seconds: float | None
) -> tuple[np.ndarray, int]:
    """Decode encoded ``data`` or the file at ``path`` -> ((n,) float32 mono, sample rate in Hz).

    Raises :class:`AudioError` for a bad header rate, a declared or decoded length over ``max_seconds``
    (before decoding, when the header tells), and :class:`NotSoundfile` when libsndfile cannot read
    the input at all or fails part-way (the caller may try ffmpeg).
    """
    import soundfile as sf

    src = io.BytesIO(data) if data is not None else path
    try:
        handle = sf.SoundFile(src)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OverflowError) as err:
        raise NotSoundfile(str(err)) from None
    with handle:
        sr = check_sample_rate(handle.samplerate, name, "sample rate in the file header")
        channels = handle.channels
        if not 1 <= channels <= 1024:
            raise AudioError(f"{name}: the file header declares {channels} channels")
        declared = handle.frames
        cap_frames = None if max_seconds is None else int(max_seconds * sr)
        if cap_frames is not None and max_seconds is not None and UNKNOWN_FRAMES > declared > cap_frames:
            raise over_cap(name, declared / sr, max_seconds, declared=True)
        try:
            wave = _read_blocks(
                lambda n: handle.read(n, dtype="float32", always_2d=True),
                channels,
                cap_frames,
                name,
                sr,
                max_seconds,
            )
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OverflowError) as err:
            raise NotSoundfile(str(err)) from None
        except MemoryError:
            raise AudioError(f"{name}: out of memory while decoding") from None
    return wave, sr

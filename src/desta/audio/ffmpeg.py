"""Decode with the ``ffmpeg`` binary (m4a, webm, wma, ...): files as files, never as URLs.

ffmpeg reads its input argument as a URL, so a file named ``pipe:0`` would read standard input and a
text file holding an ffconcat script or an HLS playlist would open other files. Every call here
therefore names a path as ``file:<absolute path>`` (bytes are written to a private temporary file
first), allows only the ``file`` protocol and only audio/container demuxers that never open other
inputs. ffprobe's duration is checked against the length cap before decoding, and ffmpeg stops at
the cap (``-t``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import numpy as np

from desta.audio.sndfile import over_cap
from desta.errors import AudioError

# demuxers of audio files and plain containers; excluded on purpose: concat, hls, dash, image2, lavfi,
# sdp/rtp/rtsp, ffmetadata, tty, devices (they open other files, URLs or devices, or are not audio)
DEMUXERS = (
    "aac,ac3,aiff,amr,amrnb,amrwb,ape,asf,au,avi,caf,dsf,dts,dtshd,eac3,flac,flv,g722,gsm,loas,matroska,"
    "mlp,mov,mp3,mpc,mpc8,mpeg,mpegts,nistsphere,ogg,oma,rm,shn,sox,tak,truehd,tta,voc,w64,wav,wv,xwma"
)
TIMEOUT_S = 300.0
STDERR_TAIL = 2000  # bytes of ffmpeg's message kept for the error


def _input_args(path: str) -> list[str]:
    """ffmpeg/ffprobe options that open exactly one local file with an audio demuxer."""
    return [
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        DEMUXERS,
        "-i",
        "file:" + os.path.abspath(path),
    ]


def _run(cmd: list[str], name: str) -> tuple[int, bytes, str]:
    """Run ``cmd`` with nothing on stdin; stderr goes to a file so its size is bounded."""
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                timeout=TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise AudioError(f"{name}: decoding took over {TIMEOUT_S:.0f} s; giving up") from None
        except OSError as oserr:
            raise AudioError(f"{name}: cannot run {cmd[0]} ({oserr.strerror})") from None
        size = err.seek(0, os.SEEK_END)
        err.seek(max(0, size - STDERR_TAIL))
        message = err.read().decode("utf-8", "replace").strip()
    lines = [line for line in message.splitlines() if line.strip()]
    return proc.returncode, proc.stdout, lines[-1] if lines else ""


def probe_seconds(path: str, name: str) -> float | None:
    """The duration ffprobe reads from the container (None when it has none or ffprobe is missing)."""
    exe = shutil.which("ffprobe")
    if exe is None:
        return None
    cmd = [exe, "-v", "error", *_input_args(path), "-show_entries", "format=duration", "-of", "csv=p=0"]
    code, out, _ = _run(cmd, name)
    try:
        seconds = float(out.decode("ascii", "replace").strip().splitlines()[0])
    except (ValueError, IndexError):
        return None
    return seconds if code == 0 and seconds == seconds and seconds >= 0 else None


def decode_ffmpeg(
    data: bytes | None, path: str | None, name: str, max_seconds: float | None, sample_rate: int
) -> np.ndarray:
    """Decode ``data`` or the file at ``path`` with ffmpeg to (n,) float32 mono at ``sample_rate``.

    Bytes go through a private temporary file rather than stdin: ffmpeg needs to seek in MP4/M4A
    files whose index (``moov``) comes after the audio, which is how most encoders write them.
    """
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise AudioError(
            f"{name}: format not readable by libsndfile and ffmpeg is not installed "
            "(install it with `apt-get install ffmpeg`, or convert the file to wav/flac)"
        )
    if data is None:
        assert path is not None
        return _decode_file(exe, path, name, max_seconds, sample_rate)
    with tempfile.TemporaryDirectory(prefix="desta-audio-") as folder:
        tmp = os.path.join(folder, "input")
        with open(tmp, "wb") as f:
            f.write(data)
        return _decode_file(exe, tmp, name, max_seconds, sample_rate)


def _decode_file(exe: str, path: str, name: str, max_seconds: float | None, sample_rate: int) -> np.ndarray:
    if max_seconds is not None:
        declared = probe_seconds(path, name)
        if declared is not None and declared > max_seconds:
            raise over_cap(name, declared, max_seconds, declared=True)
    limit = (
        [] if max_seconds is None else ["-t", f"{max_seconds + 1.0:.3f}"]
    )  # one second over tells "too long"
    cmd = [exe, "-nostdin", "-v", "error", *_input_args(path), "-vn", *limit]
    cmd += ["-f", "f32le", "-ac", "1", "-ar", str(sample_rate), "pipe:1"]
    code, out, message = _run(cmd, name)
    if code != 0:
        source = _input_args(path)[-1]
        message = message.replace(source + ": ", "").replace(source, name)  # no absolute paths in messages
        raise AudioError(
            f"{name}: unreadable audio (not decodable by libsndfile or ffmpeg: {message or 'failed'})"
        )
    wave = np.frombuffer(out[: len(out) - len(out) % 4], dtype=np.float32).copy()
    if max_seconds is not None and wave.size > max_seconds * sample_rate:
        raise over_cap(name, None, max_seconds)
    return wave

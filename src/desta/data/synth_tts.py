"""Running the Debian TTS engines (espeak-ng, flite, festival) for ``desta data synth``: the controls
each engine takes (speed, pitch, volume), reading and resampling their output to 16 kHz."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from desta.data.synth_voices import FESTIVAL_PACKAGES
from desta.errors import DeSTAError

SAMPLE_RATE = 16_000
# voices: desta.data.synth_voices (ESPEAK_VOICES, ESPEAK_VARIANTS, FLITE_VOICES, FESTIVAL_VOICES)
ESPEAK_SPEED = {"Slow": 120, "Normal": 170, "Fast": 230}  # words per minute (-s)
# 0-99 (-p); kept near the middle so that pitch never stands in for gender (a male voice at 80 sounds female)
ESPEAK_PITCH = {"Low": 35, "Normal": 50, "High": 65}
ESPEAK_VOLUME = {"Low": 35, "Normal": 100, "High": 180}  # amplitude 0-200 (-a)
STRETCH = {"Slow": 1.35, "Normal": 1.0, "Fast": 0.75}
GAIN = {"Low": 0.15, "Normal": 0.5, "High": 0.95}  # peak after normalisation


def _run(cmd: list[str], stdin: bytes | None = None) -> None:
    proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=120)
    if proc.returncode != 0:
        raise DeSTAError(
            f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-300:]}"
        )


def _read(path: str | Path, raw: bool = False) -> tuple[np.ndarray, int]:
    import soundfile as sf

    if raw:  # headerless 16 kHz signed 16-bit little-endian
        return np.fromfile(path, dtype="<i2").astype(np.float32) / 32768.0, 16_000
    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return x.mean(axis=1), sr


def to_16k(x: np.ndarray, sr: int) -> np.ndarray:
    import soxr

    x = np.asarray(x, dtype=np.float32)
    return x if sr == SAMPLE_RATE else soxr.resample(x, sr, SAMPLE_RATE).astype(np.float32)


def _peak_gain(x: np.ndarray, peak: float) -> np.ndarray:
    m = float(np.max(np.abs(x))) if x.size else 0.0
    return x * (peak / m) if m > 0 else x


def _synthesize(job: dict[str, Any], tmp: Path) -> np.ndarray:
    engine = job.get("base_engine", job["engine"])
    wav = tmp / f"{job['id']}.wav"
    if engine == "espeak":
        amp = ESPEAK_VOLUME[job["volume"]]
        _run(["espeak-ng", "-b", "1", "-v", job["voice"], "-s", str(ESPEAK_SPEED[job["speed"]]), "-p", str(ESPEAK_PITCH[job["pitch"]]),
              "-a", str(amp), "-w", str(wav), job["text"]])  # fmt: skip
        x, sr = _read(wav)
        return to_16k(x, sr)
    if engine == "flite":
        _run(
            [
                "flite",
                "-voice",
                job["voice"],
                "--setf",
                f"duration_stretch={STRETCH[job['speed']]}",
                "-t",
                job["text"],
                "-o",
                str(wav),
            ]
        )
    elif engine == "festival":
        evals = [f"(voice_{job['voice']})", f"(Parameter.set 'Duration_Stretch {STRETCH[job['speed']]})"]
        cmd = ["text2wave", "-o", str(wav)]
        for e in evals:
            cmd += ["-eval", e]
        encoding = FESTIVAL_PACKAGES.get(job["voice"], ("", "utf-8"))[1]
        _run(cmd, stdin=job["text"].encode(encoding, errors="replace"))
    else:
        raise DeSTAError(f"not a TTS engine: {engine}")
    x, sr = _read(wav)
    return _peak_gain(to_16k(x, sr), GAIN[job["volume"]])

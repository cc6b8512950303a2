"""Median F0 (YIN, 60-400 Hz, threshold 0.15, 50 ms frames) of the real asterisk voices and of the bundled
LibriVox male clip, also through the telephone band of desta.data.augment (which does not double a low F0):

    python recipes/logs/desta-tiny/pitch_check.py >> recipes/logs/desta-tiny/gender-probe.md
"""

from __future__ import annotations

import glob

import numpy as np

from desta.audio import load_audio
from desta.data import augment
from desta.model.load import example_clip

SR = 16000


def yin_f0(x: np.ndarray, fmin: int = 60, fmax: int = 400, threshold: float = 0.15) -> float:
    n, hop, maxlag = 800, 320, SR // fmin
    f0 = []
    for s in range(0, len(x) - n - maxlag, hop):
        frame = x[s : s + n + maxlag]
        if np.sqrt((frame[:n] ** 2).mean()) < 0.01:
            continue
        d = np.array([((frame[:n] - frame[t : t + n]) ** 2).sum() for t in range(maxlag)])
        cmnd = d[1:] * np.arange(1, maxlag) / np.maximum(np.cumsum(d[1:]), 1e-9)
        dips = [
            t for t in range(SR // fmax, maxlag - 1) if cmnd[t - 1] < threshold and cmnd[t - 1] <= cmnd[t]
        ]
        if dips:
            f0.append(SR / dips[0])
    return float(np.median(f0)) if f0 else 0.0


def main() -> None:
    print("\n## Pitch of the real voices (recipes/logs/desta-tiny/pitch_check.py)\n")
    print("| voice | median F0 over 12 prompts |\n|---|---|")
    for voice in ("it_IT_m_Carlo", "fr_CA_f_June", "ru_RU_f_IvrvoiceRU", "en_US_f_Allison"):
        files = sorted(glob.glob(f"/usr/share/asterisk/sounds/{voice}/*.wav"))[:12]
        print(f"| {voice} | {np.median([yin_f0(load_audio(f, sr=SR)) for f in files]):.0f} Hz |")
    x = load_audio(example_clip(), sr=SR)
    print(
        f"| bundled LibriVox clip (male) | {yin_f0(x):.0f} Hz (telephone band: {yin_f0(augment.telephone(x)):.0f} Hz) |"
    )


if __name__ == "__main__":
    main()

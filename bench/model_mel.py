"""Log-mel features per 30 s window, 1 thread: desta vs openai-whisper (torch) vs HF WhisperFeatureExtractor.

Target: ours at least as fast as openai-whisper (about 8 ms per window on the 2-core reference CPU).
Also checks that the three agree (max abs difference). Writes ``bench/results/model_mel.json``.

    python bench/model_mel.py [--repeats 40]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import write_result  # noqa: E402

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")


def _clip() -> np.ndarray:
    """Real speech (the LibriVox sentences concatenated and trimmed to 30 s), or a chirp."""
    from desta.audio import load_audio

    files = sorted(LIBRIVOX.glob("*.wav"))
    if files:
        wave = np.concatenate([load_audio(f) for f in files])
    else:
        t = np.arange(30 * 16000) / 16000
        wave = (0.3 * np.sin(2 * np.pi * (200 + 50 * t) * t)).astype(np.float32)
    return np.resize(wave, 30 * 16000).astype(np.float32)


def _time(fn, repeats: int) -> dict[str, float]:
    fn()  # warm-up (filterbank cache, allocator)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return {"min_ms": 1e3 * times[0], "median_ms": 1e3 * times[len(times) // 2]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=40)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from transformers import WhisperFeatureExtractor

    from desta.model.vendored import import_module

    whisper = import_module("whisper")  # openai-whisper, vendored into desta's cache by scripts/setup.sh

    from desta.audio import log_mel_spectrogram

    audio = _clip()
    audio_t = torch.from_numpy(audio)
    hf = WhisperFeatureExtractor(feature_size=80)
    results: dict[str, dict] = {}
    for n_mels in (80, 128):
        ours = lambda n=n_mels: log_mel_spectrogram(audio_t, n)  # noqa: E731
        ref = lambda n=n_mels: whisper.log_mel_spectrogram(whisper.pad_or_trim(audio_t), n)  # noqa: E731
        row = {"desta": _time(ours, args.repeats), "openai_whisper": _time(ref, args.repeats)}
        row["max_abs_diff_vs_openai_whisper"] = float((ours() - ref()).abs().max())
        if n_mels == 80:
            hfx = lambda: hf(audio, sampling_rate=16000, return_tensors="np").input_features  # noqa: E731
            row["hf_feature_extractor"] = _time(hfx, max(5, args.repeats // 4))
            row["max_abs_diff_vs_hf"] = float(np.abs(ours().numpy() - hfx()[0]).max())
        row["speedup_vs_openai_whisper"] = row["openai_whisper"]["median_ms"] / row["desta"]["median_ms"]
        results[f"mel_{n_mels}"] = row
        print(
            f"n_mels={n_mels}: desta {row['desta']['median_ms']:.2f} ms, openai-whisper "
            f"{row['openai_whisper']['median_ms']:.2f} ms"
            + (
                f", HF extractor {row['hf_feature_extractor']['median_ms']:.2f} ms"
                if "hf_feature_extractor" in row
                else ""
            )
            + f" (median per 30 s window; x{row['speedup_vs_openai_whisper']:.2f} vs openai-whisper; "
            f"max |diff| {row['max_abs_diff_vs_openai_whisper']:.2e})"
        )
    batch = torch.from_numpy(np.stack([audio] * 8))
    results["mel_80_batch8_per_window"] = {
        "desta": {
            k: v / 8
            for k, v in _time(lambda: log_mel_spectrogram(batch, 80), max(5, args.repeats // 4)).items()
        }
    }
    print(
        f"batch of 8 (80 mels): desta {results['mel_80_batch8_per_window']['desta']['median_ms']:.2f} ms per window"
    )
    path = write_result(
        "model_mel",
        {
            "unit": "ms per 30 s window",
            "repeats": args.repeats,
            "results": results,
            "target": "desta <= openai-whisper (~8 ms)",
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

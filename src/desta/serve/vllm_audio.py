"""Audio preprocessing for vLLM's prompt processor: windows, log-mel features and transcripts.

Why the transcript is decoded here and not inside the model: DeSTA's prompt holds each window's
transcript as ordinary text tokens, so the prompt's length depends on it, and vLLM fixes every
request's token layout (placeholder positions included) before the engine schedules it. The model
process cannot be asked for the transcript first. So this module keeps one Whisper per process
(built once, on ``asr_device``: the GPU when there is one), and vLLM's multimodal processor cache
stores the result per audio hash: a clip sent again (a multi-turn chat, several questions about
one clip) is neither featurized nor transcribed again. The model process holds only Whisper's
*encoder* (no decoder) for the connector's taps.

The audio steps are the processor's own (:mod:`desta.model.processor`, as ``DeSTAModel.prepare`` runs
them): 30 s windows, ``window_features`` (per-window features at their real length unless
``pad_audio_to_30s``), ``given_transcripts`` + ``window_texts`` (a given transcript for the first
window, the one empty-transcript rule, ASR for the rest: " " for windows Silero VAD finds silent,
greedy Whisper decoding from 30 s padded features otherwise).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from desta.audio import split_windows
from desta.errors import AudioError, DeSTAError


@dataclass(frozen=True)
class AudioSettings:
    """The fields of the exported config that change how audio becomes features and transcripts."""

    pad_audio_to_30s: bool = True
    use_asr: bool = True
    use_vad: bool = True
    asr_max_new_tokens: int = 128

    @classmethod
    def from_config(cls, config) -> AudioSettings:
        return cls(
            pad_audio_to_30s=bool(config.pad_audio_to_30s),
            use_asr=bool(config.use_asr),
            use_vad=bool(config.use_vad),
            asr_max_new_tokens=int(config.asr_max_new_tokens),
        )


@dataclass(frozen=True)
class ProcessedAudio:
    """One audio item. features: W x (M, T_w); transcripts: W strings (" " for silence)."""

    features: list[torch.Tensor]
    transcripts: list[str]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError as err:
        raise DeSTAError(f"asr_device {name!r} is not a torch device ({err})") from None


class AudioFrontend:
    """Windows, log-mel and transcripts for one exported model, with desta's own rules.

    Features come from :func:`desta.model.processor.log_mel_windows`, transcripts from
    :class:`desta.infer.asr.WindowTranscriber` (VAD, greedy Whisper, LRU cache), which reads
    ``perception``, ``config`` and ``device`` from this object as it does from a ``DeSTAModel``.
    Whisper itself is loaded on the first window that needs ASR, so vLLM's profiling run (silent
    dummy audio) and requests with given transcripts never load it.
    """

    def __init__(self, whisper_dir: Path, settings: AudioSettings, device: torch.device) -> None:
        from transformers import WhisperConfig

        from desta.infer.asr import WindowTranscriber

        if not (whisper_dir / "config.json").is_file():
            raise DeSTAError(
                f"{whisper_dir} holds no Whisper model; export the model with `desta export-vllm`"
            )
        self.whisper_dir = whisper_dir
        self.n_mels = WhisperConfig.from_pretrained(whisper_dir).num_mel_bins
        self.config = settings
        self.device = device
        self._perception = None
        self.transcribe = WindowTranscriber(self)

    @property
    def perception(self):
        if self._perception is None:
            from transformers import WhisperForConditionalGeneration

            from desta.model.perception import WhisperPerception

            whisper = WhisperForConditionalGeneration.from_pretrained(self.whisper_dir, dtype=torch.float32)
            whisper = whisper.to(self.device).eval()
            # taps are irrelevant here (the connector runs in the model); the last layer passes the check
            self._perception = WhisperPerception(
                whisper, (whisper.config.encoder_layers - 1,), self.config.pad_audio_to_30s
            )
        return self._perception

    @torch.inference_mode()
    def process(self, wave: np.ndarray, transcript: str | None = None) -> ProcessedAudio:
        """A 16 kHz mono clip (n,) -> per-window features and transcripts."""
        from desta.model.processor import given_transcripts, window_features, window_texts, window_transcript

        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim != 1 or wave.size == 0:
            raise AudioError(f"an audio item must be a non-empty mono waveform, got shape {wave.shape}")
        if not np.isfinite(wave).all():
            raise AudioError("an audio item contains NaN or infinite samples")
        windows = split_windows(wave)
        pad = self.config.pad_audio_to_30s
        mel = window_features(windows, self.n_mels, pad)
        features = list(mel) if pad else [m[0] for m in mel]  # W x (M, T_w)
        texts = window_texts(given_transcripts(len(windows), transcript), windows, self.transcribe)
        return ProcessedAudio(features=features, transcripts=[window_transcript(t) for t in texts])


@functools.lru_cache(maxsize=4)
def audio_frontend(whisper_dir: str, settings: AudioSettings, device: str) -> AudioFrontend:
    """One frontend per process and model: vLLM builds its prompt processor several times per process."""
    return AudioFrontend(Path(whisper_dir), settings, torch.device(device))


def pad_features(features: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """W x (M, T_w) -> zero-padded (W, M, max T) and the real lengths (W,)."""
    lengths = torch.tensor([f.shape[-1] for f in features], dtype=torch.long)
    out = torch.zeros(len(features), features[0].shape[0], int(lengths.max()), dtype=features[0].dtype)
    for i, f in enumerate(features):
        out[i, :, : f.shape[-1]] = f
    return out, lengths

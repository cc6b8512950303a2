"""DeSTA as a vLLM model (written against vLLM 0.32): Whisper taps -> Q-Former connector -> vLLM's LLM.

Imported by vLLM through the plugin (``desta.serve.vllm_plugin``), never by ``desta`` itself, so the
module imports vLLM at the top. It serves folders written by ``desta export-vllm``.

Prompt processing (vLLM's multimodal processor, before the engine schedules a request; see
:mod:`desta.serve.vllm_audio` for why transcripts are decoded there)::

    audio (16 kHz) -> 30 s windows -> log-mel per window, zero-padded to the item's longest window
        input_features (W, M, T)  feature_lengths (W,)  windows_per_audio (1,)  audio_block (slots,)
    one special token <|AUDIO|> -> [PH x Q][transcript ids] per window (vllm_prompt.audio_block_ids);
        only PH positions take embeddings, so every count is known before the model runs

Model (the engine's device): ``embed_multimodal`` crops every window to its real frame count
(vLLM zero-pads variable-length items to the longest in an encoder batch, which would otherwise
make a clip's embedding depend on its batch neighbours), runs Whisper's encoder and desta's
connector, and returns one (W_i * Q, H) tensor per audio item.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import BatchFeature
from vllm.config import VllmConfig
from vllm.model_executor.models.interfaces import MultiModalEmbeddings, SupportsMultiModal, SupportsPP
from vllm.model_executor.models.utils import AutoWeightsLoader, init_vllm_registered_model, maybe_prefix
from vllm.multimodal import MULTIMODAL_REGISTRY
from vllm.multimodal.inputs import MultiModalFieldConfig, MultiModalKwargsItems
from vllm.multimodal.parse import MultiModalDataItems, MultiModalDataParser
from vllm.multimodal.processing import (
    BaseDummyInputsBuilder,
    BaseMultiModalProcessor,
    BaseProcessingInfo,
    PromptReplacement,
    PromptUpdate,
    PromptUpdateDetails,
)
from vllm.sequence import IntermediateTensors

from desta.audio import SAMPLE_RATE
from desta.model.processor import audio_span
from desta.serve.vllm_audio import AudioSettings, audio_frontend, pad_features, resolve_device
from desta.serve.vllm_config import DeSTAHFConfig
from desta.serve.vllm_prompt import audio_block_ids, n_embedding_slots


def model_dir(name: str) -> Path:
    """The exported folder on disk (a hub id is fetched once into the hub cache)."""
    path = Path(name)
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(name))


# ---------------------------------------------------------------------------------------- prompts
class DeSTAProcessingInfo(BaseProcessingInfo):
    def get_hf_config(self) -> DeSTAHFConfig:
        return self.ctx.get_hf_config(DeSTAHFConfig)

    def get_hf_processor(self, **kwargs: object):
        raise NotImplementedError(
            "DeSTA has no transformers processor; vLLM's processor is DeSTAMultiModalProcessor"
        )

    def get_supported_mm_processor_kwargs(self) -> dict[str, set[str]]:
        return {}  # `transcripts` stays a flat kwarg for _call_hf_processor

    def get_data_parser(self) -> MultiModalDataParser:
        return MultiModalDataParser(target_sr=SAMPLE_RATE, target_channels=1)

    def get_supported_mm_limits(self) -> Mapping[str, int | None]:
        return {"audio": None}

    @functools.cached_property
    def desta_processor(self):
        """desta's own processor on vLLM's tokenizer: placeholder id and transcript tokenization."""
        from desta.model.processor import DeSTAProcessor

        cfg = self.get_hf_config()
        return DeSTAProcessor(
            self.get_tokenizer(),
            n_queries=cfg.prompt_size,
            placeholder_token=cfg.placeholder_token,
            audio_locator=cfg.audio_locator,
            start_audio=cfg.start_audio,
            end_audio=cfg.end_audio,
            max_transcript_tokens=cfg.max_transcript_tokens,
        )

    def audio_token_id(self) -> int:
        cfg = self.get_hf_config()
        tok = self.get_tokenizer()
        ids = tok.encode(cfg.audio_locator, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(
                f"{cfg.audio_locator!r} is {len(ids)} tokens in this tokenizer; export the model with "
                "`desta export-vllm`, which adds it as one special token"
            )
        return ids[0]

    def frontend(self):
        cfg = self.get_hf_config()
        whisper = cfg.whisper_dir(model_dir(self.ctx.model_config.model))
        return audio_frontend(
            str(whisper), AudioSettings.from_config(cfg), str(resolve_device(cfg.asr_device))
        )


class DeSTADummyInputsBuilder(BaseDummyInputsBuilder[DeSTAProcessingInfo]):
    def get_dummy_text(self, mm_counts: Mapping[str, int]) -> str:
        cfg = self.info.get_hf_config()
        return audio_span(cfg.audio_locator, cfg.start_audio, cfg.end_audio) * mm_counts.get("audio", 0)

    def get_dummy_mm_data(self, seq_len: int, mm_counts: Mapping[str, int], mm_options: Any = None) -> dict:
        # one 30 s window: silence, so profiling never runs Whisper's decoder
        audio = (mm_options or {}).get("audio") if isinstance(mm_options, Mapping) else None
        return {
            "audio": self._get_dummy_audios(
                length=30 * SAMPLE_RATE, num_audios=mm_counts.get("audio", 0), overrides=audio
            )
        }


def _fields(hf_inputs: Mapping[str, torch.Tensor]) -> dict[str, MultiModalFieldConfig]:
    windows = hf_inputs.get("windows_per_audio", torch.empty(0, dtype=torch.long))
    return {
        "input_features": MultiModalFieldConfig.flat_from_sizes("audio", windows),
        "feature_lengths": MultiModalFieldConfig.flat_from_sizes("audio", windows),
        "windows_per_audio": MultiModalFieldConfig.batched("audio", keep_on_cpu=True),
        "audio_block": MultiModalFieldConfig.batched("audio", keep_on_cpu=True),
    }


class DeSTAMultiModalProcessor(BaseMultiModalProcessor[DeSTAProcessingInfo]):
    def _call_hf_processor(
        self, hf_data: Mapping[str, object], hf_kwargs: Mapping[str, object]
    ) -> BatchFeature:
        audios = list(hf_data.get("audio") or [])
        given = _given_transcripts(hf_kwargs.get("transcripts"), len(audios))
        frontend = self.info.frontend()
        processor = self.info.desta_processor
        features: list[torch.Tensor] = []
        windows: list[int] = []
        blocks: list[torch.Tensor] = []
        for wave, text in zip(audios, given):
            item = frontend.process(np.asarray(wave), text)
            features += item.features
            windows.append(len(item.features))
            ids = audio_block_ids(
                [processor.transcript_ids(t) for t in item.transcripts],
                n_queries=processor.n_queries,
                placeholder_id=processor.placeholder_id,
            )
            blocks.append(torch.tensor(ids, dtype=torch.long))
        mel, lengths = pad_features(features)
        return BatchFeature(
            {
                "input_features": mel,
                "feature_lengths": lengths,
                "windows_per_audio": torch.tensor(windows, dtype=torch.long),
                "audio_block": blocks,
            }
        )

    def _get_cache_missing_processor_kwargs(self, inputs, mm_is_cached) -> Mapping[str, object]:
        # per-item transcripts must follow the items that are actually processed (cache misses)
        kwargs = dict(inputs.hf_processor_mm_kwargs)
        given = kwargs.get("transcripts")
        if given is not None:
            cached = mm_is_cached.get("audio", [])
            kwargs["transcripts"] = [t for t, hit in zip(given, cached) if not hit]
        return kwargs

    def _get_mm_fields_config(self, hf_inputs: BatchFeature, hf_processor_mm_kwargs: Mapping[str, object]):
        return _fields(hf_inputs)

    def _get_prompt_updates(
        self,
        mm_items: MultiModalDataItems,
        hf_processor_mm_kwargs: Mapping[str, object],
        out_mm_kwargs: MultiModalKwargsItems,
    ) -> Sequence[PromptUpdate]:
        audio_id = self.info.audio_token_id()
        placeholder = self.info.desta_processor.placeholder_id
        items = out_mm_kwargs.get("audio", [])

        def replacement(item_idx: int) -> PromptUpdateDetails:
            ids = items[item_idx]["audio_block"].data.tolist()
            return PromptUpdateDetails.select_token_id(ids, embed_token_id=placeholder)

        return [PromptReplacement(modality="audio", target=[audio_id], replacement=replacement)]


def _given_transcripts(given: object, n: int) -> list[str | None]:
    """``mm_processor_kwargs={"transcripts": [...]}``: one string (or None: ASR) per audio item."""
    if given is None:
        return [None] * n
    if isinstance(given, str) or not isinstance(given, Sequence) or len(given) != n:
        raise ValueError(
            f"mm_processor_kwargs 'transcripts' must be a list with one entry per audio ({n}), got {given!r:.80}"
        )
    if any(t is not None and not isinstance(t, str) for t in given):
        raise ValueError("each transcript must be a string or None (None: transcribe with Whisper)")
    return list(given)


# ---------------------------------------------------------------------------------------- model
class _EncoderOnly(nn.Module):
    """Whisper's encoder under the names ``WhisperPerception`` reads (``.config``, ``.model.encoder``).

    The decoder is not needed on the engine: transcripts come from the prompt processor.
    """

    def __init__(self, config) -> None:
        super().__init__()
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        self.config = config
        self.model = nn.Module()
        self.model.encoder = WhisperEncoder(config)


class DeSTAAudioTower(nn.Module):
    """Whisper encoder taps + desta's Q-Former connector, in fp32 as ``desta`` runs them."""

    def __init__(self, config: DeSTAHFConfig, whisper_dir: Path) -> None:
        super().__init__()
        from transformers import WhisperConfig

        from desta.model.config import default_target_layers
        from desta.model.connector import QformerConnector
        from desta.model.perception import WhisperPerception

        wcfg = WhisperConfig.from_pretrained(whisper_dir)
        wcfg._attn_implementation = "sdpa"
        taps = tuple(config.target_layer_ids or default_target_layers(wcfg.encoder_layers))
        self.whisper = _EncoderOnly(wcfg)
        self.connector = QformerConnector(
            encoder_dim=wcfg.d_model,
            heads=wcfg.encoder_attention_heads,
            llm_dim=config.text_config.hidden_size,
            n_taps=len(taps),
            n_queries=config.prompt_size,
            num_layers=config.qformer_num_hidden_layers,
            intermediate=config.qformer_intermediate_size,
            dropout=0.0,
        )
        self.float()
        # a list, so the perception's reference to the encoder is not a second registered copy
        self._perception = [WhisperPerception(self.whisper, taps, config.pad_audio_to_30s)]

    def forward(self, mel: torch.Tensor, lengths: Sequence[int]) -> torch.Tensor:
        """mel (W, M, T >= lengths) -> (W, Q, H); windows of equal length are encoded together."""
        out = torch.empty(
            mel.shape[0],
            self.connector.n_queries,
            self.connector.proj[1].out_features,
            device=mel.device,
            dtype=torch.float32,
        )
        by_length: dict[int, list[int]] = {}
        for i, n in enumerate(lengths):
            by_length.setdefault(int(n), []).append(i)
        for n, idx in by_length.items():
            enc = self._perception[0].encode(mel[idx, :, :n].float())
            out[idx] = self.connector(enc.taps)
        return out

    def load_whisper(self, whisper_dir: Path) -> set[str]:
        """Load the encoder's weights from the exported ``whisper/`` folder; returns the loaded names."""
        from safetensors import safe_open

        files = sorted(whisper_dir.glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"{whisper_dir} has no .safetensors weights")
        params = dict(self.whisper.named_parameters())
        loaded = set()
        for file in files:
            with safe_open(str(file), "pt") as f:
                for key in f.keys():
                    if key.startswith("model.encoder.") and key in params:
                        params[key].data.copy_(f.get_tensor(key))
                        loaded.add(key)
        missing = set(params) - loaded
        if missing:
            raise ValueError(f"{whisper_dir}: Whisper encoder weights missing: {sorted(missing)[:5]}")
        return {f"audio_tower.whisper.{k}" for k in loaded}


@MULTIMODAL_REGISTRY.register_processor(
    DeSTAMultiModalProcessor, info=DeSTAProcessingInfo, dummy_inputs=DeSTADummyInputsBuilder
)
class DeSTAForConditionalGeneration(nn.Module, SupportsMultiModal, SupportsPP):
    """vLLM model: ``audio_tower`` (Whisper encoder + connector) and ``language_model`` (any vLLM LLM)."""

    @classmethod
    def get_placeholder_str(cls, modality: str, i: int) -> str | None:
        if modality.startswith("audio"):
            return audio_span()
        raise ValueError("DeSTA accepts only audio")

    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        super().__init__()
        config: DeSTAHFConfig = vllm_config.model_config.hf_config
        self.config = config
        self._llm_dtype = vllm_config.model_config.dtype
        self._whisper_dir = config.whisper_dir(model_dir(vllm_config.model_config.model))
        with self._mark_tower_model(vllm_config, "audio"):
            self.audio_tower = DeSTAAudioTower(config, self._whisper_dir)
        with self._mark_language_model(vllm_config):
            self.language_model = init_vllm_registered_model(
                vllm_config=vllm_config,
                hf_config=config.text_config,
                prefix=maybe_prefix(prefix, "language_model"),
            )
        self.make_empty_intermediate_tensors = self.language_model.make_empty_intermediate_tensors

    def embed_multimodal(self, **kwargs: object) -> MultiModalEmbeddings:
        """One (W_i * Q, H) tensor per audio item, in the LLM's dtype."""
        features = kwargs.get("input_features")
        if features is None:
            return []
        lengths = _flat_longs(kwargs["feature_lengths"])
        windows = _flat_longs(kwargs["windows_per_audio"])
        if isinstance(features, (list, tuple)):  # items whose mel shapes differ arrive unpadded
            features, _ = pad_features([w for f in features for w in (f if f.dim() == 3 else f[None])])
        if features.shape[0] != len(lengths) or sum(windows) != len(lengths):
            raise ValueError(
                f"{features.shape[0]} windows of features, {len(lengths)} lengths, {sum(windows)} in items"
            )
        device = self.audio_tower.connector.layer_weights.device
        vectors = self.audio_tower(features.to(device), lengths)  # (W, Q, H)
        dtype = self._llm_dtype
        out, start = [], 0
        for n in windows:
            chunk = vectors[start : start + n]
            out.append(chunk.reshape(n_embedding_slots(n, chunk.shape[1]), chunk.shape[-1]).to(dtype))
            start += n
        return out

    def forward(
        self,
        input_ids: torch.Tensor | None,
        positions: torch.Tensor,
        intermediate_tensors: IntermediateTensors | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs: object,
    ) -> torch.Tensor | IntermediateTensors:
        if intermediate_tensors is not None:
            inputs_embeds = None
        return self.language_model.model(
            input_ids, positions, intermediate_tensors, inputs_embeds=inputs_embeds
        )

    def compute_logits(self, hidden_states: torch.Tensor) -> torch.Tensor | None:
        return self.language_model.compute_logits(hidden_states)

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        loaded = AutoWeightsLoader(self).load_weights(weights)
        return loaded | self.audio_tower.load_whisper(self._whisper_dir)


def _flat_longs(value: object) -> list[int]:
    if torch.is_tensor(value):
        return [int(x) for x in value.flatten().tolist()]
    return [int(x) for v in value for x in (v.flatten().tolist() if torch.is_tensor(v) else [v])]

"""DeSTA as a vLLM model (vLLM >= 0.10): Whisper taps -> Q-Former connector -> vLLM's own LLM.

Imported by vLLM through the plugin (``desta.serve.vllm_plugin``), never by ``desta`` itself, so the
module may import vLLM at the top. Without vLLM it raises an ImportError that says how to install it.

Processing (CPU, before the model runs):
    audio (16 kHz) -> 30 s windows -> log-mel ``input_features`` (W, M, 3000), flattened per item
    transcripts: ``mm_processor_kwargs={"transcripts": [[...], ...]}`` per audio and window, or
        decoded here with the checkpoint's Whisper (greedy, Silero VAD skips silence)
    ``<|AUDIO|>`` -> ``audio_block_ids`` (see :mod:`desta.serve.vllm_prompt`); only placeholder ids
        receive embeddings, so vLLM knows every count before running.
Model (GPU): ``embed_multimodal`` returns one (W * Q, H) tensor per audio item.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

try:
    from vllm.config import VllmConfig
    from vllm.model_executor.models.interfaces import SupportsMultiModal, SupportsPP
    from vllm.model_executor.models.utils import (
        AutoWeightsLoader,
        WeightsMapper,
        init_vllm_registered_model,
        maybe_prefix,
    )
    from vllm.multimodal import MULTIMODAL_REGISTRY
    from vllm.multimodal.inputs import MultiModalFieldConfig
    from vllm.multimodal.parse import MultiModalDataParser
    from vllm.multimodal.processing import (
        BaseMultiModalProcessor,
        BaseProcessingInfo,
        PromptReplacement,
        PromptUpdateDetails,
    )
    from vllm.sequence import IntermediateTensors
except ImportError as err:  # pragma: no cover - exercised only without vLLM
    raise ImportError(
        f"desta.serve.vllm_model needs vLLM >= 0.10 ({err}); install it with `pip install 'desta[vllm]'` on a GPU machine"
    ) from err

try:  # moved between vLLM releases
    from vllm.multimodal.profiling import BaseDummyInputsBuilder
except ImportError:  # pragma: no cover
    from vllm.multimodal.processing import BaseDummyInputsBuilder

from desta.serve.vllm_prompt import audio_block_ids, n_embedding_slots

SAMPLE_RATE = 16000
AUDIO_LOCATOR = "<|AUDIO|>"


# ---------------------------------------------------------------------------------------- CPU side
@functools.lru_cache(maxsize=2)
def _whisper_cpu(encoder_model_id: str, taps: tuple[int, ...]):
    """Whisper + desta's perception and transcriber on CPU, for features and transcripts (cached)."""
    from transformers import WhisperForConditionalGeneration

    from desta.model.perception import SpeechDetector, WhisperPerception, WhisperTranscriber

    whisper = WhisperForConditionalGeneration.from_pretrained(encoder_model_id).eval()
    taps = taps or (whisper.config.encoder_layers - 1,)
    return WhisperPerception(whisper, taps), WhisperTranscriber(whisper), SpeechDetector()


class DeSTAProcessingInfo(BaseProcessingInfo):
    def get_supported_mm_limits(self) -> Mapping[str, int | None]:
        return {"audio": None}

    def get_data_parser(self) -> MultiModalDataParser:
        return MultiModalDataParser(target_sr=SAMPLE_RATE, target_channels=1)

    @property
    def n_queries(self) -> int:
        return int(getattr(self.get_hf_config(), "prompt_size", 64))

    def placeholder_id(self) -> int:
        config = self.get_hf_config()
        tok = self.get_tokenizer()
        name = getattr(config, "placeholder_token", None) or "<|reserved_special_token_87|>"
        return tok.convert_tokens_to_ids(name)

    def perception(self):
        config = self.get_hf_config()
        return _whisper_cpu(config.encoder_model_id, tuple(getattr(config, "target_layer_ids", None) or ()))


class DeSTADummyInputsBuilder(BaseDummyInputsBuilder[DeSTAProcessingInfo]):
    def get_dummy_text(self, mm_counts: Mapping[str, int]) -> str:
        return AUDIO_LOCATOR * mm_counts.get("audio", 0)

    def get_dummy_mm_data(self, seq_len: int, mm_counts: Mapping[str, int], mm_options: Any = None) -> dict:
        n = mm_counts.get("audio", 0)
        return {"audio": self._get_dummy_audios(length=30 * SAMPLE_RATE, num_audios=n)}


class DeSTAMultiModalProcessor(BaseMultiModalProcessor[DeSTAProcessingInfo]):
    def _get_data_parser(self) -> MultiModalDataParser:  # vLLM < 0.11 asks the processor
        return self.info.get_data_parser()

    def _windows(self, audios: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
        from desta.audio import split_windows

        return [split_windows(np.asarray(a, dtype=np.float32)) for a in audios]

    def _call_hf_processor(
        self,
        prompt: str,
        mm_data: Mapping[str, object],
        mm_kwargs: Mapping[str, object],
        tok_kwargs: Mapping[str, object] = {},
    ):  # noqa: B006
        from transformers import BatchFeature

        tokenizer = self.info.get_tokenizer()
        ids = tokenizer(prompt, add_special_tokens=False).input_ids
        audios = mm_data.get("audios") or mm_data.get("audio") or []
        if not audios:
            return BatchFeature({"input_ids": [ids]}, tensor_type="pt")
        perception, _, _ = self.info.perception()
        windows = self._windows(audios)
        flat = [w for ws in windows for w in ws]
        with torch.inference_mode():
            features = perception.features(flat)  # (W, M, 3000)
        return BatchFeature(
            {
                "input_ids": [ids],
                "input_features": features,
                "windows_per_audio": torch.tensor([len(ws) for ws in windows]),
            },
            tensor_type="pt",
        )

    def _hf_processor_applies_updates(self, *args: Any, **kwargs: Any) -> bool:
        return False  # placeholders are expanded by vLLM from _get_prompt_updates

    def _get_mm_fields_config(
        self, hf_inputs, hf_processor_mm_kwargs: Mapping[str, object]
    ) -> Mapping[str, Any]:
        sizes = hf_inputs.get("windows_per_audio", torch.empty(0, dtype=torch.long))
        return {
            "input_features": MultiModalFieldConfig.flat_from_sizes("audio", sizes),
            "windows_per_audio": MultiModalFieldConfig.batched("audio"),
        }

    def _transcripts(self, audios: Sequence[np.ndarray], given: Any) -> list[list[str]]:
        windows = self._windows(audios)
        if given is not None:
            out = [[t] if isinstance(t, str) else list(t) for t in given]
            if [len(t) for t in out] != [len(w) for w in windows]:
                raise ValueError("transcripts must give one string per audio (or one per 30 s window)")
            return out
        perception, asr, vad = self.info.perception()
        out = []
        with torch.inference_mode():
            for ws in windows:
                texts = []
                for w in ws:
                    if not vad.has_speech(w):
                        texts.append(" ")
                        continue
                    texts.append(asr.transcribe(perception.encode(perception.features([w])).last)[0])
                out.append(texts)
        return out

    def _get_prompt_updates(
        self, mm_items, hf_processor_mm_kwargs: Mapping[str, object], out_mm_kwargs
    ) -> Sequence[Any]:
        tokenizer = self.info.get_tokenizer()
        config = self.info.get_hf_config()
        audios = [
            mm_items.get_items("audio", None).get(i) for i in range(mm_items.get_count("audio", strict=False))
        ]
        transcripts = self._transcripts(audios, hf_processor_mm_kwargs.get("transcripts"))
        start_ids = tokenizer(
            getattr(config, "start_audio", "<start_audio>"), add_special_tokens=False
        ).input_ids
        end_ids = tokenizer(getattr(config, "end_audio", "<end_audio>"), add_special_tokens=False).input_ids
        placeholder = self.info.placeholder_id()
        n_queries = self.info.n_queries

        def replacement(item_idx: int):
            per_window = [
                tokenizer(t if t.strip() else " ", add_special_tokens=False).input_ids
                for t in transcripts[item_idx]
            ]
            ids = audio_block_ids(
                per_window,
                n_queries=n_queries,
                placeholder_id=placeholder,
                start_ids=start_ids,
                end_ids=end_ids,
            )
            return PromptUpdateDetails.select_token_id(ids, embed_token_id=placeholder)

        return [PromptReplacement(modality="audio", target=AUDIO_LOCATOR, replacement=replacement)]


# ---------------------------------------------------------------------------------------- GPU side
class _AudioTower(nn.Module):
    """``whisper`` (HF WhisperForConditionalGeneration) + ``connector``, named as in desta checkpoints."""

    def __init__(self, config) -> None:
        super().__init__()
        from transformers import WhisperConfig, WhisperForConditionalGeneration

        from desta.model.config import default_target_layers
        from desta.model.connector import QformerConnector
        from desta.model.perception import WhisperPerception

        wcfg = WhisperConfig.from_pretrained(config.encoder_model_id)
        taps = tuple(getattr(config, "target_layer_ids", None) or default_target_layers(wcfg.encoder_layers))
        self.whisper = WhisperForConditionalGeneration(wcfg)
        self._perception = [WhisperPerception(self.whisper, taps)]  # list: not a second registered copy
        self.connector = QformerConnector(
            encoder_dim=wcfg.d_model,
            heads=wcfg.encoder_attention_heads,
            llm_dim=config.text_config.hidden_size,
            n_taps=len(taps),
            n_queries=getattr(config, "prompt_size", 64),
            num_layers=getattr(config, "qformer_num_hidden_layers", 6),
            intermediate=getattr(config, "qformer_intermediate_size", 3072),
            dropout=0.0,
        )

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel (W, M, T) -> (W, Q, H)."""
        enc = self._perception[0].encode(mel)
        return self.connector([t.to(self.connector.layer_weights.dtype) for t in enc.taps])


@MULTIMODAL_REGISTRY.register_processor(
    DeSTAMultiModalProcessor, info=DeSTAProcessingInfo, dummy_inputs=DeSTADummyInputsBuilder
)
class DeSTAForConditionalGeneration(nn.Module, SupportsMultiModal, SupportsPP):
    """vLLM model: ``audio_tower`` (Whisper + connector) and ``language_model`` (any vLLM LLM)."""

    # desta checkpoints name the trained weights perception.connector.*; backbones come from their repos
    hf_to_vllm_mapper = WeightsMapper(
        orig_to_new_prefix={"perception.": "audio_tower.", "llm_model.": "language_model."}
    )

    @classmethod
    def get_placeholder_str(cls, modality: str, i: int) -> str | None:
        if modality.startswith("audio"):
            return AUDIO_LOCATOR
        raise ValueError("DeSTA accepts only audio")

    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        super().__init__()
        config = vllm_config.model_config.hf_config
        self.config = config
        self.audio_tower = _AudioTower(config)
        self.language_model = init_vllm_registered_model(
            vllm_config=vllm_config,
            hf_config=config.text_config,
            prefix=maybe_prefix(prefix, "language_model"),
        )
        self.make_empty_intermediate_tensors = self.language_model.make_empty_intermediate_tensors
        try:
            from vllm.model_executor.model_loader import DefaultModelLoader

            self.secondary_weights = [
                DefaultModelLoader.Source(
                    model_or_path=config.encoder_model_id, revision=None, prefix="audio_tower.whisper."
                ),
                DefaultModelLoader.Source(
                    model_or_path=config.llm_model_id, revision=None, prefix="language_model."
                ),
            ]
        except (ImportError, AttributeError):  # pragma: no cover - older loaders
            self.secondary_weights = []

    def get_language_model(self) -> nn.Module:
        return self.language_model

    def embed_multimodal(self, **kwargs: object) -> list[torch.Tensor]:
        """One (W_i * Q, H) tensor per audio item."""
        features = kwargs.get("input_features")
        sizes = kwargs.get("windows_per_audio")
        if features is None:
            return []
        if isinstance(features, (list, tuple)):
            features = torch.cat([f if f.dim() == 3 else f[None] for f in features])
        sizes = [int(s) for s in (sizes.flatten().tolist() if torch.is_tensor(sizes) else sizes)]
        tower = self.audio_tower
        mel = features.to(device=tower.connector.layer_weights.device)
        vectors = tower(mel)  # (W, Q, H)
        out, start = [], 0
        for n in sizes:
            chunk = vectors[start : start + n]
            out.append(chunk.reshape(n_embedding_slots(n, chunk.shape[1]), chunk.shape[-1]))
            start += n
        return out

    get_multimodal_embeddings = embed_multimodal  # vLLM < 0.11 name

    def forward(
        self,
        input_ids: torch.Tensor,
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

    def compute_logits(self, hidden_states: torch.Tensor, *args: Any) -> torch.Tensor | None:
        return self.language_model.compute_logits(hidden_states, *args)

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        # Whisper's decoder is loaded too: the CPU processor uses its own copy for transcripts.
        loader = AutoWeightsLoader(self, skip_prefixes=["audio_tower.whisper.proj_out."])
        return loader.load_weights(weights, mapper=self.hf_to_vllm_mapper)

"""The transformers config class vLLM reads from an exported folder (``model_type: desta``).

Written by :func:`desta.serve.vllm_export.export_vllm`. The LLM's config is embedded as
``text_config`` (vLLM builds the language model from it); the Whisper backbone lives in the
``encoder_model_id`` subfolder, a path relative to the exported folder; the other fields are the
prompt settings of :class:`desta.model.config.DeSTAConfig` that vLLM's processor needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import AutoConfig, PretrainedConfig

from desta.messages import AUDIO_LOCATOR, END_AUDIO, START_AUDIO


class DeSTAHFConfig(PretrainedConfig):
    model_type = "desta"
    sub_configs = {"text_config": AutoConfig}

    def __init__(
        self,
        text_config: dict[str, Any] | PretrainedConfig | None = None,
        encoder_model_id: str = "whisper",
        llm_model_id: str = "",
        prompt_size: int = 64,
        qformer_num_hidden_layers: int = 6,
        qformer_intermediate_size: int = 3072,
        target_layer_ids: list[int] | None = None,
        audio_locator: str = AUDIO_LOCATOR,
        placeholder_token: str | None = None,
        start_audio: str = START_AUDIO,
        end_audio: str = END_AUDIO,
        system_prompt: str | None = None,
        pad_audio_to_30s: bool = True,
        max_transcript_tokens: int | None = None,
        use_asr: bool = True,
        use_vad: bool = True,
        asr_max_new_tokens: int = 128,
        asr_device: str = "auto",
        **kwargs: Any,
    ) -> None:
        if isinstance(text_config, dict):
            from transformers.models.auto.configuration_auto import CONFIG_MAPPING

            text_config = CONFIG_MAPPING[text_config.get("model_type", "llama")](**text_config)
        self.text_config = text_config
        self.encoder_model_id = encoder_model_id
        self.llm_model_id = llm_model_id
        self.prompt_size = prompt_size
        self.qformer_num_hidden_layers = qformer_num_hidden_layers
        self.qformer_intermediate_size = qformer_intermediate_size
        self.target_layer_ids = list(target_layer_ids) if target_layer_ids is not None else None
        self.audio_locator = audio_locator
        self.placeholder_token = placeholder_token
        self.start_audio = start_audio
        self.end_audio = end_audio
        self.system_prompt = system_prompt
        self.pad_audio_to_30s = pad_audio_to_30s
        self.max_transcript_tokens = max_transcript_tokens
        self.use_asr = use_asr
        self.use_vad = use_vad
        self.asr_max_new_tokens = asr_max_new_tokens
        self.asr_device = asr_device
        super().__init__(**kwargs)

    def get_text_config(self, *args: Any, **kwargs: Any) -> PretrainedConfig:
        return self.text_config

    def whisper_dir(self, model_dir: str | Path) -> Path:
        """The Whisper folder: ``encoder_model_id`` relative to the exported folder, or absolute."""
        path = Path(self.encoder_model_id)
        return path if path.is_absolute() else Path(model_dir) / path

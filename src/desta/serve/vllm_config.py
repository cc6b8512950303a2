"""The transformers config class vLLM reads for a DeSTA checkpoint (``model_type: desta``).

It carries the fields of :class:`desta.model.config.DeSTAConfig` as attributes, and exposes the LLM's
config as ``text_config`` (loaded from ``llm_model_id``) because vLLM builds the language model from it.
"""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, PretrainedConfig


class DeSTAHFConfig(PretrainedConfig):
    model_type = "desta"

    def __init__(
        self,
        encoder_model_id: str = "openai/whisper-large-v3",
        llm_model_id: str = "DeSTA-ntu/Llama-3.1-8B-Instruct",
        prompt_size: int = 64,
        text_config: dict[str, Any] | PretrainedConfig | None = None,
        **kwargs: Any,
    ) -> None:
        self.encoder_model_id = encoder_model_id
        self.llm_model_id = llm_model_id
        self.prompt_size = prompt_size
        if isinstance(text_config, dict):
            text_config = AutoConfig.for_model(**text_config)
        self._text_config = text_config
        super().__init__(**kwargs)

    @property
    def text_config(self) -> PretrainedConfig:
        if self._text_config is None:
            self._text_config = AutoConfig.from_pretrained(self.llm_model_id)
        return self._text_config

    def get_text_config(self, *args: Any, **kwargs: Any) -> PretrainedConfig:
        return self.text_config

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.pop("_text_config", None)
        if self._text_config is not None:
            out["text_config"] = self._text_config.to_dict()
        return out


class DeSTA25HFConfig(DeSTAHFConfig):
    """The official release's ``model_type``; same fields."""

    model_type = "desta25"

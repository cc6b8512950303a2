"""The DeSTA model: frozen Whisper + trained Q-Former connector + frozen chat LLM.

Legend: B conversations, N tokens, W audio windows in the batch, Q queries per window, H LLM width.

    audio -> windows (<= 30 s) -> Whisper taps -> connector -> (W, Q, H)
    conversation -> processor -> ids (B, N) with W*Q placeholder slots (audio_mask)
    embed_tokens(ids) -> masked_scatter(audio features into the slots) -> LLM

This module is the network: ``encode_audio``, ``embed``, ``forward``, parameters and freezing.
Preparing conversations is :class:`desta.model.processor.DeSTAProcessor`'s job and answering them is
:mod:`desta.model.generation`'s; ``generate``/``stream`` here are thin conveniences over it.
Checkpoint compatibility with the official release lives in :mod:`desta.model.convert`, not here.
"""

from __future__ import annotations

import threading
from collections.abc import Generator as Generator_
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from desta.errors import DeSTAError
from desta.model.config import DeSTAConfig
from desta.model.connector import QformerConnector
from desta.model.generation import Generator
from desta.model.options import GenerationOptions, GenerationResult
from desta.model.perception import WhisperPerception
from desta.model.processor import IGNORE_INDEX, DeSTAProcessor

Conversation = list[dict[str, Any]]


class DeSTAModel(nn.Module):
    def __init__(self, config: DeSTAConfig, whisper: nn.Module, llm: nn.Module, tokenizer) -> None:
        super().__init__()
        wcfg = whisper.config
        config = config.replace(
            encoder_dim=wcfg.d_model,
            encoder_heads=wcfg.encoder_attention_heads,
            encoder_layers=wcfg.encoder_layers,
            llm_dim=llm.get_input_embeddings().weight.shape[1],
        )
        config = config.replace(target_layer_ids=config.taps)
        self.config = config
        self.perception = WhisperPerception(whisper, config.taps, config.pad_audio_to_30s)
        self.perception.connector = QformerConnector(
            encoder_dim=config.encoder_dim,
            heads=config.encoder_heads,
            llm_dim=config.llm_dim,
            n_taps=len(config.taps),
            n_queries=config.prompt_size,
            num_layers=config.qformer_num_hidden_layers,
            intermediate=config.qformer_intermediate_size,
            dropout=config.qformer_dropout,
        )
        self.llm_model = llm
        self.tokenizer = tokenizer
        self.processor = DeSTAProcessor(
            tokenizer,
            n_queries=config.prompt_size,
            placeholder_token=config.placeholder_token,
            audio_locator=config.audio_locator,
            start_audio=config.start_audio,
            end_audio=config.end_audio,
            max_transcript_tokens=config.max_transcript_tokens,
            system_prompt=config.system_prompt,
            n_mels=wcfg.num_mel_bins,
            pad_audio_to_30s=config.pad_audio_to_30s,
        )
        self.config = config.replace(placeholder_token=self.processor.placeholder_token)
        self._generator: Generator | None = None  # made on first generate/stream
        # LoRA A/B already added into the LLM weights at load (desta.model.lora.fold_lora): peft's names -> tensors
        self.folded_lora: dict[str, torch.Tensor] = {}
        self.freeze_backbones()

    # ------------------------------------------------------------------ parameters
    @property
    def name(self) -> str:
        return self.config.name

    @property
    def connector(self) -> QformerConnector:
        return self.perception.connector

    @property
    def device(self) -> torch.device:
        return self.connector.layer_weights.device

    def freeze_backbones(self) -> None:
        """Freeze Whisper and the LLM (LoRA weights, if any, stay trainable); keep them in eval mode."""
        for name, p in self.named_parameters():
            p.requires_grad = not (name.startswith("llm_model.") or name.startswith("perception.whisper.")) or (
                "lora_" in name
            )
        self.perception.whisper.eval()
        self.llm_model.eval()

    def train(self, mode: bool = True) -> DeSTAModel:
        super().train(mode)
        self.perception.whisper.eval()  # frozen backbones never use dropout
        if not self.config.use_lora:
            self.llm_model.eval()
        return self

    def trainable_parameter_names(self) -> list[str]:
        return [n for n, p in self.named_parameters() if p.requires_grad]

    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        """Only the trained weights (connector, LoRA), as the official checkpoint stores them.

        A LoRA merged at load time is included too (the A/B it was merged from), as peft's merge keeps it.
        """
        names = set(self.trainable_parameter_names())
        state = {k: v for k, v in self.state_dict().items() if k in names}
        state.update((k, v.to(self.device)) for k, v in self.folded_lora.items())
        return state

    # ------------------------------------------------------------------ audio
    def encode_audio(self, mel: torch.Tensor) -> torch.Tensor:
        """mel (W, M, T) -> connector output (W, Q, H). Whisper runs without gradients."""
        with torch.no_grad():
            enc = self.perception.encode(mel)
        taps = [t.to(self.connector.layer_weights.dtype) for t in enc.taps]
        return self.connector(taps)

    def embed(self, input_ids: torch.Tensor, audio_mask: torch.Tensor, audio: torch.Tensor | None) -> torch.Tensor:
        """(B, N) ids + (W, Q, H) audio vectors -> (B, N, H) embeddings with audio in its slots."""
        embeds = self.llm_model.get_input_embeddings()(input_ids)
        n_slots = int(audio_mask.sum())
        n_vec = 0 if audio is None else audio.shape[0] * audio.shape[1]
        if n_slots != n_vec:
            raise DeSTAError(f"{n_slots} audio slots in the prompt but {n_vec} audio vectors from the connector")
        if n_vec == 0:
            return embeds
        return embeds.masked_scatter(audio_mask[..., None], audio.to(embeds.dtype).reshape(-1, embeds.shape[-1]))

    # ------------------------------------------------------------------ training
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        audio_mask: torch.Tensor,
        mel: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        audio_features: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Returns ``{"loss", "n_tokens"}`` with labels, else ``{"hidden"}`` (B, N, H).

        The vocabulary projection runs only at positions that predict a label: projecting the whole
        context (B * N * vocab) would be wasted work.
        """
        if audio_features is None and mel is not None:
            audio_features = self.encode_audio(mel)
        embeds = self.embed(input_ids, audio_mask, audio_features)
        body = getattr(self.llm_model, self.llm_model.base_model_prefix)
        hidden = body(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids).last_hidden_state
        if labels is None:
            return {"hidden": hidden}
        target = labels[:, 1:]
        keep = target != IGNORE_INDEX
        logits = self.llm_model.get_output_embeddings()(hidden[:, :-1][keep])
        loss = F.cross_entropy(logits.float(), target[keep], reduction="sum")
        n = keep.sum()
        return {"loss": loss / n.clamp(min=1), "loss_sum": loss, "n_tokens": n}

    # ------------------------------------------------------------------ Hugging Face conventions
    @classmethod
    def from_pretrained(cls, name, *args: Any, **kwargs: Any) -> DeSTAModel:
        """Load a folder, hub id or packaged name (:func:`desta.model.load.load_model`)."""
        from desta.model.pretrained import from_pretrained

        return from_pretrained(cls, name, *args, **kwargs)

    def save_pretrained(self, out_dir, **kwargs: Any):
        """Write config, adapter, tokenizer, generation and preprocessor configs and a card (:mod:`desta.model.pretrained`)."""
        from desta.model.pretrained import save_pretrained

        return save_pretrained(self, out_dir, **kwargs)

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        """Upload :meth:`save_pretrained`'s folder as ``repo_id``."""
        from desta.model.pretrained import push_to_hub

        return push_to_hub(self, repo_id, **kwargs)

    # ------------------------------------------------------------------ inference (thin conveniences)
    @property
    def generator(self) -> Generator:
        """This model's :class:`desta.model.generation.Generator` (created on first use; holds the ASR cache)."""
        if self._generator is None:
            self._generator = Generator(self)
        return self._generator

    def clear_transcript_cache(self) -> None:
        """Forget cached Whisper transcripts (the next call transcribes every window again)."""
        self.generator.asr.clear()

    def prepare(self, conversations: Sequence[Conversation]):
        """See :meth:`desta.model.generation.Generator.prepare`."""
        return self.generator.prepare(conversations)

    def generate(
        self,
        conversations: Sequence[Conversation] | Conversation,
        options: GenerationOptions | None = None,
        *,
        cancel: threading.Event | None = None,
        **overrides: Any,
    ) -> list[GenerationResult]:
        """Answer one conversation or a batch (see :meth:`desta.model.generation.Generator.generate`)."""
        return self.generator.generate(conversations, options, cancel=cancel, **overrides)

    def stream(
        self,
        conversation: Conversation,
        options: GenerationOptions | None = None,
        *,
        cancel: threading.Event | None = None,
        **overrides: Any,
    ) -> Generator_[str, None, GenerationResult]:
        """Yield answer pieces; the return value is the result (see :meth:`desta.model.generation.Generator.stream`)."""
        return self.generator.stream(conversation, options, cancel=cancel, **overrides)

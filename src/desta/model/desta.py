"""The DeSTA model: frozen Whisper + trained Q-Former connector + frozen chat LLM.

Legend: B conversations, N tokens, W audio windows in the batch, Q queries per window, H LLM width.

    audio -> windows (<= 30 s) -> Whisper taps -> connector -> (W, Q, H)
    conversation -> processor -> ids (B, N) with W*Q placeholder slots (audio_mask)
    embed_tokens(ids) -> masked_scatter(audio features into the slots) -> LLM

``forward`` returns the loss; ``generate``/``stream`` answer conversations. Checkpoint compatibility
with the official release lives in :mod:`desta.model.convert`, not here.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from desta.audio import load_audio, split_windows
from desta.errors import DeSTAError
from desta.infer.options import GenerationOptions, GenerationResult
from desta.model.config import DeSTAConfig
from desta.model.connector import QformerConnector
from desta.model.perception import SpeechDetector, WhisperPerception, WhisperTranscriber
from desta.model.processor import IGNORE_INDEX, DeSTAProcessor

Conversation = list[dict[str, Any]]


@dataclass
class PreparedBatch:
    """Tensors for one batch plus what generation reports back."""

    inputs: dict[str, torch.Tensor]  # input_ids, attention_mask, position_ids, audio_mask (B, N)
    mel: torch.Tensor | None  # (W, M, T) in slot order, or None without audio
    transcripts: list[list[str]]  # per conversation, per audio (windows joined)


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
        )
        self.config = config.replace(placeholder_token=self.processor.placeholder_token)
        self._vad: SpeechDetector | None = None
        self._transcriber: WhisperTranscriber | None = None
        # window fingerprint -> transcript: a multi-turn chat re-sends its audio every turn, and an
        # evaluation asks several questions about each clip; greedy ASR is deterministic, so reuse it
        self._asr_cache: OrderedDict[bytes, str] = OrderedDict()
        self.asr_cache_size = 512
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
        """Only the trained weights (connector, LoRA), as the official checkpoint stores them."""
        names = set(self.trainable_parameter_names())
        return {k: v for k, v in self.state_dict().items() if k in names}

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

    # ------------------------------------------------------------------ inference
    def clear_transcript_cache(self) -> None:
        """Forget cached Whisper transcripts (the next call transcribes every window again)."""
        self._asr_cache.clear()

    def _speech_detector(self) -> SpeechDetector:
        if self._vad is None:
            self._vad = SpeechDetector()
        return self._vad

    def _asr(self) -> WhisperTranscriber:
        if self._transcriber is None:
            self._transcriber = WhisperTranscriber(self.perception.whisper, self.config.asr_max_new_tokens)
        return self._transcriber

    @torch.no_grad()
    def prepare(self, conversations: Sequence[Conversation]) -> PreparedBatch:
        """Load audio, split 30 s windows, transcribe where needed, encode and pad (left) a batch."""
        convs = [self.processor.normalize(c) for c in conversations]
        windows: list[np.ndarray] = []
        user_text: list[str | None] = []  # per window: given transcript (first window of its audio)
        owners: list[tuple[int, int]] = []  # per window: (conversation, audio index)
        for ci, conv in enumerate(convs):
            ai = 0
            for m in conv:
                for entry in m["audios"]:
                    if not isinstance(entry, dict) or "audio" not in entry:
                        raise DeSTAError(f"conversation {ci}: each audio must be a dict with an 'audio' key, got {entry!r:.80}")
                    wave = load_audio(entry["audio"], sr=entry.get("sampling_rate"))
                    for wi, w in enumerate(split_windows(wave)):
                        windows.append(w)
                        text = entry.get("text")
                        user_text.append(text if wi == 0 else ("" if text is not None else None))
                        owners.append((ci, ai))
                    ai += 1
        mel: torch.Tensor | list[torch.Tensor] | None = None
        texts = [t if t is not None else "" for t in user_text]
        if windows:
            if self.config.pad_audio_to_30s:
                mel = self.perception.features(windows)  # (W, M, 3000)
            else:  # each window at its own length, so batching never changes a clip's features
                mel = [self.perception.features([w]) for w in windows]
            need_asr = [i for i, t in enumerate(user_text) if t is None]
            if need_asr and not self.config.use_asr:
                for i in need_asr:
                    texts[i] = " "
                need_asr = []
            if need_asr and self.config.use_vad:
                vad = self._speech_detector()
                silent = [i for i in need_asr if not vad.has_speech(windows[i])]
                for i in silent:
                    texts[i] = " "  # official: no speech -> a single space
                need_asr = [i for i in need_asr if i not in set(silent)]
            cache = self._asr_cache
            keys = {i: _fingerprint(windows[i]) for i in need_asr}
            first: dict[bytes, int] = {}  # windows not transcribed before, each once even if repeated
            for i in need_asr:
                if keys[i] not in cache:
                    first.setdefault(keys[i], i)
            if first:
                # Whisper decodes from 30 s padded features (what it was trained on), in one batch
                unique = list(first.values())
                if isinstance(mel, torch.Tensor):
                    asr_mel = mel[unique]
                else:
                    asr_mel = self.perception.features_30s([windows[i] for i in unique])
                outs = self._asr().transcribe(self.perception.encode(asr_mel).last)
                for i, t in zip(unique, outs):
                    cache[keys[i]] = t
            for i in need_asr:
                texts[i] = cache[keys[i]]
                cache.move_to_end(keys[i])
            while len(cache) > self.asr_cache_size:
                cache.popitem(last=False)
        per_conv: list[list[list[str]]] = [[] for _ in convs]
        for (ci, ai), t in zip(owners, texts):
            while len(per_conv[ci]) <= ai:
                per_conv[ci].append([])
            per_conv[ci][ai].append(t)
        encoded = [self.processor.encode(c, per_conv[i]) for i, c in enumerate(convs)]
        inputs = self.processor.collate(encoded, padding_side="left")
        joined = [[" ".join(x for x in a if x.strip()).strip() for a in c] for c in per_conv]
        return PreparedBatch(inputs={k: v.to(self.device) for k, v in inputs.items()}, mel=mel, transcripts=joined)

    def _audio_features(self, mel) -> torch.Tensor | None:
        if mel is None:
            return None
        if isinstance(mel, list):
            return torch.cat([self.encode_audio(m) for m in mel]) if mel else None
        return self.encode_audio(mel)

    def _generate_kwargs(self, options: GenerationOptions) -> dict[str, Any]:
        eos = {self.processor.eot_id}
        gen_eos = self.llm_model.generation_config.eos_token_id
        if gen_eos is not None:
            eos.update([gen_eos] if isinstance(gen_eos, int) else gen_eos)
        if self.tokenizer.eos_token_id is not None:
            eos.add(self.tokenizer.eos_token_id)
        kw: dict[str, Any] = dict(
            max_new_tokens=options.max_new_tokens,
            do_sample=options.do_sample,
            eos_token_id=sorted(eos),
            pad_token_id=self.processor.pad_id,
            repetition_penalty=options.repetition_penalty,
        )
        if options.do_sample:
            kw.update(temperature=options.temperature, top_p=options.top_p, top_k=options.top_k or None)
        else:
            kw.update(temperature=None, top_p=None, top_k=None)
        if options.stop:
            kw.update(stop_strings=list(options.stop), tokenizer=self.tokenizer)
        return kw

    @staticmethod
    def _as_batch(conversations) -> list[Conversation]:
        if isinstance(conversations, (list, tuple)) and conversations and isinstance(conversations[0], dict):
            return [list(conversations)]  # a single conversation
        if not isinstance(conversations, (list, tuple)) or not conversations:
            raise DeSTAError("give a conversation (list of messages) or a non-empty list of conversations")
        return [list(c) for c in conversations]

    @torch.no_grad()
    def generate(
        self, conversations: Sequence[Conversation] | Conversation, options: GenerationOptions | None = None, **overrides: Any
    ) -> list[GenerationResult]:
        """Answer one conversation or a batch of them; batch results equal one-by-one results.

        ``overrides`` replace fields of ``options`` (e.g. ``max_new_tokens=64``).
        """
        options = replace(options or GenerationOptions(), **overrides)
        batch = self._as_batch(conversations)
        prepared = self.prepare(batch)
        audio = self._audio_features(prepared.mel)
        inp = prepared.inputs
        embeds = self.embed(inp["input_ids"], inp["audio_mask"], audio)
        if options.seed is not None:
            torch.manual_seed(options.seed)
        out = self.llm_model.generate(inputs_embeds=embeds, attention_mask=inp["attention_mask"], **self._generate_kwargs(options))
        eos = set(self._generate_kwargs(options)["eos_token_id"])
        results = []
        prompt_lens = inp["attention_mask"].sum(-1).tolist()
        for r, row in enumerate(out.tolist()):
            ids, reason = [], "length"
            for t in row:
                if t in eos:
                    reason = "stop"
                    break
                ids.append(t)
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            for s in options.stop:
                if s in text:
                    text, reason = text[: text.index(s)], "stop"
            results.append(
                GenerationResult(
                    text=text.strip(),
                    token_ids=ids,
                    transcripts=prepared.transcripts[r],
                    finish_reason=reason,
                    prompt_tokens=int(prompt_lens[r]),
                    completion_tokens=len(ids),
                )
            )
        return results

    def stream(self, conversation: Conversation, options: GenerationOptions | None = None, **overrides: Any) -> Iterator[str]:
        """Yield text pieces of the answer as they are generated (one conversation)."""
        from transformers import TextIteratorStreamer

        options = replace(options or GenerationOptions(), **overrides)
        with torch.no_grad():
            prepared = self.prepare(self._as_batch(conversation)[:1])
            audio = self._audio_features(prepared.mel)
            inp = prepared.inputs
            embeds = self.embed(inp["input_ids"], inp["audio_mask"], audio)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=False, skip_special_tokens=True, timeout=600)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with torch.no_grad():
                    if options.seed is not None:
                        torch.manual_seed(options.seed)
                    self.llm_model.generate(
                        inputs_embeds=embeds, attention_mask=inp["attention_mask"], streamer=streamer, **self._generate_kwargs(options)
                    )
            except BaseException as err:  # surfaced to the consumer below
                errors.append(err)
                streamer.end()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        for piece in streamer:
            if piece:
                yield piece
        thread.join()
        if errors:
            raise errors[0]


def _fingerprint(window: np.ndarray) -> bytes:
    """A 16-byte digest of a 16 kHz window (the ASR cache key)."""
    return hashlib.blake2b(np.ascontiguousarray(window, dtype=np.float32).tobytes(), digest_size=16).digest()

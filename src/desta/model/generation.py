"""The local model's generation path: prepare a batch of conversations, generate, stream.

``DeSTAModel.generate`` / ``stream`` call this (the model binds it; this module names the model only
under ``TYPE_CHECKING``), and so do ``desta ask``, the server's model engine, the evaluation predictors
and the data tools when they run a local DeSTA model. :mod:`desta.infer.generation` re-exports it.

    conversations -> DeSTAProcessor (ids, audio slots, windows, log-mel; ASR for windows without a
    transcript) -> model.encode_audio -> model.embed -> LLM generate -> GenerationResult
"""

from __future__ import annotations

import threading
from collections.abc import Generator as Generator_
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch

from desta.errors import DeSTAError
from desta.model.asr import WindowTranscriber
from desta.model.options import GenerationOptions, GenerationResult

if TYPE_CHECKING:  # pragma: no cover
    from desta.model.desta import DeSTAModel

Conversation = list[dict[str, Any]]


@dataclass
class PreparedBatch:
    """Tensors for one batch plus what generation reports back."""

    inputs: dict[str, torch.Tensor]  # input_ids, attention_mask, position_ids, audio_mask (B, N) on the model's device
    mel: torch.Tensor | list[torch.Tensor] | None  # (W, M, T) in slot order, or per-window tensors, or None
    transcripts: list[list[str]]  # per conversation, per audio (windows joined)


def as_batch(conversations: Any) -> list[Conversation]:
    """One conversation (a list of message dicts) or a non-empty list of them -> a list of conversations."""
    if isinstance(conversations, (list, tuple)) and conversations and isinstance(conversations[0], dict):
        return [list(conversations)]
    if not isinstance(conversations, (list, tuple)) or not conversations:
        raise DeSTAError("give a conversation (list of messages) or a non-empty list of conversations")
    return [list(c) for c in conversations]


class _Cancelled:
    """A transformers StoppingCriteria: stop every row once any of ``events`` is set (client gone,
    consumer left, stop string streamed)."""

    def __init__(self, *events: threading.Event) -> None:
        self.events = events

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        done = any(e.is_set() for e in self.events)
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


class Generator:
    """Answers conversations with one :class:`~desta.model.desta.DeSTAModel` (holds its ASR cache)."""

    def __init__(self, model: DeSTAModel, asr_cache_size: int = 512) -> None:
        self.model = model
        self.asr = WindowTranscriber(model, cache_size=asr_cache_size)

    # ------------------------------------------------------------------ preparation
    @torch.no_grad()
    def prepare(self, conversations: Sequence[Conversation]) -> PreparedBatch:
        """Load audio, split 30 s windows, transcribe where needed and pad (left) a batch."""
        out = self.model.processor(list(conversations), transcribe=self.asr, padding_side="left")
        device = self.model.device
        mel = out.mel
        if isinstance(mel, torch.Tensor):
            mel = mel.to(device)
        elif mel is not None:
            mel = [m.to(device) for m in mel]
        inputs = {k: v.to(device) for k, v in out.inputs.items()}
        return PreparedBatch(inputs=inputs, mel=mel, transcripts=out.transcripts)

    def audio_features(self, mel: torch.Tensor | list[torch.Tensor] | None) -> torch.Tensor | None:
        """Connector output (W, Q, H) for prepared log-mel (per-window tensors are encoded one by one)."""
        if mel is None:
            return None
        if isinstance(mel, list):
            return torch.cat([self.model.encode_audio(m) for m in mel]) if mel else None
        return self.model.encode_audio(mel)

    def embeds(self, prepared: PreparedBatch) -> torch.Tensor:
        inp = prepared.inputs
        return self.model.embed(inp["input_ids"], inp["audio_mask"], self.audio_features(prepared.mel))

    # ------------------------------------------------------------------ decoding
    def eos_ids(self) -> list[int]:
        model = self.model
        eos = {model.processor.eot_id}
        gen_eos = model.llm_model.generation_config.eos_token_id
        if gen_eos is not None:
            eos.update([gen_eos] if isinstance(gen_eos, int) else gen_eos)
        if model.tokenizer.eos_token_id is not None:
            eos.add(model.tokenizer.eos_token_id)
        return sorted(eos)

    def generate_kwargs(self, options: GenerationOptions, *cancel: threading.Event | None) -> dict[str, Any]:
        """Keyword arguments for the LLM's ``generate`` that realise ``options``."""
        model = self.model
        kw: dict[str, Any] = dict(
            max_new_tokens=options.max_new_tokens,
            do_sample=options.do_sample,
            eos_token_id=self.eos_ids(),
            pad_token_id=model.processor.pad_id,
            repetition_penalty=options.repetition_penalty,
        )
        if options.do_sample:
            kw.update(temperature=options.temperature, top_p=options.top_p, top_k=options.top_k or None)
        else:
            kw.update(temperature=None, top_p=None, top_k=None)
        if options.stop:
            kw.update(stop_strings=list(options.stop), tokenizer=model.tokenizer)
        events = [e for e in cancel if e is not None]
        if events:
            from transformers import StoppingCriteriaList

            kw["stopping_criteria"] = StoppingCriteriaList([_Cancelled(*events)])
        return kw

    @torch.no_grad()
    def generate(
        self,
        conversations: Sequence[Conversation] | Conversation,
        options: GenerationOptions | None = None,
        *,
        cancel: threading.Event | None = None,
        **overrides: Any,
    ) -> list[GenerationResult]:
        """Answer one conversation or a batch of them; batch results equal one-by-one results.

        ``overrides`` replace fields of ``options``; ``cancel`` stops decoding at the next token once set
        (finish reason "cancelled").
        """
        options = replace(options or GenerationOptions(), **overrides)
        prepared = self.prepare(as_batch(conversations))
        embeds = self.embeds(prepared)
        inp = prepared.inputs
        if options.seed is not None:
            torch.manual_seed(options.seed)
        kwargs = self.generate_kwargs(options, cancel)
        out = self.model.llm_model.generate(inputs_embeds=embeds, attention_mask=inp["attention_mask"], **kwargs)
        eos = set(kwargs["eos_token_id"])
        prompt_lens = inp["attention_mask"].sum(-1).tolist()
        results = [
            self._result(row, int(prompt_lens[r]), prepared.transcripts[r], options, eos, cancel)
            for r, row in enumerate(out.tolist())
        ]
        return results

    def _result(self, row: list[int], prompt_len: int, transcripts: list[str], options: GenerationOptions,
                eos: set[int], cancel: threading.Event | None) -> GenerationResult:  # fmt: skip
        ids, reason = [], "length"
        for t in row:
            if t in eos:
                reason = "stop"
                break
            ids.append(t)
        text = self.model.tokenizer.decode(ids, skip_special_tokens=True)
        for s in options.stop:
            if s in text:
                text, reason = text[: text.index(s)], "stop"
        if cancel is not None and cancel.is_set() and reason == "length":
            reason = "cancelled"
        return GenerationResult(
            text=text.strip(),
            token_ids=ids,
            transcripts=transcripts,
            finish_reason=reason,
            prompt_tokens=prompt_len,
            completion_tokens=len(ids),
        )

    def stream(
        self,
        conversation: Conversation,
        options: GenerationOptions | None = None,
        *,
        cancel: threading.Event | None = None,
        **overrides: Any,
    ) -> Generator_[str, None, GenerationResult]:
        """Yield text pieces of the answer as they are generated (one conversation).

        The pieces join to the text ``generate`` would return (cut before a ``stop`` string). The
        iterator's return value (``StopIteration.value``) is the whole :class:`GenerationResult`
        with token counts. Closing the iterator early (or setting ``cancel``) stops decoding at the
        next token.
        """
        from transformers import TextIteratorStreamer

        options = replace(options or GenerationOptions(), **overrides)
        with torch.no_grad():
            prepared = self.prepare(as_batch(conversation)[:1])
            embeds = self.embeds(prepared)
        streamer = TextIteratorStreamer(self.model.tokenizer, skip_prompt=False, skip_special_tokens=True, timeout=600)
        stop = threading.Event()  # ours: the consumer left or a stop string was streamed (cancel stays the caller's)
        errors: list[BaseException] = []
        outputs: list[torch.Tensor] = []
        mask = prepared.inputs["attention_mask"]
        kwargs = self.generate_kwargs(options, stop, cancel)

        def run() -> None:
            try:
                with torch.no_grad():
                    if options.seed is not None:
                        torch.manual_seed(options.seed)
                    outputs.append(self.model.llm_model.generate(inputs_embeds=embeds, attention_mask=mask, streamer=streamer, **kwargs))
            except BaseException as err:  # surfaced to the consumer below
                errors.append(err)
                streamer.end()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        # hold back enough text that a stop string split across pieces is still cut, as generate cuts it
        hold = max((len(x) for x in options.stop), default=1) - 1
        pending, sent, stopped, drained = "", False, False, False
        try:
            for piece in streamer:
                if stopped or not piece:
                    continue
                pending += piece
                cuts = [pending.find(x) for x in options.stop if x in pending]
                if cuts:
                    pending, stopped = pending[: min(cuts)], True
                    stop.set()
                ready = pending if stopped else pending[: max(0, len(pending) - hold)]
                ready = ready.rstrip()  # trailing space waits: it may end the answer (generate strips it)
                pending = pending[len(ready) :]
                if not sent:
                    ready = ready.lstrip()
                if ready:
                    yield ready
                    sent = True
            tail = pending.rstrip() if sent else pending.strip()
            if tail and not stopped:
                yield tail
            drained = True
        finally:
            if not drained:  # the consumer left early: stop decoding instead of finishing the answer
                stop.set()
            thread.join()
        if errors:
            raise errors[0]
        prompt_len = int(mask.sum())
        row = outputs[0][0].tolist() if outputs else []
        return self._result(row, prompt_len, prepared.transcripts[0], options, set(kwargs["eos_token_id"]), cancel)

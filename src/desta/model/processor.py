"""Turn DeSTA conversations into token ids, audio slots and labels.

Layout of one audio clip inside the rendered chat (reference §5, §18.6), per 30 s window ``w``::

    <start_audio> [PH x Q][transcript_1 tokens] [PH x Q][transcript_2 tokens] ... <end_audio>

``PH`` is a placeholder id whose embedding the model overwrites with the connector's Q vectors. The
transcript tokens are ordinary ids: embedding them in the LLM equals the official model writing
``embed_tokens(transcript)`` into extra placeholder slots. A clip of at most 30 s gives exactly the
official layout; longer clips add one block per window instead of silently dropping audio past 30 s.
The count is known before the model runs: ``Q + len(transcript tokens)`` per window.

Messages are dicts ``{"role", "content", "audios": [{"audio": ..., "text": ...}]}`` with one
``<|AUDIO|>`` in ``content`` per entry of ``audios``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from desta.errors import ConfigError, DeSTAError

IGNORE_INDEX = -100

# Placeholder candidates, in order: Llama-3.x (official), then tokens that chat LLMs reserve and never
# emit in chat. The placeholder only needs a valid embedding row; slots are tracked by a mask.
_PLACEHOLDER_CANDIDATES = (
    "<|reserved_special_token_87|>",
    "<|video_pad|>",  # Qwen2/3 (the official debug config uses it)
    "<|audio_pad|>",
    "<empty_output>",  # SmolLM2 / StarCoder-style vocabularies
    "<unk>",
)


class SampleTooLong(DeSTAError):
    """A training sample does not fit ``max_length`` with its audio and at least one target token."""


@dataclass(frozen=True)
class Encoded:
    """One conversation as ids. ``audio_mask`` marks placeholder slots; ``labels`` is None for prompts."""

    input_ids: list[int]
    audio_mask: list[bool]
    labels: list[int] | None
    n_windows: int  # audio windows, in the order their slots appear


def choose_placeholder(tokenizer, requested: str | None = None) -> str:
    vocab = tokenizer.get_vocab()
    for cand in ((requested,) if requested else _PLACEHOLDER_CANDIDATES):
        if cand in vocab:
            return cand
    if requested:
        raise ConfigError(f"placeholder token {requested!r} is not in the LLM vocabulary")
    raise ConfigError(
        "no placeholder token found in the LLM vocabulary; set placeholder_token to a special token the "
        f"model never emits (tried {_PLACEHOLDER_CANDIDATES})"
    )


class DeSTAProcessor:
    """Chat rendering, ``<|AUDIO|>`` expansion, label masking and padding for one backbone LLM."""

    def __init__(
        self,
        tokenizer,
        n_queries: int = 64,
        placeholder_token: str | None = None,
        audio_locator: str = "<|AUDIO|>",
        start_audio: str = "<start_audio>",
        end_audio: str = "<end_audio>",
        max_transcript_tokens: int | None = None,
        system_prompt: str | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.system_prompt = system_prompt
        self.n_queries = n_queries
        self.audio_locator = audio_locator
        self.start_audio, self.end_audio = start_audio, end_audio
        self.max_transcript_tokens = max_transcript_tokens
        self.placeholder_token = choose_placeholder(tokenizer, placeholder_token)
        self.placeholder_id = tokenizer.convert_tokens_to_ids(self.placeholder_token)
        if tokenizer.pad_token_id is None:
            raise ConfigError("the tokenizer has no pad token; set tokenizer.pad_token (e.g. to its eos token)")
        self.pad_id = tokenizer.pad_token_id
        self.eot_id = tokenizer.convert_tokens_to_ids(tokenizer.eos_token)
        self._tagged = re.compile(re.escape(start_audio) + r"\s*" + re.escape(audio_locator) + r"\s*" + re.escape(end_audio))

    # ------------------------------------------------------------------ messages
    def normalize(self, messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Validate messages and strip literal audio tags (they are re-added around every locator)."""
        if not isinstance(messages, (list, tuple)) or not messages:
            raise DeSTAError("a conversation must be a non-empty list of {'role', 'content'} messages")
        out = []
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or "role" not in m or "content" not in m:
                raise DeSTAError(f"message {i} must be a dict with 'role' and 'content', got {m!r:.80}")
            if m["role"] not in ("system", "user", "assistant"):
                raise DeSTAError(f"message {i} has unknown role {m['role']!r}; use system, user or assistant")
            content = m["content"]
            if not isinstance(content, str):
                raise DeSTAError(f"message {i}: content must be a string, got {type(content).__name__}")
            audios = list(m.get("audios") or [])
            content = self._tagged.sub(self.audio_locator, content)
            n = content.count(self.audio_locator)
            if n == 0 and audios:  # convenience: audio given without a locator goes first
                content = self.audio_locator * len(audios) + "\n" + content
                n = len(audios)
            if n != len(audios):
                raise DeSTAError(
                    f"message {i} has {n} {self.audio_locator} locator(s) but {len(audios)} audio(s); "
                    "put one locator in the content for each entry of 'audios'"
                )
            out.append({"role": m["role"], "content": content, "audios": audios})
        if self.system_prompt and not any(m["role"] == "system" for m in out):
            out.insert(0, {"role": "system", "content": self.system_prompt, "audios": []})
        return out

    def render(self, messages: Sequence[dict[str, Any]], add_generation_prompt: bool = True) -> str:
        """The chat-templated prompt with ``<start_audio><|AUDIO|><end_audio>`` at each audio."""
        msgs = [{"role": m["role"], "content": m["content"]} for m in self.normalize(messages)]
        text = self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=add_generation_prompt)
        return text.replace(self.audio_locator, self.start_audio + self.audio_locator + self.end_audio)

    # ------------------------------------------------------------------ tokens
    def transcript_ids(self, transcript: str | None) -> list[int]:
        """Transcript tokens, standalone, no BOS; an empty transcript becomes " " (official no-speech)."""
        text = transcript if transcript and transcript.strip() else " "
        ids = self.tokenizer(text, add_special_tokens=False).input_ids
        if self.max_transcript_tokens is not None:
            ids = ids[: self.max_transcript_tokens]
        return ids

    def window_length(self, transcript: str | None) -> int:
        """Token positions one 30 s window takes: Q queries + its transcript tokens."""
        return self.n_queries + len(self.transcript_ids(transcript))

    def encode(
        self,
        messages: Sequence[dict[str, Any]],
        transcripts: Sequence[Sequence[str | None]],
        response: str | None = None,
        max_length: int | None = None,
    ) -> Encoded:
        """Ids, audio mask and (with ``response``) labels for one conversation.

        Args:
            transcripts: per audio (in order of appearance), one transcript per 30 s window; the
                window count of each audio is ``len(transcripts[i])``.
            response: training target; labels cover its tokens plus the end-of-turn token only.
            max_length: right-truncate (training's ``max_seq_length``). Raises :class:`SampleTooLong`
                if that would cut into audio or leave no target token.
        """
        text = self.render(messages, add_generation_prompt=True)
        pieces = text.split(self.audio_locator)
        if len(pieces) - 1 != len(transcripts):
            raise DeSTAError(f"{len(pieces) - 1} audio locators but transcripts for {len(transcripts)} audios")
        ids: list[int] = []
        mask: list[bool] = []
        n_windows = 0
        for i, piece in enumerate(pieces):
            if piece:
                t = self.tokenizer(piece, add_special_tokens=False).input_ids
                ids += t
                mask += [False] * len(t)
            if i < len(transcripts):
                if not transcripts[i]:
                    raise DeSTAError(f"audio {i} has no windows")
                for tr in transcripts[i]:
                    ids += [self.placeholder_id] * self.n_queries
                    mask += [True] * self.n_queries
                    t = self.transcript_ids(tr)
                    ids += t
                    mask += [False] * len(t)
                    n_windows += 1
        labels = None
        if response is not None:
            target = self.tokenizer(response, add_special_tokens=False).input_ids + [self.eot_id]
            labels = [IGNORE_INDEX] * len(ids) + target
            ids = ids + target
            mask = mask + [False] * len(target)
        if max_length is not None and len(ids) > max_length:
            if any(mask[max_length:]):
                raise SampleTooLong(f"{len(ids)} tokens with audio past max_length={max_length}")
            ids, mask = ids[:max_length], mask[:max_length]
            if labels is not None:
                labels = labels[:max_length]
        if labels is not None and all(x == IGNORE_INDEX for x in labels):
            raise SampleTooLong(f"no target token left within max_length={max_length}")
        return Encoded(ids, mask, labels, n_windows)

    # ------------------------------------------------------------------ batches
    def collate(self, batch: Sequence[Encoded], padding_side: str = "left") -> dict[str, torch.Tensor]:
        """Pad to the longest: input_ids, attention_mask, audio_mask, position_ids (and labels).

        Position ids count real tokens only, so a left-padded row sees the same positions as unpadded.
        """
        n = max(len(e.input_ids) for e in batch)
        out = {k: torch.zeros(len(batch), n, dtype=torch.long) for k in ("input_ids", "attention_mask", "position_ids")}
        out["input_ids"].fill_(self.pad_id)
        out["audio_mask"] = torch.zeros(len(batch), n, dtype=torch.bool)
        with_labels = batch[0].labels is not None
        if with_labels:
            out["labels"] = torch.full((len(batch), n), IGNORE_INDEX, dtype=torch.long)
        for r, e in enumerate(batch):
            m = len(e.input_ids)
            sl = slice(n - m, n) if padding_side == "left" else slice(0, m)
            out["input_ids"][r, sl] = torch.tensor(e.input_ids)
            out["attention_mask"][r, sl] = 1
            out["position_ids"][r, sl] = torch.arange(m)
            out["audio_mask"][r, sl] = torch.tensor(e.audio_mask)
            if with_labels:
                out["labels"][r, sl] = torch.tensor(e.labels)
        return out

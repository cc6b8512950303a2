"""The DeSTA processor: conversations with audio in, everything the model needs out.

One entry point, :meth:`DeSTAProcessor.__call__`, serves inference, training, serving and vLLM, so the
audio block layout is defined here and nowhere else. Per 30 s window ``w`` of each audio clip::

    <start_audio> [PH x Q][transcript_1 tokens] [PH x Q][transcript_2 tokens] ... <end_audio>

``PH`` is a placeholder id whose embedding the model overwrites with the connector's Q vectors. The
transcript tokens are ordinary ids: embedding them in the LLM equals the official model writing
``embed_tokens(transcript)`` into extra placeholder slots. A clip of at most 30 s gives exactly the
official layout; longer clips add one block per window instead of silently dropping audio past 30 s.
The count is known before the model runs: ``Q + len(transcript tokens)`` per window.

The layout is decided by three functions here, which everything else calls (vLLM's prompt and
placeholder text, the data pipeline's prompt format): :func:`audio_span` (the tags around one audio
in prompt text), :func:`audio_block` (the ids and slots that replace one locator) and
:func:`window_transcript` (the one empty-transcript rule: :data:`NO_SPEECH`).

Conversations are validated by :func:`desta.messages.parse_conversation` (one locator per audio).
Legend: B conversations, N tokens, W windows, M mel bins, T mel frames.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from desta.errors import ConfigError, DeSTAError
from desta.messages import AUDIO_LOCATOR, END_AUDIO, START_AUDIO, Message, parse_conversation

if TYPE_CHECKING:  # pragma: no cover
    import torch  # imported where tensors are made: the layout functions stay light for the data tools

# windows -> transcripts, for the windows that came without one (inference: Whisper ASR)
Transcribe = Callable[[list[np.ndarray]], list[str]]

IGNORE_INDEX = -100

#: The transcript of a window without speech, and of one without any transcript (official).
NO_SPEECH = " "

# Placeholder candidates, in order: Llama-3.x (official), then tokens that chat LLMs reserve and never
# emit in chat. The placeholder only needs a valid embedding row; slots are tracked by a mask.
_PLACEHOLDER_CANDIDATES = (
    "<|reserved_special_token_87|>",
    "<|video_pad|>",  # Qwen2/3 (the official debug config uses it)
    "<|audio_pad|>",
    "<empty_output>",  # SmolLM2 / StarCoder-style vocabularies
    "<unk>",
)


def window_transcript(text: str | None) -> str:
    """The one empty-transcript rule: a window's transcript, or :data:`NO_SPEECH` when it is None,
    empty or blank."""
    return text if text and text.strip() else NO_SPEECH


def audio_span(inner: str = AUDIO_LOCATOR, start_audio: str = START_AUDIO, end_audio: str = END_AUDIO) -> str:
    """One audio in prompt text, ``<start_audio>{inner}<end_audio>``: ``inner`` is the locator in a
    rendered prompt (and in vLLM's placeholder text), the seed description in a data-generation prompt."""
    return f"{start_audio}{inner}{end_audio}"


def audio_block(
    transcript_ids: Sequence[Sequence[int]], n_queries: int, placeholder_id: int
) -> tuple[list[int], list[bool]]:
    """The ids that replace one audio locator and which of them are audio slots: one
    ``[PH x Q][transcript]`` group per 30 s window, ``transcript_ids`` holding one id list per window."""
    if not transcript_ids:
        raise DeSTAError("an audio item needs at least one window")
    ids: list[int] = []
    mask: list[bool] = []
    for window in transcript_ids:
        ids += [placeholder_id] * n_queries
        mask += [True] * n_queries
        ids += window
        mask += [False] * len(window)
    return ids, mask


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


@dataclass
class ProcessorOutput:
    """What :meth:`DeSTAProcessor.__call__` returns for B conversations with W audio windows in all.

    ``inputs``: input_ids, attention_mask, position_ids, audio_mask (B, N) and, with responses,
    labels (B, N); None when called with ``padding_side=None``. ``mel``: (W, M, T) when windows are
    padded to 30 s, else a list of W tensors (1, M, T_w); None without audio or ``return_features``.
    ``windows``: the W waveforms (16 kHz) in slot order; ``audio_windows``: per conversation, the
    window count of each audio; ``transcripts``: per conversation, per audio (windows joined).
    """

    inputs: dict[str, torch.Tensor] | None
    encoded: list[Encoded]
    mel: torch.Tensor | list[torch.Tensor] | None
    windows: list[np.ndarray]
    audio_windows: list[list[int]]
    transcripts: list[list[str]]


def log_mel_windows(windows: Sequence[np.ndarray], n_mels: int, pad_to_30s: bool, device=None) -> torch.Tensor:
    """W windows of <= 30 s at 16 kHz -> log-mel (W, M, T).

    ``pad_to_30s``: every window padded to 3000 frames (official). Otherwise the batch is padded to its
    longest window only, rounded up to an even frame count, each window normalised on its own.
    """
    import torch

    from desta.audio import N_SAMPLES, log_mel_spectrogram

    if pad_to_30s:
        batch = np.zeros((len(windows), N_SAMPLES), dtype=np.float32)
        for i, w in enumerate(windows):
            batch[i, : min(w.size, N_SAMPLES)] = w[:N_SAMPLES]
        return log_mel_spectrogram(torch.from_numpy(batch).to(device), n_mels)
    longest = max(w.size for w in windows)
    n = min(N_SAMPLES, max(2 * 160, ((longest + 319) // 320) * 320))
    mels = [log_mel_spectrogram(torch.from_numpy(w[:n]).to(device), n_mels, pad_to=n) for w in windows]
    return torch.stack(mels)[..., : n // 160]


def given_transcripts(n_windows: int, text: str | None) -> list[str | None]:
    """Per window of one clip: a given transcript belongs to the first window ("" for the rest); None
    everywhere when none was given (those windows are transcribed)."""
    if text is None:
        return [None] * n_windows
    return [text] + [""] * (n_windows - 1)


def window_texts(given: Sequence[str | None], windows: Sequence[np.ndarray], transcribe: Transcribe | None) -> list[str]:
    """Per window: its given transcript under the one empty-transcript rule; the windows given none
    (``None``) get ``transcribe`` of them, in one call (:data:`NO_SPEECH` without ``transcribe``)."""
    texts = [window_transcript(t) for t in given]
    need = [i for i, t in enumerate(given) if t is None]
    if need and transcribe is not None:
        for i, t in zip(need, transcribe([windows[i] for i in need]), strict=True):
            texts[i] = t
    return texts


def window_features(windows: Sequence[np.ndarray], n_mels: int, pad_to_30s: bool) -> torch.Tensor | list[torch.Tensor]:
    """The model's log-mel of W windows: (W, M, 3000) when padded to 30 s (official), else one
    (1, M, T_w) per window at its own length, so batching never changes a clip's features."""
    if pad_to_30s:
        return log_mel_windows(windows, n_mels, True)
    return [log_mel_windows([w], n_mels, False) for w in windows]


class DeSTAProcessor:
    """Chat rendering, audio loading and windowing, log-mel, locator expansion, labels and padding."""

    def __init__(
        self,
        tokenizer,
        n_queries: int = 64,
        placeholder_token: str | None = None,
        audio_locator: str = AUDIO_LOCATOR,
        start_audio: str = START_AUDIO,
        end_audio: str = END_AUDIO,
        max_transcript_tokens: int | None = None,
        system_prompt: str | None = None,
        n_mels: int = 80,
        pad_audio_to_30s: bool = True,
    ) -> None:
        if audio_locator != AUDIO_LOCATOR:
            raise ConfigError(f"audio_locator must be {AUDIO_LOCATOR!r} (desta.messages.AUDIO_LOCATOR), got {audio_locator!r}")
        self.tokenizer = tokenizer
        self.n_mels, self.pad_audio_to_30s = n_mels, pad_audio_to_30s
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

    # ------------------------------------------------------------------ messages
    def parse(self, messages: Sequence[dict[str, Any] | Message]) -> list[Message]:
        """Validate a conversation (typed messages; the default system prompt inserted if none)."""
        return parse_conversation(
            messages, system_prompt=self.system_prompt, start_audio=self.start_audio, end_audio=self.end_audio
        )

    def normalize(self, messages: Sequence[dict[str, Any] | Message]) -> list[dict[str, Any]]:
        """:meth:`parse` as plain dicts ``{"role", "content", "audios"}``."""
        return [m.to_dict() for m in self.parse(messages)]

    def render(self, messages: Sequence[dict[str, Any]], add_generation_prompt: bool = True) -> str:
        """The chat-templated prompt with ``<start_audio><|AUDIO|><end_audio>`` at each audio."""
        msgs = [{"role": m.role, "content": m.content} for m in self.parse(messages)]
        text = self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=add_generation_prompt)
        return text.replace(self.audio_locator, audio_span(self.audio_locator, self.start_audio, self.end_audio))

    # ------------------------------------------------------------------ tokens
    def transcript_ids(self, transcript: str | None) -> list[int]:
        """Transcript tokens, standalone, no BOS; an empty transcript becomes :data:`NO_SPEECH` (official)."""
        ids = self.tokenizer(window_transcript(transcript), add_special_tokens=False).input_ids
        if self.max_transcript_tokens is not None:
            ids = ids[: self.max_transcript_tokens]
        return ids

    def audio_block_ids(self, transcripts: Sequence[str | None]) -> tuple[list[int], list[bool]]:
        """:func:`audio_block` for one audio whose windows have these transcripts."""
        return audio_block([self.transcript_ids(t) for t in transcripts], self.n_queries, self.placeholder_id)

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
                block, slots = self.audio_block_ids(transcripts[i])
                ids += block
                mask += slots
                n_windows += len(transcripts[i])
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

    # ------------------------------------------------------------------ the entry point
    def __call__(
        self,
        conversations: Sequence[Sequence[dict[str, Any] | Message]],
        *,
        responses: Sequence[str] | None = None,
        transcribe: Transcribe | None = None,
        max_length: int | None = None,
        padding_side: str | None = "left",
        return_features: bool = True,
    ) -> ProcessorOutput:
        """Conversations (audio as paths, bytes, arrays) -> ids, masks, labels, windows and log-mel.

        Each audio is loaded (16 kHz mono), split into 30 s windows, and given one transcript per
        window: the entry's ``text`` for its first window (later windows then get ""), else
        ``transcribe(windows)`` for all windows without one in a single call, else " " (the official
        no-speech transcript, also what training uses for rows without a transcript).

        Args:
            responses: training targets, one per conversation (labels are returned with them).
            max_length: right-truncate each conversation (raises :class:`SampleTooLong`, see :meth:`encode`).
            padding_side: "left" (generation), "right" (training), or None to skip collation.
            return_features: compute log-mel (``mel``); training computes it later on its device.
        """
        from desta.audio import load_audio, split_windows

        if responses is not None and len(responses) != len(conversations):
            raise DeSTAError(f"{len(responses)} responses for {len(conversations)} conversations")
        parsed = [self.parse(c) for c in conversations]
        windows: list[np.ndarray] = []
        given: list[str | None] = []  # per window
        owners: list[tuple[int, int]] = []  # per window: (conversation, audio index)
        audio_windows: list[list[int]] = []
        for ci, conv in enumerate(parsed):
            counts: list[int] = []
            for m in conv:
                for entry in m.audios:
                    parts = split_windows(load_audio(entry.audio, sr=entry.sampling_rate))
                    windows += parts
                    given += given_transcripts(len(parts), entry.text)
                    owners += [(ci, len(counts))] * len(parts)
                    counts.append(len(parts))
            audio_windows.append(counts)
        texts = window_texts(given, windows, transcribe)
        per_window: list[list[list[str]]] = [[[] for _ in counts] for counts in audio_windows]
        for (ci, ai), t in zip(owners, texts):
            per_window[ci][ai].append(t)
        encoded = [
            self.encode(c, per_window[i], None if responses is None else responses[i], max_length)
            for i, c in enumerate(parsed)
        ]
        mel: torch.Tensor | list[torch.Tensor] | None = None
        if windows and return_features:
            mel = window_features(windows, self.n_mels, self.pad_audio_to_30s)
        joined = [[" ".join(x for x in a if x.strip()).strip() for a in c] for c in per_window]
        inputs = self.collate(encoded, padding_side) if padding_side is not None else None
        return ProcessorOutput(inputs, encoded, mel, windows, audio_windows, joined)

    # ------------------------------------------------------------------ batches
    def collate(self, batch: Sequence[Encoded], padding_side: str = "left") -> dict[str, torch.Tensor]:
        """Pad to the longest: input_ids, attention_mask, audio_mask, position_ids (and labels).

        Position ids count real tokens only, so a left-padded row sees the same positions as unpadded.
        """
        import torch

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

"""Conversations with audio: the locator, typed messages, and the builders every front end uses.

A DeSTA conversation is a list of messages ``{"role", "content", "audios"}``. ``content`` holds one
:data:`AUDIO_LOCATOR` per entry of ``audios``, at the place the audio belongs; the processor expands
each locator into ``<start_audio> [queries][transcript] ... <end_audio>`` (see
:mod:`desta.model.processor`). Plain dicts are accepted everywhere; :func:`parse_conversation`
validates them once and returns frozen :class:`Message` values, so later stages never re-check.

An audio entry is ``{"audio": A, "text": T, "sampling_rate": SR}`` where ``A`` is a path, bytes, a
numpy array (16 kHz unless ``sampling_rate`` says otherwise) or ``(array, sample_rate)``; ``T`` is a
transcript to use instead of Whisper ASR (``None``: transcribe).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from desta.errors import DeSTAError

AUDIO_LOCATOR = "<|AUDIO|>"
START_AUDIO = "<start_audio>"
END_AUDIO = "<end_audio>"
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class AudioEntry:
    """One audio of a message: the audio itself, an optional transcript and its sample rate."""

    audio: Any  # path | os.PathLike | bytes | np.ndarray | (np.ndarray, sample_rate)
    text: str | None = None
    sampling_rate: int | None = None

    @classmethod
    def parse(cls, value: Any, where: str) -> AudioEntry:
        if isinstance(value, AudioEntry):
            return value
        if isinstance(value, Mapping):
            if "audio" not in value:
                raise DeSTAError(f"{where}: an audio entry needs an 'audio' key, got keys {sorted(value)}")
            text = value.get("text")
            if text is not None and not isinstance(text, str):
                raise DeSTAError(f"{where}: 'text' must be a string or None, got {type(text).__name__}")
            return cls(value["audio"], text, value.get("sampling_rate"))
        raise DeSTAError(
            f"{where}: each audio must be a dict with an 'audio' key (and optional 'text'), got {value!r:.80}"
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"audio": self.audio, "text": self.text}
        if self.sampling_rate is not None:
            out["sampling_rate"] = self.sampling_rate
        return out


@dataclass(frozen=True)
class Message:
    """One turn; ``content`` holds exactly ``len(audios)`` locators."""

    role: str
    content: str
    audios: tuple[AudioEntry, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "content": self.content, "audios": [a.to_dict() for a in self.audios]}


def _tag_pattern(start_audio: str, end_audio: str) -> re.Pattern[str]:
    return re.compile(
        re.escape(start_audio) + r"\s*" + re.escape(AUDIO_LOCATOR) + r"\s*" + re.escape(end_audio)
    )


def parse_conversation(
    messages: Sequence[Mapping[str, Any] | Message],
    *,
    system_prompt: str | None = None,
    start_audio: str = START_AUDIO,
    end_audio: str = END_AUDIO,
) -> list[Message]:
    """Validate a conversation and return typed messages.

    Literal ``<start_audio><|AUDIO|><end_audio>`` tags are reduced to the locator (the processor adds
    the tags around every locator); audio given without a locator goes first in the content; a
    ``system_prompt`` is inserted when the conversation has no system message.
    """
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        raise DeSTAError("a conversation must be a non-empty list of {'role', 'content'} messages")
    tags = _tag_pattern(start_audio, end_audio)
    out: list[Message] = []
    for i, m in enumerate(messages):
        if isinstance(m, Message):
            role, content, raw_audios = m.role, m.content, list(m.audios)
        elif isinstance(m, Mapping) and "role" in m and "content" in m:
            role, content, raw_audios = m["role"], m["content"], list(m.get("audios") or [])
        else:
            raise DeSTAError(f"message {i} must be a dict with 'role' and 'content', got {m!r:.80}")
        if role not in ROLES:
            raise DeSTAError(f"message {i} has unknown role {role!r}; use system, user or assistant")
        if not isinstance(content, str):
            raise DeSTAError(f"message {i}: content must be a string, got {type(content).__name__}")
        audios = tuple(AudioEntry.parse(a, f"message {i}, audio {k}") for k, a in enumerate(raw_audios))
        content = tags.sub(AUDIO_LOCATOR, content)
        n = content.count(AUDIO_LOCATOR)
        if n == 0 and audios:  # convenience: audio given without a locator goes first
            content = AUDIO_LOCATOR * len(audios) + "\n" + content
            n = len(audios)
        if n != len(audios):
            raise DeSTAError(
                f"message {i} has {n} {AUDIO_LOCATOR} locator(s) but {len(audios)} audio(s); "
                "put one locator in the content for each entry of 'audios'"
            )
        out.append(Message(role, content, audios))
    if system_prompt and not any(m.role == "system" for m in out):
        out.insert(0, Message("system", system_prompt))
    return out


def audio_entries(audios: Sequence[Any], transcript: str | None = None) -> list[dict[str, Any]]:
    """Audio entries for ``audios`` (paths, arrays, bytes); ``transcript`` applies to a single audio."""
    if transcript is not None and len(audios) != 1:
        raise DeSTAError(f"a transcript can be given for exactly one audio, not {len(audios)}")
    return [{"audio": os.fspath(a) if isinstance(a, os.PathLike) else a, "text": transcript} for a in audios]


def user_message(
    text: str, audios: Sequence[Any] = (), *, separator: str = "\n", instruction_first: bool = False
) -> dict[str, Any]:
    """A user turn: one locator per audio, then ``separator``, then ``text`` (or text first).

    ``audios`` may hold audio entries (dicts) or bare audio values (paths, arrays, bytes).
    """
    entries = [a if isinstance(a, Mapping) else {"audio": a, "text": None} for a in audios]
    if not entries:
        return {"role": "user", "content": text, "audios": []}
    locators = AUDIO_LOCATOR * len(entries)
    content = f"{text}{separator}{locators}" if instruction_first else f"{locators}{separator}{text}"
    return {"role": "user", "content": content, "audios": entries}


def conversation(
    question: str,
    audios: Sequence[Any] = (),
    *,
    system: str | None = None,
    transcript: str | None = None,
    separator: str = "\n",
) -> list[dict[str, Any]]:
    """``[system?] + user(audios, question)``: the one-question conversation of ``desta ask`` and the demos.

    Without ``system`` the model's own default system prompt applies (the processor inserts it).
    """
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append(user_message(question, audio_entries(audios, transcript), separator=separator))
    return messages


def wav_bytes(source: Any, sampling_rate: int | None = None) -> bytes:
    """Any audio source (path, bytes, array) -> 16 kHz mono 16-bit WAV bytes (raises AudioError)."""
    import io

    import soundfile as sf

    from desta.audio import SAMPLE_RATE, decode_audio_bytes, load_audio

    wave = decode_audio_bytes(source) if isinstance(source, bytes) else load_audio(source, sr=sampling_rate)
    buf = io.BytesIO()
    sf.write(buf, wave, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def to_openai(messages: Sequence[Mapping[str, Any] | Message]) -> list[dict[str, Any]]:
    """desta messages -> OpenAI chat messages, an ``input_audio`` part (base64 WAV) where each locator stood.

    The inverse of the server's request parsing (:mod:`desta.serve.messages`); given transcripts
    (``text``) are not part of the OpenAI format and are dropped.
    """
    import base64

    out: list[dict[str, Any]] = []
    for m in parse_conversation(messages):
        if not m.audios:
            out.append({"role": m.role, "content": m.content})
            continue
        parts: list[dict[str, Any]] = []
        pieces = m.content.split(AUDIO_LOCATOR)
        for i, text in enumerate(pieces):
            if text.strip():
                parts.append({"type": "text", "text": text.strip()})
            if i < len(m.audios):
                entry = m.audios[i]
                data = base64.b64encode(wav_bytes(entry.audio, entry.sampling_rate)).decode("ascii")
                parts.append({"type": "input_audio", "input_audio": {"data": data, "format": "wav"}})
        out.append({"role": m.role, "content": parts})
    return out

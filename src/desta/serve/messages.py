"""OpenAI chat messages -> desta conversations.

Each audio content part becomes one ``<|AUDIO|>`` locator at its position in the message text plus
one entry in the message's ``audios`` list, decoded to float32 mono 16 kHz. Text parts and locators
are joined with newlines, so ``[audio, text]`` becomes ``"<|AUDIO|>\\nWhat is said?"`` (the official
README layout). Every failure is a :class:`RequestError` naming the offending part.
"""

from __future__ import annotations

import base64
import binascii
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from desta.errors import AudioError
from desta.messages import AUDIO_LOCATOR
from desta.serve.errors import RequestError
from desta.serve.schemas import AudioURLPart, ChatMessage, InputAudioPart, TextPart
from desta.serve.settings import ServeSettings

SAMPLE_RATE = 16000
AUDIO_FORMATS = frozenset({"wav", "wave", "mp3", "flac", "ogg", "oga", "opus", "webm", "m4a", "aac", "aiff"})


@dataclass(frozen=True)
class ConvertedRequest:
    """A desta conversation ready for ``Engine.generate`` and what it holds."""

    conversation: list[dict]
    n_audios: int
    audio_seconds: float


def _b64decode(data: str, param: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(
            "audio data is not valid base64; encode the file bytes with standard base64",
            code="invalid_base64",
            param=param,
        ) from None


def _data_url_bytes(url: str, param: str) -> bytes:
    header, sep, payload = url.partition(",")
    if not sep:
        raise RequestError(
            "malformed data: URL (no comma before the payload)", code="invalid_audio_url", param=param
        )
    media = header[len("data:") :]
    if not media.endswith(";base64"):
        raise RequestError(
            "data: URLs must be base64 encoded (data:audio/wav;base64,...)",
            code="invalid_audio_url",
            param=param,
        )
    mime = media[: -len(";base64")].split(";")[0].strip().lower()
    if mime and not (
        mime.startswith("audio/") or mime in ("application/octet-stream", "video/webm", "video/ogg")
    ):
        raise RequestError(
            f"data: URL media type {mime!r} is not audio", code="invalid_audio_url", param=param
        )
    return _b64decode(payload, param)


def _local_path(url: str, settings: ServeSettings, param: str) -> Path:
    """Resolve a path or file:// URL, refusing anything outside ``settings.allowed_audio_dir``."""
    if url.startswith("file://"):
        parsed = urllib.parse.urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise RequestError("file:// URLs must name a local file", code="invalid_audio_url", param=param)
        raw = urllib.parse.unquote(parsed.path)
    else:
        raw = url
    if settings.allowed_audio_dir is None:
        raise RequestError(
            "local audio paths are disabled on this server; send the audio as base64 (input_audio or a data: URL)",
            status=403,
            code="local_files_disabled",
            param=param,
        )
    if "\x00" in raw:
        raise RequestError("audio path contains a NUL byte", code="invalid_audio_url", param=param)
    folder = settings.allowed_audio_dir
    candidate = Path(raw) if os.path.isabs(raw) else folder / raw
    try:
        resolved = candidate.resolve()  # follows symlinks, so a link pointing outside is refused too
        inside = resolved.is_relative_to(folder)
        exists = inside and resolved.is_file()
    except (OSError, RuntimeError) as err:  # name too long, symlink loop: the message names no folder
        raise _unusable_path(raw, err, param) from None
    if not inside:
        raise RequestError(
            f"audio path {raw!r} is outside the allowed audio folder",
            status=403,
            code="path_not_allowed",
            param=param,
        )
    if not exists:
        raise RequestError(
            f"audio file {raw!r} does not exist in the allowed folder", code="file_not_found", param=param
        )
    return resolved


def _unusable_path(raw: str, err: BaseException, param: str) -> RequestError:
    reason = err.strerror if isinstance(err, OSError) and err.strerror else "it is a symlink loop"
    shown = raw if len(raw) <= 80 else raw[:77] + "..."
    return RequestError(
        f"audio path {shown!r} cannot be used: {reason}", code="invalid_audio_url", param=param
    )


def _decode(data: bytes, name: str, max_seconds: float, param: str) -> np.ndarray:
    from desta.audio import decode_audio_bytes

    if max_seconds <= 0:
        raise RequestError(
            "the request already holds the most audio allowed", code="audio_too_long", param=param
        )
    try:
        return decode_audio_bytes(data, name=name, max_seconds=max_seconds)
    except AudioError as err:
        code = "audio_too_long" if "over the cap" in str(err) else "invalid_audio"
        raise RequestError(f"could not use audio: {err}", code=code, param=param) from None
    except Exception as err:  # noqa: BLE001 - a decoder failing on hostile bytes is the input's fault
        raise RequestError(
            f"could not decode audio ({type(err).__name__}); send a valid audio file",
            code="invalid_audio",
            param=param,
        ) from None


def _load_part(
    part: InputAudioPart | AudioURLPart, settings: ServeSettings, max_seconds: float, param: str
) -> np.ndarray:
    if isinstance(part, InputAudioPart):
        fmt = part.input_audio.format.lower().lstrip(".")
        if fmt not in AUDIO_FORMATS:
            raise RequestError(
                f"unsupported input_audio format {part.input_audio.format!r}; use one of {sorted(AUDIO_FORMATS)}",
                code="unsupported_audio_format",
                param=f"{param}.input_audio.format",
            )
        data = _b64decode(part.input_audio.data, f"{param}.input_audio.data")
        return _decode(data, f"input_audio ({fmt})", max_seconds, param)
    url = part.audio_url.url.strip()
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "data":
        return _decode(_data_url_bytes(url, f"{param}.audio_url.url"), "data: URL", max_seconds, param)
    if scheme in ("http", "https", "ftp", "s3", "gs"):
        raise RequestError(
            "this server does not fetch remote URLs; send the audio as base64 (input_audio or a data: URL)",
            code="remote_url_refused",
            param=f"{param}.audio_url.url",
        )
    path = _local_path(url, settings, f"{param}.audio_url.url")
    try:
        if path.stat().st_size > settings.max_body_bytes:
            raise RequestError(
                f"audio file {path.name} is larger than the body limit", code="audio_too_long", param=param
            )
        data = path.read_bytes()
    except OSError as err:  # e.g. permission denied
        raise _unusable_path(url, err, f"{param}.audio_url.url") from None
    return _decode(data, path.name, max_seconds, param)


def to_conversation(messages: list[ChatMessage], settings: ServeSettings) -> ConvertedRequest:
    """Convert OpenAI messages to one desta conversation; decodes audio (call it off the event loop)."""
    if len(messages) > settings.max_message_count:
        raise RequestError(
            f"too many messages ({len(messages)} > {settings.max_message_count})", param="messages"
        )
    conversation: list[dict] = []
    n_audios = 0
    seconds = 0.0
    for i, message in enumerate(messages):
        role = "system" if message.role == "developer" else message.role
        content = message.content
        pieces: list[str] = []
        audios: list[dict] = []
        if content is None:
            content = ""
        if isinstance(content, str):
            content = [TextPart(type="text", text=content)]
        for j, part in enumerate(content):
            param = f"messages[{i}].content[{j}]"
            if isinstance(part, TextPart):
                if AUDIO_LOCATOR in part.text:
                    raise RequestError(
                        f"text must not contain the reserved audio locator {AUDIO_LOCATOR}; "
                        "send audio as an input_audio or audio_url part",
                        code="reserved_token",
                        param=param,
                    )
                pieces.append(part.text)
                continue
            if role != "user":
                raise RequestError(
                    f"audio is only accepted in user messages, not {message.role}", param=param
                )
            n_audios += 1
            if n_audios > settings.max_audios_per_request:
                raise RequestError(
                    f"too many audio parts (more than {settings.max_audios_per_request} per request)",
                    code="too_many_audios",
                    param=param,
                )
            wave = _load_part(part, settings, settings.max_audio_seconds - seconds, param)
            seconds += wave.size / SAMPLE_RATE
            pieces.append(AUDIO_LOCATOR)
            audios.append({"audio": wave, "text": None})
        entry: dict = {"role": role, "content": "\n".join(p for p in pieces if p != "")}
        if audios:
            entry["audios"] = audios
        conversation.append(entry)
    if conversation[-1]["role"] == "assistant":
        raise RequestError(
            "the last message must not be an assistant message", param=f"messages[{len(messages) - 1}]"
        )
    return ConvertedRequest(conversation=conversation, n_audios=n_audios, audio_seconds=seconds)

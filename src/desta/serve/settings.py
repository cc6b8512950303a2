"""Server settings: one frozen dataclass, one source of defaults (the CLI flags mirror these fields)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from desta.errors import ConfigError

MiB = 1024 * 1024


@dataclass(frozen=True)
class ServeSettings:
    """Options of the OpenAI-compatible server. Every limit answers a clear 4xx when exceeded."""

    host: str = "127.0.0.1"
    """Interface to bind; loopback by default so nothing is exposed by accident."""
    port: int = 8000
    """TCP port (0: let the OS pick a free one)."""
    api_key: str | None = None
    """When set, every /v1 request must send ``Authorization: Bearer <api_key>``."""
    allowed_audio_dir: Path | None = None
    """``audio_url`` may name local files only inside this folder (None: local files are refused)."""
    served_model_name: str | None = None
    """Name shown by /v1/models and echoed in responses (None: the engine's ``name``)."""
    max_body_bytes: int = 32 * MiB
    """Largest request body accepted (413 beyond); base64 audio is about 4/3 of the file size."""
    max_audio_seconds: float = 600.0
    """Total decoded audio per request, over all clips (400 beyond)."""
    max_audios_per_request: int = 8
    """Most audio parts in one request (400 beyond)."""
    max_new_tokens_limit: int = 2048
    """Largest ``max_tokens`` a client may ask for (400 beyond)."""
    default_max_tokens: int = 512
    """``max_new_tokens`` when the request gives no ``max_tokens``."""
    max_batch_size: int = 8
    """Most requests merged into one ``generate`` call."""
    batch_window_ms: float = 5.0
    """How long the batcher waits for more requests after the first one of a batch arrives."""
    batch_max_wait_ms: float = 100.0
    """While admitted requests are still being decoded, or the batch is smaller than the previous one,
    wait up to this long for more requests to join."""
    max_queue: int = 256
    """Requests waiting for the model beyond this are answered 429 instead of growing memory."""
    request_timeout_s: float = 300.0
    """A request that waits or runs longer than this is answered 504 (streams are cut)."""
    max_message_count: int = 256
    """Most messages in one conversation."""
    max_prompt_tokens: int = 2048
    """Most tokens of client text (all messages, audio not counted) in one request (400 beyond)."""
    max_stop_sequences: int = 4
    """Most ``stop`` strings in one request (400 beyond)."""
    max_stop_chars: int = 128
    """Longest ``stop`` string (400 beyond): stop matching costs memory that grows with its length."""
    max_json_depth: int = 32
    """Deepest nesting of arrays and objects in a request body (400 beyond; requests need about 6)."""
    max_number_chars: int = 32
    """Longest number literal in a request body (400 beyond): no 5,000-digit integers."""
    body_timeout_s: float = 30.0
    """A request body that has not fully arrived this long after its headers is answered 408, so a
    slow or stalled upload holds no queue slot and no connection for long."""
    header_timeout_s: float = 10.0
    """A connection that has not sent complete request headers this long after it opened (or after
    its previous response) is closed: half-open and slowloris connections cannot pile up."""
    keep_alive_timeout_s: float = 5.0
    """An idle keep-alive connection is closed after this long."""
    idle_exit_s: float = 0.0
    """The server stops itself after this long without a request (0: never); ``desta ask --keep-alive``."""
    max_connections: int = 1024
    """Open connections beyond this are answered 503 by uvicorn before any body is read."""
    extra_model_names: tuple[str, ...] = field(default_factory=tuple)
    """Other names that requests may use in ``model`` (aliases)."""

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be >= 1, got {self.max_batch_size}")
        if self.max_queue < 1:
            raise ConfigError(f"max_queue must be >= 1, got {self.max_queue}")
        if self.batch_window_ms < 0:
            raise ConfigError(f"batch_window_ms must be >= 0, got {self.batch_window_ms}")
        if self.max_body_bytes < 1024:
            raise ConfigError(f"max_body_bytes must be >= 1024, got {self.max_body_bytes}")
        for name in (
            "max_prompt_tokens",
            "max_stop_chars",
            "max_json_depth",
            "max_number_chars",
            "max_connections",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_stop_sequences < 0:
            raise ConfigError(f"max_stop_sequences must be >= 0, got {self.max_stop_sequences}")
        for name in ("body_timeout_s", "header_timeout_s", "keep_alive_timeout_s", "request_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0 seconds, got {getattr(self, name)}")
        if self.default_max_tokens > self.max_new_tokens_limit:
            raise ConfigError(
                f"default_max_tokens ({self.default_max_tokens}) exceeds max_new_tokens_limit "
                f"({self.max_new_tokens_limit})"
            )
        if self.allowed_audio_dir is not None:
            folder = Path(self.allowed_audio_dir).expanduser()
            if not folder.is_dir():
                raise ConfigError(
                    f"allowed_audio_dir {folder} is not an existing folder; create it or drop the option"
                )
            object.__setattr__(self, "allowed_audio_dir", folder.resolve())

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

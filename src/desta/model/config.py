"""`DeSTAConfig`: everything needed to rebuild a DeSTA model, saved as ``config.json`` beside the adapter.

Field names follow the official ``DeSTA25Config`` where one exists (``llm_model_id``,
``encoder_model_id``, ``prompt_size``, ``qformer_num_hidden_layers``, ``target_layer_ids``,
``audio_locator``, ``placeholder_token``), so an official ``config.json`` maps onto it directly
(see :mod:`desta.model.convert`).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desta.errors import CheckpointError, ConfigError

# Official tap points by encoder depth (0-based, reference §2.1), extended to every Whisper size.
# Rule for depths without an official entry: four evenly spaced taps ending at the last layer.
OFFICIAL_TAPS: dict[int, tuple[int, ...]] = {
    32: (7, 15, 23, 31),  # large, large-v2, large-v3, large-v3-turbo (turbo keeps 32 encoder layers)
    24: (5, 11, 17, 23),  # medium, medium.en
    12: (2, 5, 8, 11),  # small, small.en
    4: (0, 1, 2, 3),  # tiny, tiny.en
}


def default_target_layers(num_encoder_layers: int, n_taps: int = 4) -> tuple[int, ...]:
    """Tap indices for an encoder of this depth: the official ones, or evenly spaced ending at the last.

    >>> default_target_layers(6)   # whisper-base
    (1, 2, 4, 5)
    """
    if num_encoder_layers < 1:
        raise ConfigError("an encoder needs at least one layer")
    if n_taps == 4 and num_encoder_layers in OFFICIAL_TAPS:
        return OFFICIAL_TAPS[num_encoder_layers]
    n = min(n_taps, num_encoder_layers)
    taps = sorted({int(num_encoder_layers * k / n + 0.5) - 1 for k in range(1, n + 1)})
    return tuple(taps)


@dataclass(frozen=True)
class DeSTAConfig:
    """Architecture and prompt settings of a DeSTA model.

    Backbone dimensions (``encoder_dim``, ``encoder_heads``, ``encoder_layers``, ``llm_dim``) are filled
    from the loaded backbones; they are stored so that the adapter can be built and checked without them.
    """

    encoder_model_id: str = "openai/whisper-large-v3"
    llm_model_id: str = "DeSTA-ntu/Llama-3.1-8B-Instruct"
    prompt_size: int = 64  # learned queries per tap, i.e. audio vectors per 30 s window
    qformer_num_hidden_layers: int = 6  # the release uses 6 (the official code default is 2)
    qformer_intermediate_size: int = 3072  # BertConfig default, kept by the official model
    qformer_dropout: float = 0.1  # hidden and attention dropout (active only in training)
    target_layer_ids: tuple[int, ...] | None = None  # None: default_target_layers(encoder_layers)
    audio_locator: str = "<|AUDIO|>"
    placeholder_token: str | None = None  # None: chosen from the LLM vocabulary at build time
    start_audio: str = "<start_audio>"
    end_audio: str = "<end_audio>"
    system_prompt: str | None = None  # put first when a conversation has no system message (None: none)
    pad_audio_to_30s: bool = True  # official behaviour; False encodes the real clip length (faster)
    max_transcript_tokens: int | None = None  # None at inference; 100 in training (official)
    use_asr: bool = True  # transcribe with the Whisper decoder when no transcript is given
    use_vad: bool = True  # skip ASR (transcript " ") when Silero VAD finds no speech
    asr_max_new_tokens: int = 128
    use_lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    lora_target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj")
    encoder_dim: int | None = None
    encoder_heads: int | None = None
    encoder_layers: int | None = None
    llm_dim: int | None = None
    name: str = "desta"
    untrained: bool = False  # True while the connector holds random initial weights
    info: dict[str, Any] = field(default_factory=dict)  # free-form provenance (training run, data, ...)

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, check_value(getattr(self, f.name), hints[f.name], f.name))
        for name in ("prompt_size", "qformer_num_hidden_layers", "qformer_intermediate_size", "lora_r"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("qformer_dropout", "lora_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.max_transcript_tokens is not None and self.max_transcript_tokens < 0:
            raise ConfigError(f"max_transcript_tokens must be >= 0 or null, got {self.max_transcript_tokens}")
        if self.target_layer_ids is not None:
            if not self.target_layer_ids:
                raise ConfigError("target_layer_ids must not be empty")
            if self.encoder_layers is not None and max(self.target_layer_ids) >= self.encoder_layers:
                raise ConfigError(
                    f"target_layer_ids {self.target_layer_ids} exceed the encoder's {self.encoder_layers} layers"
                )

    @property
    def taps(self) -> tuple[int, ...]:
        if self.target_layer_ids is not None:
            return self.target_layer_ids
        if self.encoder_layers is None:
            raise ConfigError("encoder_layers is unknown: load the encoder or set target_layer_ids")
        return default_target_layers(self.encoder_layers)

    def replace(self, **changes: Any) -> DeSTAConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["target_layer_ids"] = list(self.taps) if (self.target_layer_ids or self.encoder_layers) else None
        d["lora_target_modules"] = list(self.lora_target_modules)
        return {"model_type": "desta", **d}

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str | Path | None = None) -> DeSTAConfig:
        """Build from a ``config.json`` mapping; every error names ``source`` (the file) and the key."""
        where = f"{source}: " if source is not None else ""
        if not isinstance(d, dict):
            raise ConfigError(f"{where}a DeSTA config must be a JSON object, got {type(d).__name__}")
        # keys of the Hugging Face folder convention (desta.model.hub), not DeSTAConfig fields
        d = {k: v for k, v in d.items() if k not in ("model_type", "architectures", "transformers_version", "auto_map")}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"{where}unknown DeSTAConfig fields {unknown}; known fields: {sorted(names)}")
        try:
            return cls(**d)
        except ConfigError as err:
            raise ConfigError(f"{where}{err}") from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> DeSTAConfig:
        return cls.from_dict(read_config_json(path), source=path)


def check_value(value: Any, annotation: Any, key: str) -> Any:
    """``value`` checked against a dataclass field's type, strictly (no string-to-number guessing).

    Lists become tuples where the field is a tuple (JSON has no tuples); everything else must already
    have the declared type, so ``"false"`` is not a bool and ``"64"`` is not an int. Raises
    :class:`ConfigError` naming ``key``.
    """
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return check_value(value, arg, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(check_value(v, args[0], key) for v in value)
        if len(args) != len(value):
            raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
        return tuple(check_value(v, a, key) for v, a in zip(value, args))
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__} {value!r}")
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {type(value).__name__} {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {type(value).__name__} {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {type(value).__name__} {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {type(value).__name__} {value!r}")
    return value


def read_config_json(path: str | Path) -> dict[str, Any]:
    """The JSON object in ``path``; unreadable files and invalid JSON raise :class:`ConfigError` naming it."""
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: cannot read config ({err})") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{path}: cannot read config (expected a JSON object, got {type(d).__name__})")
    return d


def read_weights(path: str | Path) -> dict[str, Any]:
    """Tensors of a ``.safetensors`` file; missing, truncated or corrupt files raise
    :class:`CheckpointError` naming the file (safetensors' own errors do not)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (OSError, SafetensorError, ValueError, RuntimeError) as err:
        raise CheckpointError(
            f"{path}: cannot read weights ({err}); the file is missing, truncated or corrupt"
        ) from None

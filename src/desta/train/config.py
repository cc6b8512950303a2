"""Typed training configuration: dataclasses with defaults from the official recipe, YAML overrides on
top, then ``key=value`` command-line overrides. Unknown keys and wrong types fail before any work.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from desta.errors import ConfigError
from desta.model.config import DeSTAConfig, check_value

DISTRIBUTED = ("auto", "fsdp", "none")


def _at_least(obj: Any, low: int, *names: str) -> None:
    for name in names:
        if getattr(obj, name) < low:
            raise ConfigError(f"{name} must be >= {low}, got {getattr(obj, name)}")


@dataclass(frozen=True)
class DataConfig:
    train: str = ""  # JSONL from `desta data generate` (or DeSTA-AQA5M rows)
    validation: str = ""  # optional JSONL; a few rows are answered and logged at each validation
    data_root: str = ""  # audio paths in the JSONL are relative to this folder
    max_seq_length: int = 300  # official: context + response, right-truncated
    max_transcript_tokens: int = 100  # official training cap
    batch_size: int = 12  # per device (official: 12 x 8 GPUs = 96)
    num_workers: int = 4
    length_bucketing: bool = True  # batch rows of similar length together (less padding)
    cache_encoder_outputs: bool = False  # keep frozen Whisper taps in memory across epochs (small data)
    max_rows: int = 0  # 0 = all

    def __post_init__(self) -> None:
        _at_least(self, 1, "max_seq_length", "batch_size")
        _at_least(self, 0, "max_transcript_tokens", "num_workers", "max_rows")


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 0.01  # official: on all trained parameters
    eps: float = 1e-8
    warmup_steps: int = 5000
    epochs: int = 5
    max_steps: int = -1  # > 0 caps the run (the schedule then spans max_steps)
    grad_clip: float = 1.0
    grad_accum: int = 1

    def __post_init__(self) -> None:
        _at_least(self, 1, "epochs", "grad_accum")
        _at_least(self, 0, "warmup_steps")
        if self.lr <= 0 or self.eps <= 0 or self.grad_clip <= 0:
            raise ConfigError(
                f"lr, eps and grad_clip must be > 0, got {self.lr}, {self.eps}, {self.grad_clip}"
            )
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"betas must be in [0, 1), got {self.betas}")


@dataclass(frozen=True)
class DistillConfig:
    """KL to the frozen LLM's own distribution on the text prompt (seed description instead of
    audio), as Ultravox does. ``alpha`` weights it against cross entropy; 0 turns it off."""

    alpha: float = 0.0
    temperature: float = 1.0


@dataclass(frozen=True)
class RunConfig:
    out_dir: str = "runs/desta"
    # a trained DeSTA model (packaged name such as desta-tiny, folder or hub id) whose adapter weights
    # start this run instead of a fresh connector (fine-tuning); its architecture must equal `model`'s
    init_from: str = ""
    seed: int = 42
    device: str = "auto"  # auto: cuda if available, else cpu
    # auto: bf16 on GPU, fp32 on CPU; fast: bf16 also on CPUs that compute it natively; fp32; bf16
    precision: str = "auto"
    distributed: str = "auto"  # auto: DDP under torchrun; "fsdp" shards the LLM; "none"
    log_every: int = 10
    save_every: int = 1000  # steps; a checkpoint is also written at the end
    validate_every: int = 0  # steps; 0 = only at the end
    validation_samples: int = 4
    tensorboard: bool = True
    wandb: bool = False
    wandb_project: str = "desta"
    threads: int = 0  # torch CPU threads; 0 leaves torch's default
    progress: bool = True

    def __post_init__(self) -> None:
        from desta.model.precision import PRECISIONS

        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.distributed not in DISTRIBUTED:
            raise ConfigError(f"distributed must be one of {DISTRIBUTED}, got {self.distributed!r}")
        _at_least(self, 1, "log_every", "save_every")
        _at_least(self, 0, "seed", "validate_every", "validation_samples", "threads")


@dataclass(frozen=True)
class TrainConfig:
    model: DeSTAConfig = field(default_factory=DeSTAConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["model"] = self.model.to_dict()
        d["model"].pop("model_type", None)
        return d


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check one recipe value against its field type; YAML reads ``1e-4`` (no dot) as a string, so a
    number written that way is accepted where a float is expected."""
    if annotation is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return check_value(value, annotation, key)


def _merge(obj: Any, overrides: dict[str, Any], prefix: str = "") -> Any:
    if not dataclasses.is_dataclass(obj):
        raise ConfigError(f"{prefix.rstrip('.')}: cannot set sub-keys on a plain value")
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    changes = {}
    for k, v in overrides.items():
        key = prefix + k
        if k not in names:
            raise ConfigError(f"unknown config key {key!r}; valid keys here: {', '.join(sorted(names))}")
        current = getattr(obj, k)
        if dataclasses.is_dataclass(current):
            if not isinstance(v, dict):
                raise ConfigError(f"{key}: expected a mapping of sub-keys, got {v!r}")
            changes[k] = _merge(current, v, key + ".")
        else:
            changes[k] = _coerce(v, hints[k], key)
    try:
        return dataclasses.replace(obj, **changes)
    except (TypeError, ValueError) as err:  # a range check of __post_init__ names the field
        raise ConfigError(f"{prefix}{err}") from None


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["optim.lr=3e-4", "data.batch_size=8"]`` -> nested dict (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. optim.lr=3e-4)")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw else ""
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def load_config(recipe: str | Path | None = None, overrides: list[str] | dict | None = None) -> TrainConfig:
    """Defaults <- recipe YAML <- overrides; validated before returning."""
    cfg = TrainConfig()
    if recipe is not None:
        path = Path(recipe)
        if not path.exists():
            raise ConfigError(f"recipe {path} not found")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: invalid YAML ({err})") from None
        if not isinstance(data, dict):
            raise ConfigError(
                f"{path}: a recipe must be a mapping of sections (model, data, optim, run, ...)"
            )
        cfg = _merge(cfg, data)
    if overrides:
        cfg = _merge(cfg, parse_overrides(overrides) if isinstance(overrides, list) else overrides)
    return cfg

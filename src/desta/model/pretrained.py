"""Building, reading and writing DeSTA models, for any model class (the class comes in as an argument).

:class:`desta.model.desta.DeSTAModel`'s Hugging Face methods (``from_pretrained``, ``save_pretrained``,
``push_to_hub``) call this module, and :mod:`desta.model.load` / :mod:`desta.model.hub` bind it to
``DeSTAModel`` for the public functions (``load_model``, ``build_model``, ``register_auto_classes``).
It names the model class only under ``TYPE_CHECKING``: the network never imports its loader back.

A saved folder holds everything a user or a hub page expects beside the trained weights::

    config.json              DeSTAConfig + "architectures": ["DeSTAModel"], "model_type": "desta"
    model.safetensors        the trained adapter (connector, LoRA) only; backbones are named in config
    generation_config.json   the LLM's decoding defaults
    tokenizer files          the LLM tokenizer with its chat template
    preprocessor_config.json the Whisper log-mel settings
    README.md                a model card (kept if one exists)
    configuration_desta.py   named by config.json's "auto_map": transformers' AutoConfig / AutoModel
    modeling_desta.py        load the folder with trust_remote_code=True without `import desta` first
"""

from __future__ import annotations

import json
import os
import tempfile
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from desta.errors import CheckpointError, ConfigError
from desta.model.backbones import load_llm, load_whisper
from desta.model.config import DeSTAConfig, read_config_json, read_weights
from desta.model.convert import (
    config_from_official,
    is_official_config,
    load_adapter_strict,
    official_state_dict,
)

if TYPE_CHECKING:  # pragma: no cover
    from desta.model.desta import DeSTAModel

ADAPTER_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
# one key only: safetensors writes metadata in hash order, so two keys made the same weights differ in bytes
ADAPTER_METADATA = {"format": "pt"}
DEFAULT_MODEL = "desta-tiny"
# desta-tiny is defined once, by the model section of the packaged recipe (read as a file, not imported)
TINY_RECIPE = ("recipes", "tiny", "desta-tiny.yaml")
ARCHITECTURE = "DeSTAModel"
# keys transformers writes or reads in config.json that are not DeSTAConfig fields
HF_CONFIG_KEYS = ("architectures", "transformers_version", "auto_map", "torch_dtype", "dtype")


def tiny_config() -> DeSTAConfig:
    """desta-tiny's architecture with an untrained adapter (what ``load_model("untrained")`` builds):
    the ``model`` section of the packaged ``desta/recipes/tiny/desta-tiny.yaml``."""
    import yaml

    recipe = resources.files("desta").joinpath(*TINY_RECIPE)
    section = (yaml.safe_load(recipe.read_text(encoding="utf-8")) or {}).get("model") or {}
    return DeSTAConfig.from_dict(section, source=str(recipe)).replace(untrained=True)


def packaged_model_dir(name: str = DEFAULT_MODEL) -> Path:
    return Path(str(resources.files("desta") / "assets" / name))


def build(
    model_class: type[DeSTAModel],
    config: DeSTAConfig,
    device: str | torch.device = "cpu",
    llm_dtype: torch.dtype | None = None,
    seed: int | None = 0,
    verbose: bool = False,
    wrap_lora: bool = True,
) -> DeSTAModel:
    """Load both backbones and attach a freshly initialised connector (marked ``untrained``).

    ``wrap_lora=False`` leaves the LLM without peft's LoRA layers (for :func:`desta.model.lora.fold_lora`).
    """
    register(model_class)  # transformers is loaded now anyway: let AutoConfig/AutoModel know desta folders
    device = torch.device(device)
    if llm_dtype is None:
        llm_dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    whisper = load_whisper(config.encoder_model_id, dtype=torch.float32, verbose=verbose)
    llm, tokenizer = load_llm(config.llm_model_id, dtype=llm_dtype, verbose=verbose)
    if seed is not None:
        torch.manual_seed(seed)
    model = model_class(config, whisper, llm, tokenizer)
    if config.use_lora and wrap_lora:
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


def load(model_class: type[DeSTAModel], name, device, llm_dtype, merge_lora: bool, verbose: bool, config_overrides: dict) -> DeSTAModel:
    name = DEFAULT_MODEL if name is None else name
    if str(name) == "untrained":  # desta-tiny's architecture with a random adapter (for trying things out)
        return build(model_class, tiny_config().replace(**config_overrides), device=device, llm_dtype=llm_dtype, verbose=verbose)
    config, state = read_adapter(name)
    if config_overrides:
        config = config.replace(**config_overrides)
    # for answers, the LoRA update is added into the plain LLM weights here, as peft's merge would (no peft import)
    fold = config.use_lora and merge_lora
    model = build(model_class, config, device=device, llm_dtype=llm_dtype, seed=None, verbose=verbose, wrap_lora=not fold)
    if not fold:
        load_adapter_strict(model, state)
        return model.eval()
    from desta.model import lora

    if lora.can_fold(model):
        updates, rest = lora.split_lora(model, official_state_dict(state))
        load_adapter_strict(model, rest)
        lora.fold_lora(model, updates)
    else:  # a target that is not a plain nn.Linear: peft wraps and merges it
        lora.apply_lora(model)
        load_adapter_strict(model, state)
        lora.merge_lora(model)
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


#: ``config.json``'s ``auto_map`` of a saved folder and the two files it names, written beside it: with
#: them ``AutoConfig``/``AutoModel.from_pretrained(folder, trust_remote_code=True)`` work without
#: ``import desta`` first (offline: the files are in the folder; they import the installed desta).
AUTO_MAP = {"AutoConfig": "configuration_desta.DeSTAHFConfig", "AutoModel": "modeling_desta.DeSTAModel"}
REMOTE_CODE_FILES = {
    "configuration_desta.py": '''"""transformers' AutoConfig for this desta model folder (``trust_remote_code=True``): the installed
desta package registers its classes (desta must be installed). See desta's README, "Python API"."""

from desta.model.desta import DeSTAModel
from desta.model.hub import register_auto_classes

register_auto_classes()
DeSTAHFConfig = DeSTAModel.config_class
''',
    "modeling_desta.py": '''"""transformers' AutoModel for this desta model folder (``trust_remote_code=True``): the installed
desta package's DeSTAModel (desta must be installed). See desta's README, "Python API"."""

from desta.model.desta import DeSTAModel
from desta.model.hub import register_auto_classes

register_auto_classes()
__all__ = ["DeSTAModel"]
''',
}


def write_auto_map(out: Path) -> None:
    """Add :data:`AUTO_MAP` to ``out/config.json`` and write :data:`REMOTE_CODE_FILES` beside it."""
    for name, text in REMOTE_CODE_FILES.items():
        (out / name).write_text(text, encoding="utf-8")
    config = json.loads((out / CONFIG_FILE).read_text(encoding="utf-8"))
    config["auto_map"] = dict(AUTO_MAP)
    tmp = out / (CONFIG_FILE + ".tmp")
    tmp.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, out / CONFIG_FILE)


def save_pretrained(model: DeSTAModel, out_dir: str | os.PathLike, *, dtype=None, state=None) -> Path:
    """Write a Hugging Face-style model folder (see the module docstring); returns its path."""
    out = save_model(model, out_dir, dtype=dtype, state=state)
    write_auto_map(out)
    model.tokenizer.save_pretrained(out)
    model.llm_model.generation_config.save_pretrained(out)
    _feature_extractor(model).save_pretrained(out)
    card = out / "README.md"
    if not card.exists():
        card.write_text(model_card(model))
    return out


def _feature_extractor(model: DeSTAModel):
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(feature_size=model.perception.n_mels)


def model_card(model: DeSTAModel) -> str:
    c = model.config
    lora = f", LoRA r={c.lora_r} on {', '.join(c.lora_target_modules)}" if c.use_lora else ""
    trained = "random (untrained) connector weights" if c.untrained else "a trained connector"
    return f"""---
library_name: desta
tags: [audio, audio-language-model, desta]
---
# {c.name}

A DeSTA2.5-style audio language model ([DeSTA2.5-Audio, arXiv 2507.02768](https://arxiv.org/abs/2507.02768))
saved by the `desta` toolkit with {trained}{lora}.

- speech encoder: `{c.encoder_model_id}` (frozen; taps {list(c.taps)})
- language model: `{c.llm_model_id}` (frozen{", LoRA adapted" if c.use_lora else ""})
- connector: Q-Former, {c.qformer_num_hidden_layers} layers, {c.prompt_size} queries per 30 s window

```python
import desta
model = desta.load_model("{c.name}")   # or the folder path
print(model.generate([{{"role": "user", "content": "<|AUDIO|>\\nWhat is said?",
                        "audios": [{{"audio": "clip.wav"}}]}}])[0].text)
```

With transformers' Auto classes (the folder's `auto_map` names desta's classes; desta must be installed):

```python
from transformers import AutoModel
model = AutoModel.from_pretrained("{c.name}", trust_remote_code=True)   # the folder path or hub id
```
"""


def push_to_hub(model: DeSTAModel, repo_id: str, *, private: bool | None = None, token: str | None = None,
                commit_message: str = "Upload DeSTA model") -> str:  # fmt: skip
    """Save to a temporary folder and upload it as ``repo_id``; returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(model, tmp)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            info = api.upload_folder(folder_path=tmp, repo_id=repo_id, commit_message=commit_message)
        except Exception as err:  # hub errors come in many classes; all mean the same to the user
            raise CheckpointError(f"cannot push to the hub as {repo_id!r}: {err.__class__.__name__}: {err}") from None
    return str(getattr(info, "commit_url", info))


def register(model_class: type[DeSTAModel]) -> None:
    """Let ``AutoConfig`` / ``AutoModel`` load ``model_type: desta`` folders as ``model_class`` (idempotent)."""
    from transformers import AutoConfig, AutoModel, PretrainedConfig

    try:
        AutoConfig.for_model("desta")
        return  # already registered
    except ValueError:
        pass

    class DeSTAHFConfig(PretrainedConfig):
        """transformers' view of a DeSTA ``config.json`` (fields kept as attributes)."""

        model_type = "desta"

    AutoConfig.register("desta", DeSTAHFConfig, exist_ok=True)
    model_class.config_class = DeSTAHFConfig
    AutoModel.register(DeSTAHFConfig, model_class, exist_ok=True)


def from_pretrained(model_class: type[DeSTAModel], name: str | os.PathLike, *args: Any, **kwargs: Any) -> DeSTAModel:
    """``DeSTAModel.from_pretrained``: :func:`desta.model.load.load_model` for ``model_class``.

    Keyword arguments that ``AutoModel.from_pretrained`` adds for transformers models (``config``,
    ``revision``, ``cache_dir`` ...) are dropped; ``dtype``/``torch_dtype`` set the LLM dtype.
    """
    import dataclasses

    for key in ("dtype", "torch_dtype"):
        if key in kwargs and "llm_dtype" not in kwargs and not isinstance(kwargs[key], str):
            kwargs["llm_dtype"] = kwargs[key]
    keep = {"device", "llm_dtype", "merge_lora", "verbose"} | {f.name for f in dataclasses.fields(DeSTAConfig)}
    return load_with(model_class, name, *args, **{k: v for k, v in kwargs.items() if k in keep})


def load_with(
    model_class: type[DeSTAModel],
    name: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    llm_dtype: torch.dtype | None = None,
    merge_lora: bool = True,
    verbose: bool = False,
    **config_overrides: Any,
) -> DeSTAModel:
    """:func:`desta.model.load.load_model` (same arguments) building ``model_class``."""
    return load(model_class, name, device, llm_dtype, merge_lora, verbose, config_overrides)

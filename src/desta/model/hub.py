"""Hugging Face conventions for DeSTA models: ``save_pretrained`` folders, ``push_to_hub``, Auto classes.

A saved folder holds everything a user or a hub page expects beside the trained weights::

    config.json              DeSTAConfig + "architectures": ["DeSTAModel"], "model_type": "desta"
    model.safetensors        the trained adapter (connector, LoRA) only; backbones are named in config
    generation_config.json   the LLM's decoding defaults
    tokenizer files          the LLM tokenizer with its chat template
    preprocessor_config.json the Whisper log-mel settings
    README.md                a model card (kept if one exists)

``register_auto_classes`` makes ``transformers.AutoConfig`` / ``AutoModel`` resolve ``model_type:
desta`` folders; ``desta.model`` calls it on import (importing it means transformers is wanted).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from desta.model.desta import DeSTAModel

ARCHITECTURE = "DeSTAModel"
# keys transformers writes or reads in config.json that are not DeSTAConfig fields
HF_CONFIG_KEYS = ("architectures", "transformers_version", "auto_map", "torch_dtype", "dtype")


def save_pretrained(model: DeSTAModel, out_dir: str | os.PathLike, *, dtype=None, state=None) -> Path:
    """Write a Hugging Face-style model folder (see the module docstring); returns its path."""
    from desta.model.load import save_model

    out = save_model(model, out_dir, dtype=dtype, state=state)
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

A DeSTA2.5-style audio language model saved by [`desta`](https://github.com/) with {trained}{lora}.

- speech encoder: `{c.encoder_model_id}` (frozen; taps {list(c.taps)})
- language model: `{c.llm_model_id}` (frozen{", LoRA adapted" if c.use_lora else ""})
- connector: Q-Former, {c.qformer_num_hidden_layers} layers, {c.prompt_size} queries per 30 s window

```python
import desta
model = desta.load_model("{c.name}")   # or the folder path
print(model.generate([{{"role": "user", "content": "<|AUDIO|>\\nWhat is said?",
                        "audios": [{{"audio": "clip.wav"}}]}}])[0].text)
```
"""


def push_to_hub(model: DeSTAModel, repo_id: str, *, private: bool | None = None, token: str | None = None,
                commit_message: str = "Upload DeSTA model") -> str:  # fmt: skip
    """Save to a temporary folder and upload it as ``repo_id``; returns the commit URL."""
    from huggingface_hub import HfApi

    from desta.errors import CheckpointError

    api = HfApi(token=token)
    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(model, tmp)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            info = api.upload_folder(folder_path=tmp, repo_id=repo_id, commit_message=commit_message)
        except Exception as err:  # hub errors come in many classes; all mean the same to the user
            raise CheckpointError(f"cannot push to the hub as {repo_id!r}: {err.__class__.__name__}: {err}") from None
    return str(getattr(info, "commit_url", info))


def register_auto_classes() -> None:
    """Let ``AutoConfig`` / ``AutoModel`` load ``model_type: desta`` folders (idempotent)."""
    from transformers import AutoConfig, AutoModel, PretrainedConfig

    from desta.model.desta import DeSTAModel

    try:
        AutoConfig.for_model("desta")
        return  # already registered
    except ValueError:
        pass

    class DeSTAHFConfig(PretrainedConfig):
        """transformers' view of a DeSTA ``config.json`` (fields kept as attributes)."""

        model_type = "desta"

    AutoConfig.register("desta", DeSTAHFConfig, exist_ok=True)
    DeSTAModel.config_class = DeSTAHFConfig
    AutoModel.register(DeSTAHFConfig, DeSTAModel, exist_ok=True)


def from_pretrained(name: str | os.PathLike, *args: Any, **kwargs: Any) -> DeSTAModel:
    """``DeSTAModel.from_pretrained``: :func:`desta.model.load.load_model`.

    Keyword arguments that ``AutoModel.from_pretrained`` adds for transformers models (``config``,
    ``revision``, ``cache_dir`` ...) are dropped; ``dtype``/``torch_dtype`` set the LLM dtype.
    """
    import dataclasses

    from desta.model.config import DeSTAConfig
    from desta.model.load import load_model

    for key in ("dtype", "torch_dtype"):
        if key in kwargs and "llm_dtype" not in kwargs and not isinstance(kwargs[key], str):
            kwargs["llm_dtype"] = kwargs[key]
    keep = {"device", "llm_dtype", "merge_lora", "verbose"} | {f.name for f in dataclasses.fields(DeSTAConfig)}
    return load_model(name, *args, **{k: v for k, v in kwargs.items() if k in keep})

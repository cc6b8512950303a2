"""``desta export-vllm``: write a folder that vLLM (with desta's plugin) loads as it is.

Layout of the folder (no absolute paths: it can be copied or uploaded as one unit)::

    config.json               model_type "desta", architectures, text_config (the LLM's config),
                              encoder_model_id "whisper" (a subfolder), the desta prompt settings
    model.safetensors         language_model.* (LLM, LoRA merged into plain weight names) and
                              audio_tower.connector.* (the trained Q-Former); sharded with an index
                              when large
    whisper/                  the Whisper backbone (save_pretrained), read by the model and by the
                              prompt processor that transcribes audio
    tokenizer files           the LLM tokenizer plus one added special token, the audio locator
                              ``<|AUDIO|>``; a chat template that inserts desta's system prompt
    generation_config.json    the LLM's end-of-turn ids as desta's ``generate`` stops on them
    desta_export.json         provenance (source model, desta version)

Why merge LoRA: vLLM's Llama fuses q/k/v into one ``qkv_proj`` and loads plain ``q_proj.weight``
names; peft's ``base_layer`` / ``lora_A`` names would be rejected.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desta.errors import ConfigError, DeSTAError

ARCHITECTURE = "DeSTAForConditionalGeneration"
WHISPER_SUBDIR = "whisper"
EXPORT_INFO = "desta_export.json"
DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class ExportOptions:
    """dtype: weights as written (None: the LLM's loaded dtype); max_shard_size: per safetensors file."""

    dtype: str | None = None
    max_shard_size: str = "5GB"
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.dtype is not None and self.dtype not in DTYPES:
            raise ConfigError(f"export dtype must be one of {DTYPES}, got {self.dtype!r}")


def system_prompt_template(chat_template: str, system_prompt: str | None) -> str:
    """The LLM's chat template, preceded by desta's default system message when a chat has none.

    ``DeSTAProcessor.normalize`` inserts the same message before rendering, so vLLM's prompts equal
    desta's own.
    """
    if not system_prompt:
        return chat_template
    literal = json.dumps(system_prompt)  # a JSON string is a valid Jinja string literal
    head = (
        "{%- if not messages or messages[0]['role'] != 'system' -%}"
        "{%- set messages = [{'role': 'system', 'content': " + literal + "}] + messages -%}"
        "{%- endif -%}"
    )
    return head + chat_template


def _plain_llm(model) -> Any:
    """The LLM with every (merged) peft LoRA layer replaced by its base layer, so names are plain."""
    llm = model.llm_model
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:
        return llm
    wrapped = [(name, m) for name, m in llm.named_modules() if isinstance(m, LoraLayer)]
    for name, m in wrapped:
        if not m.merged:
            raise DeSTAError(f"LoRA layer {name} is not merged; load the model with merge_lora=True")
        parent_name, _, child = name.rpartition(".")
        setattr(llm.get_submodule(parent_name) if parent_name else llm, child, m.get_base_layer())
    return llm


def _unshared(state: dict[str, Any]) -> dict[str, Any]:
    """Drop every tensor that is the same memory as an earlier one (a tied ``lm_head`` after ``embed_tokens``).

    vLLM's Llama skips ``lm_head.weight`` when embeddings are tied and loads ``embed_tokens``; a saver
    that deduplicates on its own may keep the other name, leaving the embedding table unloaded.
    """
    seen: set[tuple[int, tuple[int, ...]]] = set()
    out = {}
    for k, v in state.items():
        key = (v.data_ptr(), tuple(v.shape))
        if key in seen:
            continue
        seen.add(key)
        out[k] = v
    return out


def _vllm_config(model, llm, dtype: str) -> dict[str, Any]:
    cfg = model.config
    text_config = llm.config.to_dict()
    text_config.pop("_name_or_path", None)  # the local folder it was loaded from: not portable
    text_config["dtype"] = dtype
    return {
        "architectures": [ARCHITECTURE],
        "model_type": "desta",
        "dtype": dtype,
        "encoder_model_id": WHISPER_SUBDIR,
        "llm_model_id": cfg.llm_model_id,
        "prompt_size": cfg.prompt_size,
        "qformer_num_hidden_layers": cfg.qformer_num_hidden_layers,
        "qformer_intermediate_size": cfg.qformer_intermediate_size,
        "target_layer_ids": list(cfg.taps),
        "audio_locator": cfg.audio_locator,
        "placeholder_token": cfg.placeholder_token,
        "start_audio": cfg.start_audio,
        "end_audio": cfg.end_audio,
        "system_prompt": cfg.system_prompt,
        "pad_audio_to_30s": cfg.pad_audio_to_30s,
        "max_transcript_tokens": cfg.max_transcript_tokens,
        "use_asr": cfg.use_asr,
        "use_vad": cfg.use_vad,
        "asr_max_new_tokens": cfg.asr_max_new_tokens,
        "asr_device": "auto",
        "text_config": text_config,
        "desta_name": cfg.name,
    }


def export_vllm(
    model_name: str | os.PathLike | None, out_dir: str | os.PathLike, options: ExportOptions | None = None
) -> Path:
    """Export a desta model (as ``desta ask --model`` takes it; None: desta-tiny) for vLLM into ``out_dir``.

    Returns the folder. Refuses a non-empty ``out_dir`` unless ``options.overwrite``; the folder is
    written under a temporary name and renamed at the end, so an interrupted export leaves nothing
    that vLLM would half-load.
    """
    import torch
    from huggingface_hub import save_torch_state_dict

    import desta
    from desta.model.lora import merge_lora

    options = options or ExportOptions()
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not options.overwrite:
            raise DeSTAError(f"{out} exists and is not empty; choose a new folder or pass --overwrite")
    dtype = getattr(torch, options.dtype) if options.dtype else None
    model = desta.load_model(model_name, llm_dtype=dtype)
    merge_lora(model)  # no-op when load_model already merged or the model has no LoRA
    llm = _plain_llm(model)
    dtype_name = str(next(llm.parameters()).dtype).removeprefix("torch.")
    if model.config.audio_locator in model.tokenizer.get_vocab():
        raise ConfigError(
            f"the LLM vocabulary already has {model.config.audio_locator!r}; pick another audio_locator"
        )

    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    state = _unshared({f"language_model.{k}": v for k, v in llm.state_dict().items()})
    for k, v in model.connector.state_dict().items():
        state[f"audio_tower.connector.{k}"] = v.to(dtype) if dtype is not None else v
    save_torch_state_dict(
        {k: v.detach().contiguous() for k, v in state.items()}, tmp, max_shard_size=options.max_shard_size
    )
    whisper = model.perception.whisper
    whisper.config.name_or_path = WHISPER_SUBDIR  # not the local cache folder it was loaded from
    whisper.save_pretrained(tmp / WHISPER_SUBDIR)
    (tmp / "config.json").write_text(json.dumps(_vllm_config(model, llm, dtype_name), indent=2) + "\n")

    tok = model.tokenizer
    from transformers import AddedToken

    tok.add_tokens(
        [AddedToken(model.config.audio_locator, special=True, normalized=False)], special_tokens=True
    )
    tok.chat_template = system_prompt_template(tok.chat_template, model.config.system_prompt)
    tok.save_pretrained(tmp)
    gen = {
        "eos_token_id": model.generator.eos_ids(),  # the ids desta's generate stops on
        "pad_token_id": model.processor.pad_id,
    }
    if tok.bos_token_id is not None:
        gen["bos_token_id"] = tok.bos_token_id
    (tmp / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
    info = {
        "source": str(model_name) if model_name is not None else "desta-tiny",
        "desta_version": desta.__version__,
    }
    (tmp / EXPORT_INFO).write_text(json.dumps(info, indent=2) + "\n")

    for f in tmp.rglob("*"):  # savers write through private temp files (mode 0600)
        if f.is_file():
            f.chmod(0o644)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out

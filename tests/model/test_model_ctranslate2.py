"""CTranslate2 v6 reader and the Whisper name map, on synthetic files written here with struct."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from desta.errors import CheckpointError
from desta.model.ctranslate2 import read_ctranslate2, whisper_config_from_ct2, whisper_state_dict_from_ct2
from helpers import tiny_whisper

_CODES = {
    np.dtype(np.float32): 0,
    np.dtype(np.int8): 1,
    np.dtype(np.int16): 2,
    np.dtype(np.int32): 3,
    np.dtype(np.float16): 4,
}


def _string(s: str) -> bytes:
    b = s.encode() + b"\0"
    return struct.pack("<H", len(b)) + b


def write_ct2(
    path, variables: dict, aliases: dict | None = None, spec="WhisperSpec", version=6, raw_codes=None
) -> None:
    """Write a CTranslate2 binary: version, spec, revision, variables, aliases (little-endian)."""
    out = (
        struct.pack("<I", version) + _string(spec) + struct.pack("<I", 3) + struct.pack("<I", len(variables))
    )
    for name, arr in variables.items():
        code = (raw_codes or {}).get(name)
        if code is None:
            arr = np.asarray(arr)
            code = _CODES[arr.dtype]
            payload = arr.tobytes()
        else:
            arr, payload = arr  # (shape holder, bytes)
        out += _string(name) + struct.pack("<B", arr.ndim) + struct.pack(f"<{arr.ndim}I", *arr.shape)
        out += struct.pack("<B", code) + struct.pack("<I", len(payload)) + payload
    aliases = aliases or {}
    out += struct.pack("<I", len(aliases))
    for alias, target in aliases.items():
        out += _string(alias) + _string(target)
    path.write_bytes(out)


def test_read_synthetic_file(tmp_path):
    rng = np.random.default_rng(0)
    w16 = rng.standard_normal((3, 4)).astype(np.float16)
    w32 = rng.standard_normal(5).astype(np.float32)
    variables = {
        "encoder/weight": w16,
        "encoder/bias": w32,
        "encoder/num_heads": np.array(6, dtype=np.int8),  # a scalar
        "decoder/ids": np.array([1, -2, 3], dtype=np.int32),
        "decoder/small": np.array([[7, 8]], dtype=np.int16),
    }
    path = tmp_path / "model.bin"
    write_ct2(path, variables, aliases={"decoder/weight": "encoder/weight"})
    spec, got = read_ctranslate2(path)
    assert spec == "WhisperSpec"
    assert set(got) == set(variables) | {"decoder/weight"}
    assert got["encoder/weight"].dtype == np.float16 and got["encoder/weight"].shape == (3, 4)
    np.testing.assert_array_equal(got["encoder/weight"], w16)
    np.testing.assert_array_equal(got["encoder/bias"], w32)
    assert got["encoder/num_heads"].shape == () and int(got["encoder/num_heads"]) == 6
    np.testing.assert_array_equal(got["decoder/ids"], [1, -2, 3])
    np.testing.assert_array_equal(got["decoder/small"], [[7, 8]])
    np.testing.assert_array_equal(got["decoder/weight"], w16)  # alias resolved


def test_read_bfloat16(tmp_path):
    values = np.array([1.0, -2.5, 0.15625], dtype=np.float32)
    bf16 = (values.view(np.uint32) >> 16).astype(np.uint16)
    path = tmp_path / "bf16.bin"
    write_ct2(path, {"w": (np.empty(3), bf16.tobytes())}, raw_codes={"w": 5})
    _, got = read_ctranslate2(path)
    assert got["w"].dtype == np.float32
    np.testing.assert_array_equal(got["w"], values)


def test_wrong_version_and_dtype(tmp_path):
    path = tmp_path / "v5.bin"
    write_ct2(path, {"a": np.zeros(2, np.float32)}, version=5)
    with pytest.raises(CheckpointError, match="version 5"):
        read_ctranslate2(path)
    path = tmp_path / "code.bin"
    write_ct2(path, {"a": (np.empty(2), b"\0" * 8)}, raw_codes={"a": 9})
    with pytest.raises(CheckpointError, match="unknown dtype code 9"):
        read_ctranslate2(path)


def _hf_to_ct2(model) -> dict[str, np.ndarray]:
    """Inverse of the documented mapping (offline-assets.md §8): HF Whisper -> CTranslate2 names, fp16."""
    sd = {k: v.detach().numpy().astype(np.float16) for k, v in model.state_dict().items()}
    cfg = model.config
    v: dict[str, np.ndarray] = {}

    def lin(src, dst, bias=True):
        v[f"{dst}/weight"] = sd[f"{src}.weight"]
        if bias:
            v[f"{dst}/bias"] = sd[f"{src}.bias"]

    def ln(src, dst):
        v[f"{dst}/gamma"], v[f"{dst}/beta"] = sd[f"{src}.weight"], sd[f"{src}.bias"]

    for side in ("encoder", "decoder"):
        m = f"model.{side}"
        if side == "encoder":
            lin(f"{m}.conv1", "encoder/conv1")
            lin(f"{m}.conv2", "encoder/conv2")
        else:
            v["decoder/embeddings/weight"] = sd[f"{m}.embed_tokens.weight"]
        v[f"{side}/position_encodings/encodings"] = sd[f"{m}.embed_positions.weight"]
        heads = cfg.encoder_attention_heads if side == "encoder" else cfg.decoder_attention_heads
        v[f"{side}/num_heads"] = np.array(heads, dtype=np.int8)
        n = cfg.encoder_layers if side == "encoder" else cfg.decoder_layers
        for i in range(n):
            s, d = f"{m}.layers.{i}", f"{side}/layer_{i}"
            a = f"{s}.self_attn"
            q, k, vv = sd[f"{a}.q_proj.weight"], sd[f"{a}.k_proj.weight"], sd[f"{a}.v_proj.weight"]
            v[f"{d}/self_attention/linear_0/weight"] = np.concatenate([q, k, vv])
            zeros = np.zeros_like(sd[f"{a}.q_proj.bias"])
            v[f"{d}/self_attention/linear_0/bias"] = np.concatenate(
                [sd[f"{a}.q_proj.bias"], zeros, sd[f"{a}.v_proj.bias"]]
            )
            lin(f"{a}.out_proj", f"{d}/self_attention/linear_1")
            ln(f"{s}.self_attn_layer_norm", f"{d}/self_attention/layer_norm")
            lin(f"{s}.fc1", f"{d}/ffn/linear_0")
            lin(f"{s}.fc2", f"{d}/ffn/linear_1")
            ln(f"{s}.final_layer_norm", f"{d}/ffn/layer_norm")
            if side == "decoder":
                c = f"{s}.encoder_attn"
                lin(f"{c}.q_proj", f"{d}/attention/linear_0")
                v[f"{d}/attention/linear_1/weight"] = np.concatenate(
                    [sd[f"{c}.k_proj.weight"], sd[f"{c}.v_proj.weight"]]
                )
                v[f"{d}/attention/linear_1/bias"] = np.concatenate(
                    [np.zeros_like(sd[f"{c}.v_proj.bias"]), sd[f"{c}.v_proj.bias"]]
                )
                lin(f"{c}.out_proj", f"{d}/attention/linear_2")
                ln(f"{s}.encoder_attn_layer_norm", f"{d}/attention/layer_norm")
        ln(f"{m}.layer_norm", f"{side}/layer_norm")
    return v


def test_whisper_round_trip_through_ct2(tmp_path):
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    src = tiny_whisper(d_model=32, encoder_layers=2, heads=2, seed=5, vocab_size=51864)
    path = tmp_path / "model.bin"
    write_ct2(path, _hf_to_ct2(src), aliases={"decoder/projection/weight": "decoder/embeddings/weight"})
    _, variables = read_ctranslate2(path)
    dims = whisper_config_from_ct2(variables)
    assert dims == {
        "vocab_size": 51864,
        "num_mel_bins": 80,
        "d_model": 32,
        "max_source_positions": 1500,
        "max_target_positions": 448,
        "encoder_layers": 2,
        "decoder_layers": 2,
        "encoder_attention_heads": 2,
        "decoder_attention_heads": 2,
        "encoder_ffn_dim": 64,
        "decoder_ffn_dim": 64,
    }
    rebuilt = WhisperForConditionalGeneration(WhisperConfig(**dims)).eval()
    rebuilt.load_state_dict(whisper_state_dict_from_ct2(variables), strict=True)
    ref = {k: v.half().float() for k, v in src.state_dict().items()}  # fp16 storage
    got = rebuilt.state_dict()
    assert set(got) == set(ref)
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], atol=0, rtol=0, msg=k)

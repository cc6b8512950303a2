"""Adapter checkpoints: save/load round trip, strict loading, official names and config.json."""

from __future__ import annotations

import json

import pytest
import torch

from desta.errors import CheckpointError, ConfigError
from desta.model.config import DeSTAConfig
from desta.model.convert import (
    config_from_official,
    is_official_config,
    load_adapter_strict,
    official_state_dict,
)
from desta.model.load import ADAPTER_FILE, CONFIG_FILE, save_model
from helpers import official_connector_shapes, sine, tiny_desta


@pytest.fixture(scope="module")
def model():
    return tiny_desta(seed=0)


def _tiny_official_shapes():
    # tiny config: 2 Q-Former layers, width 48, 4 taps, 8 queries, intermediate 64, LLM width 48
    return official_connector_shapes(num_layers=2, dim=48, llm_dim=48, n_taps=4, n_queries=8, intermediate=64)


def test_adapter_names_are_official(model):
    ours = {k: tuple(v.shape) for k, v in model.adapter_state_dict().items()}
    assert ours == _tiny_official_shapes()
    assert len(ours) == 4 + 1 + 2 * 26 + 4


def test_save_and_load_round_trip(tmp_path, model):
    from safetensors.torch import load_file

    out = save_model(model, tmp_path / "ckpt")
    assert sorted(p.name for p in out.iterdir()) == [CONFIG_FILE, ADAPTER_FILE]
    state = load_file(str(out / ADAPTER_FILE))
    assert set(state) == set(model.adapter_state_dict())
    cfg = DeSTAConfig.load(out / CONFIG_FILE)
    assert cfg == model.config
    assert json.loads((out / CONFIG_FILE).read_text())["model_type"] == "desta"

    other = tiny_desta(seed=0)
    with torch.no_grad():
        for p in other.connector.parameters():
            p.add_(1.0)
    load_adapter_strict(other, state)
    for k, v in model.adapter_state_dict().items():
        assert torch.equal(other.state_dict()[k], v), k
    conv = [{"role": "user", "content": "<|AUDIO|> Hi", "audios": [{"audio": sine(0.5), "text": "hi"}]}]
    assert (
        other.generate(conv, max_new_tokens=5)[0].token_ids
        == model.generate(conv, max_new_tokens=5)[0].token_ids
    )


def test_save_half_precision(tmp_path, model):
    from safetensors.torch import load_file

    out = save_model(model, tmp_path / "bf16", dtype=torch.bfloat16)
    state = load_file(str(out / ADAPTER_FILE))
    assert {v.dtype for v in state.values()} == {torch.bfloat16}
    other = tiny_desta(seed=1)
    load_adapter_strict(other, state)  # cast back to the parameter dtype
    assert other.connector.layer_weights.dtype == torch.float32


def _state(shapes, prefix=""):
    g = torch.Generator().manual_seed(0)
    return {prefix + k: torch.randn(s, generator=g) for k, s in shapes.items()}


def test_saved_adapter_bytes_depend_only_on_the_weights(tmp_path, model):
    from safetensors import safe_open

    files = {(save_model(model, tmp_path / str(i)) / ADAPTER_FILE).read_bytes() for i in range(6)}
    assert len(files) == 1  # a rerun of a deterministic recipe gives the same file, not only the same tensors
    with safe_open(str(tmp_path / "0" / ADAPTER_FILE), "pt") as f:
        assert f.metadata() == {"format": "pt"}


@pytest.mark.parametrize("prefix", ["", "model."])
def test_official_names_load(model, prefix):
    state = _state(_tiny_official_shapes(), prefix)
    m = tiny_desta(seed=0)
    load_adapter_strict(m, state)
    key = "perception.connector.qformer.layer.1.crossattention.self.key.weight"
    assert torch.equal(m.state_dict()[key], state[prefix + key])
    assert torch.equal(m.connector.layer_weights, state[prefix + "perception.connector.layer_weights"])


def test_missing_key_raises(model):
    state = _state(_tiny_official_shapes())
    del state["perception.connector.proj.1.bias"]
    with pytest.raises(CheckpointError, match=r"1 missing .*proj\.1\.bias.*0 unexpected"):
        load_adapter_strict(tiny_desta(seed=0), state)


def test_unexpected_key_raises(model):
    state = _state(_tiny_official_shapes())
    state["perception.connector.qformer.layer.2.output.dense.weight"] = torch.zeros(48, 64)
    with pytest.raises(CheckpointError, match=r"0 missing .*1 unexpected .*layer\.2\.output\.dense\.weight"):
        load_adapter_strict(tiny_desta(seed=0), state)


def test_wrong_shape_raises(model):
    state = _state(_tiny_official_shapes())
    state["perception.connector.layer_weights"] = torch.zeros(4)  # DeSTA2-style (L,) weights
    with pytest.raises(
        CheckpointError,
        match=r"1 tensors have the wrong shape.*layer_weights: checkpoint \(4,\), model \(8, 4\)",
    ):
        load_adapter_strict(tiny_desta(seed=0), state)


def test_failed_load_leaves_model_untouched():
    m = tiny_desta(seed=0)
    before = {k: v.clone() for k, v in m.adapter_state_dict().items()}
    state = _state(_tiny_official_shapes())
    state["perception.connector.proj.1.weight"] = torch.zeros(3, 3)
    with pytest.raises(CheckpointError):
        load_adapter_strict(m, state)
    for k, v in m.adapter_state_dict().items():
        assert torch.equal(v, before[k])


def test_official_state_dict_prefix():
    assert official_state_dict({"model.a": 1, "model.b": 2}) == {"a": 1, "b": 2}
    assert official_state_dict({"model.a": 1, "b": 2}) == {"model.a": 1, "b": 2}


OFFICIAL_CONFIG = {
    "architectures": ["DeSTA25AudioModel"],
    "model_type": "desta25",
    "audio_locator": "<|AUDIO|>",
    "placeholder_token": "<|reserved_special_token_87|>",
    "connector_mode": "qformer_1",
    "prompt_size": 64,
    "qformer_num_hidden_layers": 6,
    "use_lora": False,
    "target_layer_ids": [7, 15, 23, 31],
    "encoder_model_id": "openai/whisper-large-v3",
    "llm_model_id": "DeSTA-ntu/Llama-3.1-8B-Instruct",
    "encoder_config": {"model_type": "whisper", "d_model": 1280, "encoder_layers": 32},
    "llm_config": {"model_type": "llama", "hidden_size": 4096},
    "dtype": "bfloat16",
    "info": "free text",
    "train_id": "abc",
    "trainer_version": "x",
    "commit": "deadbeef",
}


def test_config_from_official():
    assert is_official_config(OFFICIAL_CONFIG)
    cfg = config_from_official(OFFICIAL_CONFIG)
    assert cfg.qformer_num_hidden_layers == 6
    assert cfg.taps == (7, 15, 23, 31)
    assert cfg.prompt_size == 64
    assert cfg.placeholder_token == "<|reserved_special_token_87|>"
    assert cfg.encoder_model_id == "openai/whisper-large-v3"
    assert cfg.llm_model_id == "DeSTA-ntu/Llama-3.1-8B-Instruct"
    assert cfg.pad_audio_to_30s and cfg.max_transcript_tokens is None and not cfg.use_lora
    assert cfg.qformer_intermediate_size == 3072


def test_config_from_official_defaults_and_errors():
    minimal = {"model_type": "desta25", "encoder_model_id": "openai/whisper-small"}
    assert config_from_official(minimal).qformer_num_hidden_layers == 2  # the code default
    with pytest.raises(ConfigError, match="connector_mode"):
        config_from_official({**OFFICIAL_CONFIG, "connector_mode": "linear"})
    with pytest.raises(ConfigError, match="not an official"):
        config_from_official({"model_type": "desta"})


def test_desta_config_round_trip_and_unknown_fields(tmp_path):
    cfg = DeSTAConfig(encoder_layers=6, info={"run": "x"})
    path = tmp_path / "config.json"
    cfg.save(path)
    loaded = DeSTAConfig.load(path)
    assert loaded.taps == (1, 2, 4, 5) and loaded.info == {"run": "x"}
    with pytest.raises(ConfigError, match="unknown DeSTAConfig fields \\['bogus'\\]"):
        DeSTAConfig.from_dict({"bogus": 1})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read config"):
        DeSTAConfig.load(bad)
    with pytest.raises(ConfigError):
        DeSTAConfig(prompt_size=0)
    with pytest.raises(ConfigError):
        DeSTAConfig(qformer_num_hidden_layers=0)

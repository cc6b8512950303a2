"""A model folder's config.json and weights: wrong types, unknown keys, invalid JSON and truncated
safetensors are errors that name the file and the key (DeSTAConfig.load, read_config_json, read_weights)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from desta.errors import CheckpointError, ConfigError
from desta.model.config import DeSTAConfig, read_config_json, read_weights


def write_config(tmp_path, **fields):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**DeSTAConfig(encoder_layers=4).to_dict(), **fields}))
    return path


@pytest.mark.parametrize(
    "key, value",
    [
        ("pad_audio_to_30s", "false"),  # used to load as True
        ("use_lora", "no"),  # used to load as True
        ("prompt_size", "64"),  # used to raise TypeError deep inside
        ("qformer_dropout", "0.1"),
        ("lora_target_modules", "q_proj"),
        ("target_layer_ids", [0, "1"]),
        ("encoder_layers", 4.0),
        ("info", ["not", "a", "mapping"]),
        ("untrained", 1),
    ],
)
def test_wrong_types_name_the_key_and_the_file(tmp_path, key, value):
    path = write_config(tmp_path, **{key: value})
    with pytest.raises(ConfigError, match=rf"{tmp_path}/config.json: {key}: expected"):
        DeSTAConfig.load(path)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("prompt_size", 0, "prompt_size must be >= 1"),
        ("qformer_dropout", 1.0, r"qformer_dropout must be in \[0, 1\)"),
        ("lora_dropout", -0.1, r"lora_dropout must be in \[0, 1\)"),
        ("target_layer_ids", [0, 9], r"target_layer_ids \(0, 9\) exceed the encoder.s 4 layers"),
    ],
)
def test_out_of_range_values_name_the_file(tmp_path, key, value, message):
    with pytest.raises(ConfigError, match=rf"config.json: {message}"):
        DeSTAConfig.load(write_config(tmp_path, **{key: value}))


def test_unknown_keys_name_the_key_and_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"config.json: unknown DeSTAConfig fields \['promt_size'\]"):
        DeSTAConfig.load(write_config(tmp_path, promt_size=64))


def test_good_values_load_with_lists_as_tuples(tmp_path):
    cfg = DeSTAConfig.load(write_config(tmp_path, target_layer_ids=[1, 3], lora_target_modules=["q_proj"]))
    assert cfg.target_layer_ids == (1, 3) and cfg.lora_target_modules == ("q_proj",)
    assert DeSTAConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.parametrize("text", ["{not json", '{"prompt_size": 64', "[1, 2]", "", "\udcff"])
def test_invalid_json_names_the_file(tmp_path, text):
    path = tmp_path / "config.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ConfigError, match=rf"{tmp_path}/config.json: cannot read config"):
        read_config_json(path)
    with pytest.raises(ConfigError, match="config.json: cannot read config"):
        DeSTAConfig.load(path)


def test_missing_config_names_the_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.json: cannot read config"):
        read_config_json(tmp_path / "nope.json")


@pytest.mark.parametrize("keep", [0, 7, 40, 0.5, 0.99])
def test_truncated_safetensors_name_the_file(tmp_path, keep):
    path = tmp_path / "model.safetensors"
    save_file({"a": torch.arange(64, dtype=torch.float32), "b": torch.ones(3, 3)}, str(path))
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    with pytest.raises(CheckpointError, match=rf"{tmp_path}/model.safetensors: cannot read weights"):
        read_weights(path)


def test_intact_safetensors_read(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"a": torch.arange(4.0)}, str(path))
    assert torch.equal(read_weights(path)["a"], torch.arange(4.0))


@pytest.mark.parametrize(
    "damage, message",
    [
        ("typed", r"config.json: use_lora: expected true/false, got str 'no'"),
        ("unknown", r"config.json: unknown DeSTAConfig fields \['bogus'\]"),
        ("json", r"config.json: cannot read config"),
        ("weights", r"model.safetensors: cannot read weights"),
    ],
)
def test_load_model_names_the_bad_file_before_building(tmp_path, damage, message):
    """Through the public loader: errors come before any backbone is loaded, naming the file."""
    import desta

    folder = tmp_path / "model"
    folder.mkdir()
    write_config(
        folder, **({"use_lora": "no"} if damage == "typed" else {"bogus": 1} if damage == "unknown" else {})
    )
    if damage == "json":
        (folder / "config.json").write_text('{"prompt_size": 64,')
    save_file({"a": torch.zeros(8)}, str(folder / "model.safetensors"))
    if damage == "weights":
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[: len(data) - 9])
    with pytest.raises(ConfigError, match=rf"{folder}/{message}"):
        desta.load_model(str(folder))

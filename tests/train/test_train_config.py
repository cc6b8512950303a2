"""Recipes parse, validate and build; bad keys and types fail before any work, naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from desta.cli import main
from desta.errors import ConfigError, DeSTAError
from desta.train.config import TrainConfig, load_config, parse_overrides
from helpers import official_connector_shapes, smollm2_tokenizer

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))


def test_there_are_recipes():
    names = {p.name for p in RECIPES}
    assert {"desta25-llama31-8b.yaml", "desta-tiny.yaml"} <= names


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_every_recipe_parses(recipe):
    cfg = load_config(recipe)
    assert isinstance(cfg, TrainConfig)
    assert cfg.optim.betas == (0.9, 0.98) and cfg.optim.weight_decay == 0.01 and cfg.optim.grad_clip == 1.0
    assert cfg.data.max_transcript_tokens == 100


def test_official_recipe_values():
    cfg = load_config(ROOT / "recipes" / "desta25-llama31-8b.yaml")
    assert cfg.model.encoder_model_id == "openai/whisper-large-v3"
    assert cfg.model.llm_model_id.endswith("Llama-3.1-8B-Instruct")
    assert (cfg.model.prompt_size, cfg.model.qformer_num_hidden_layers) == (64, 6)
    assert cfg.model.target_layer_ids == (7, 15, 23, 31)
    assert cfg.model.pad_audio_to_30s
    assert (cfg.optim.lr, cfg.optim.warmup_steps, cfg.optim.epochs) == (1e-4, 5000, 5)
    assert (cfg.data.batch_size, cfg.data.max_seq_length) == (12, 300)


def test_official_recipe_builds_the_official_adapter_shapes():
    """The 8B recipe, built on the meta device with the real backbone shapes, has exactly the official
    adapter keys and shapes (no download: Whisper-large-v3 and Llama-3.1-8B configs written out)."""
    from transformers import LlamaConfig, LlamaForCausalLM, WhisperConfig, WhisperForConditionalGeneration

    from desta.model.desta import DeSTAModel

    cfg = load_config(ROOT / "recipes" / "desta25-llama31-8b.yaml").model
    wcfg = WhisperConfig(d_model=1280, encoder_layers=32, decoder_layers=32, encoder_attention_heads=20,
                         decoder_attention_heads=20, encoder_ffn_dim=5120, decoder_ffn_dim=5120,
                         num_mel_bins=128, vocab_size=51866)  # fmt: skip
    lcfg = LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                       num_key_value_heads=8, vocab_size=128256)  # fmt: skip
    with torch.device("meta"):
        whisper = WhisperForConditionalGeneration(wcfg)
        llm = LlamaForCausalLM(lcfg)
        # SmolLM2's tokenizer stands in for Llama's; the placeholder is then chosen from its vocabulary
        model = DeSTAModel(cfg.replace(placeholder_token=None), whisper, llm, smollm2_tokenizer())
    got = {k: tuple(v.shape) for k, v in model.adapter_state_dict().items()}
    assert got == official_connector_shapes()
    assert model.config.taps == (7, 15, 23, 31)


@pytest.mark.slow
def test_tiny_recipe_builds_on_the_real_offline_backbones():
    from desta.model.load import build_model

    cfg = load_config(ROOT / "recipes" / "desta-tiny.yaml").model
    model = build_model(cfg)
    assert model.config.encoder_layers == 6 and model.config.llm_dim == 576
    n = sum(p.numel() for p in model.adapter_state_dict().values())
    assert 5e6 < n < 12e6  # small enough to ship in the wheel


def test_unknown_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"'optim\.lrr'.*valid keys here"):
        load_config(ROOT / "recipes" / "desta-tiny.yaml", ["optim.lrr=1e-3"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  prompt_size: 8\ntrainer:\n  epochs: 1\n")
    with pytest.raises(ConfigError, match="'trainer'"):
        load_config(bad)


@pytest.mark.parametrize(
    "override, key",
    [
        ("data.batch_size=eight", "data.batch_size"),
        ("optim.lr=fast", "optim.lr"),
        ("run.tensorboard=maybe", "run.tensorboard"),
        ("optim.betas=[0.9]", "optim.betas"),
        ("model.prompt_size=0", "prompt_size"),
    ],
)
def test_wrong_types_are_named(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(ROOT / "recipes" / "desta-tiny.yaml", [override])


def test_overrides_are_typed():
    cfg = load_config(
        ROOT / "recipes" / "desta-tiny.yaml", ["optim.lr=5e-4", "data.batch_size=3", "optim.betas=[0.8, 0.9]"]
    )
    assert cfg.optim.lr == 5e-4 and cfg.data.batch_size == 3 and cfg.optim.betas == (0.8, 0.9)
    assert parse_overrides(["a.b.c=1", "a.d=x"]) == {"a": {"b": {"c": 1}, "d": "x"}}
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["optim.lr"])


def test_invalid_yaml_and_missing_recipe(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(broken)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="mapping of sections"):
        load_config(scalar)


def test_cli_prints_config_and_reports_bad_keys(capsys):
    assert main(["train", str(ROOT / "recipes" / "desta-tiny.yaml"), "optim.lr=5e-4", "--print-config"]) == 0
    assert '"lr": 0.0005' in capsys.readouterr().out
    assert main(["train", str(ROOT / "recipes" / "desta-tiny.yaml"), "optim.nope=1"]) == 1
    err = capsys.readouterr().err
    assert "desta: error:" in err and "optim.nope" in err and "Traceback" not in err


def test_empty_train_path_fails_before_work():
    from desta.train.train import train

    with pytest.raises(ConfigError, match="data.train is empty"):
        train(load_config(None, {"data": {"train": ""}}))


def test_tiny_system_prompt_is_the_one_its_training_rows_carry():
    from desta.data.generate import TRAINING_SYSTEM_PROMPT
    from desta.model.load import TINY_CONFIG
    from desta.recipes.tiny.stages import BREVITY

    cfg = load_config(ROOT / "recipes" / "desta-tiny.yaml")
    assert cfg.model.system_prompt == TINY_CONFIG.system_prompt == TRAINING_SYSTEM_PROMPT + BREVITY


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.pad_audio_to_30s='false'", r"model\.pad_audio_to_30s: expected true/false"),
        ("model.use_lora='no'", r"model\.use_lora: expected true/false"),
        ("model.prompt_size='64'", r"model\.prompt_size: expected an integer"),
        ("data.num_workers=1.5", r"data\.num_workers: expected an integer"),
        ("run.seed=[1]", r"run\.seed: expected an integer"),
        ("data.batch_size=0", r"data\.batch_size must be >= 1"),
        ("optim.grad_accum=0", r"optim\.grad_accum must be >= 1"),
        ("run.save_every=0", r"run\.save_every must be >= 1"),
        ("run.distributed=ddp", r"run\.distributed must be one of"),
        ("optim.betas=[0.9, 1.5]", r"optim\.betas must be in"),
        ("model.qformer_dropout=2", r"model\.qformer_dropout must be in"),
    ],
)
def test_recipe_types_and_ranges_are_checked_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(ROOT / "recipes" / "desta-tiny.yaml", [override])


def test_unknown_model_key_in_a_recipe_file_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  use_loar: true\n")
    with pytest.raises(ConfigError, match=r"'model\.use_loar'"):
        load_config(bad)


def _rows(root: Path, n: int, audio: bool = True) -> Path:
    import json

    import soundfile as sf

    (root / "audio").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        if audio:
            sf.write(root / "audio" / f"c{i}.wav", torch.zeros(1600).numpy(), 16000)
        msg = {"role": "user", "content": "<|AUDIO|>\nWhat?", "audios": [{"audio": f"audio/c{i}.wav", "text": " "}]}
        lines.append(json.dumps({"messages": [msg], "response": "A tone."}) + "\n")
    (root / "train.jsonl").write_text("".join(lines))
    return root / "train.jsonl"


@pytest.fixture()
def no_model(monkeypatch):
    """Training data problems must stop the run before the model loads (it takes seconds)."""
    import desta.train.train as train_module

    def build(*args, **kwargs):
        raise AssertionError("the model was loaded before the data was checked")

    monkeypatch.setattr(train_module, "build_for_training", build)


def _setup(tmp_path, data: dict, run: dict | None = None):
    from desta.train.train import setup

    setup(load_config(None, {"data": data, "run": {"out_dir": str(tmp_path / "o"), "device": "cpu", **(run or {})}}))


def test_too_few_rows_say_which_key_to_change_before_the_model_loads(tmp_path, no_model):
    train = _rows(tmp_path, 3)
    with pytest.raises(ConfigError) as err:
        _setup(tmp_path, {"train": str(train), "data_root": str(tmp_path), "batch_size": 8})
    assert str(err.value) == (
        "3 rows are fewer than one global batch of 8 (data.batch_size=8): set data.batch_size=3 (or lower) "
        "or give more rows, e.g. `desta train RECIPE data.batch_size=3`"
    )


def test_bad_training_data_is_reported_before_the_model_loads(tmp_path, no_model):
    with pytest.raises(DeSTAError, match="no such file"):
        _setup(tmp_path, {"train": str(tmp_path / "nope.jsonl")})
    (tmp_path / "bad.jsonl").write_text('{"messages": [], "response": "x"}\nnot json\n')
    with pytest.raises(DeSTAError, match="bad.jsonl:2: not valid JSON"):
        _setup(tmp_path, {"train": str(tmp_path / "bad.jsonl")})
    train = _rows(tmp_path / "d", 4, audio=False)
    with pytest.raises(ConfigError, match=r"4 of 4 rows name audio that does not exist \(first: 'audio/c0.wav', "
                       r"relative to data.data_root \(unset\)\).*point data.data_root at"):  # fmt: skip
        _setup(tmp_path, {"train": str(train), "batch_size": 2})


def test_omp_num_threads_wins_over_the_recipes_threads(tmp_path, no_model, monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    try:
        with pytest.raises(DeSTAError, match="no such file"):
            _setup(tmp_path, {"train": str(tmp_path / "nope.jsonl")}, {"threads": 2})
        assert torch.get_num_threads() == before
    finally:
        torch.set_num_threads(before)
    assert "OMP_NUM_THREADS=1 is set: it wins over the recipe's run.threads=2" in capsys.readouterr().out


def test_train_help_names_the_step_limit_key(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "optim.max_steps=N      stop after N optimizer steps" in out and "--print-config" in out

"""Hugging Face conventions: save_pretrained folders, from_pretrained / AutoModel, clear path errors."""

from __future__ import annotations

import json

import pytest
import torch

from desta.errors import CheckpointError
from desta.model.desta import DeSTAModel
from helpers import sine, smollm2_tokenizer, tiny_config, tiny_llm, tiny_whisper


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny model whose backbones live in local folders, so the saved folder reloads by itself."""
    root = tmp_path_factory.mktemp("hub")
    whisper, llm, tok = tiny_whisper(seed=0), tiny_llm(seed=1), smollm2_tokenizer()
    whisper.save_pretrained(root / "whisper")
    llm.save_pretrained(root / "llm")
    tok.save_pretrained(root / "llm")
    config = tiny_config(encoder_model_id=str(root / "whisper"), llm_model_id=str(root / "llm"), name="mine")
    torch.manual_seed(2)
    model = DeSTAModel(config, whisper, llm, tok).eval()
    with torch.no_grad():  # weights that differ from any fresh initialisation
        for p in model.connector.parameters():
            p.add_(0.01)
    out = model.save_pretrained(root / "model")
    return model, out


def test_saved_folder_has_the_hf_files(saved):
    _, out = saved
    names = {p.name for p in out.iterdir()}
    for needed in ("config.json", "model.safetensors", "generation_config.json", "preprocessor_config.json",
                   "tokenizer_config.json", "README.md"):  # fmt: skip
        assert needed in names, (needed, sorted(names))
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["DeSTAModel"] and config["model_type"] == "desta"
    assert config["name"] == "mine"
    assert "chat_template" in (out / "tokenizer_config.json").read_text() or (out / "chat_template.jinja").exists()
    assert "# mine" in (out / "README.md").read_text()


def test_from_pretrained_and_automodel_give_the_same_model(saved):
    from transformers import AutoConfig, AutoModel

    model, out = saved
    again = DeSTAModel.from_pretrained(out)
    for k, v in model.adapter_state_dict().items():
        assert torch.equal(again.adapter_state_dict()[k], v), k
    assert AutoConfig.from_pretrained(out).model_type == "desta"
    auto = AutoModel.from_pretrained(out)
    assert isinstance(auto, DeSTAModel)
    conv = [{"role": "user", "content": "<|AUDIO|> Hi", "audios": [{"audio": sine(0.5), "text": "hi"}]}]
    assert auto.generate(conv, max_new_tokens=4)[0].token_ids == model.generate(conv, max_new_tokens=4)[0].token_ids


@pytest.mark.parametrize("name", ["./no/such/model", "/tmp/definitely-not-here-desta", "runs/x/model"])
def test_a_missing_local_folder_is_not_a_hub_error(name):
    import desta

    with pytest.raises(CheckpointError, match="no such folder"):
        desta.load_model(name)


def test_a_file_given_as_model_is_not_a_folder(tmp_path):
    import desta

    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"not a folder")
    with pytest.raises(CheckpointError, match="not a folder"):
        desta.load_model(str(weights))


def test_public_api_is_listed():
    import desta

    for name in ("load_model", "DeSTAModel", "GenerationOptions", "Generator", "conversation", "example_clip"):
        assert name in dir(desta) and getattr(desta, name) is not None


def test_automodel_without_importing_desta_first(saved, tmp_path):
    """A fresh interpreter that never imports desta: the saved folder's ``auto_map`` lets transformers'
    Auto classes load it with ``trust_remote_code=True`` (offline: the code files are in the folder), and
    without it transformers asks for ``trust_remote_code`` instead of "does not recognize this architecture"."""
    import os
    import subprocess
    import sys

    model, out = saved
    config = json.loads((out / "config.json").read_text())
    assert config["auto_map"] == {"AutoConfig": "configuration_desta.DeSTAHFConfig", "AutoModel": "modeling_desta.DeSTAModel"}
    assert "trust_remote_code=True" in (out / "README.md").read_text()
    expected = model.adapter_state_dict()
    torch.save(expected, tmp_path / "expected.pt")
    script = f"""
import sys, torch
from transformers import AutoConfig, AutoModel
assert not any(m == "desta" or m.startswith("desta.") for m in sys.modules)
try:
    AutoConfig.from_pretrained({str(out)!r}, trust_remote_code=False)
    raise SystemExit("loaded without trust_remote_code")
except ValueError as err:
    assert "trust_remote_code" in str(err), err
assert AutoConfig.from_pretrained({str(out)!r}, trust_remote_code=True).model_type == "desta"
auto = AutoModel.from_pretrained({str(out)!r}, trust_remote_code=True)
assert type(auto).__name__ == "DeSTAModel", type(auto)
expected = torch.load({str(tmp_path / "expected.pt")!r})
assert all(torch.equal(auto.adapter_state_dict()[k], v) for k, v in expected.items())
print("ok")
"""
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]

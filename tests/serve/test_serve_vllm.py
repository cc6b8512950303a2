"""vLLM plugin on CPU without vLLM: registration, the prompt layout, and the model module's imports.

vLLM itself is absent here; a stub package stands in for the names the module imports, so the class
definitions, decorators and the plugin's registration calls run for real.
"""

from __future__ import annotations

import importlib
import json
import sys
import types

import numpy as np
import pytest

from desta.errors import DeSTAError
from desta.serve import vllm_plugin
from desta.serve.vllm_prompt import audio_block_ids, n_embedding_slots, window_count

VLLM_MODULES = [
    "vllm",
    "vllm.config",
    "vllm.model_executor",
    "vllm.model_executor.models",
    "vllm.model_executor.models.interfaces",
    "vllm.model_executor.models.utils",
    "vllm.model_executor.model_loader",
    "vllm.multimodal",
    "vllm.multimodal.inputs",
    "vllm.multimodal.parse",
    "vllm.multimodal.processing",
    "vllm.multimodal.profiling",
    "vllm.sequence",
]


class _Registry:
    def __init__(self) -> None:
        self.models: dict[str, str] = {"LlamaForCausalLM": "vllm..."}
        self.processors: list[tuple] = []

    def get_supported_archs(self):
        return list(self.models)

    def register_model(self, arch: str, target: str) -> None:
        self.models[arch] = target

    def register_processor(self, processor, *, info, dummy_inputs):
        def deco(cls):
            self.processors.append((cls, processor, info, dummy_inputs))
            return cls

        return deco


class _StubModule(types.ModuleType):
    """Any attribute is a fresh class, subscriptable like a generic."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        cls = type(
            name,
            (),
            {"__class_getitem__": classmethod(lambda c, item: c), "__init__": lambda self, *a, **k: None},
        )
        setattr(self, name, cls)
        return cls


@pytest.fixture
def stub_vllm(monkeypatch):
    registry = _Registry()
    for name in VLLM_MODULES:
        monkeypatch.setitem(sys.modules, name, _StubModule(name))
    sys.modules["vllm"].ModelRegistry = registry
    sys.modules["vllm.multimodal"].MULTIMODAL_REGISTRY = registry
    monkeypatch.delitem(sys.modules, "desta.serve.vllm_model", raising=False)
    yield registry
    sys.modules.pop("desta.serve.vllm_model", None)


def test_model_module_without_vllm_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    monkeypatch.delitem(sys.modules, "desta.serve.vllm_model", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'desta\[vllm\]'"):
        importlib.import_module("desta.serve.vllm_model")


def test_register_without_vllm_is_a_no_op(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)
    assert vllm_plugin.register() is None


def test_register_with_vllm(stub_vllm):
    vllm_plugin.register()
    assert (
        stub_vllm.models["DeSTAForConditionalGeneration"]
        == "desta.serve.vllm_model:DeSTAForConditionalGeneration"
    )
    assert stub_vllm.models["DeSTA25AudioModel"] == vllm_plugin.MODEL_CLASS
    vllm_plugin.register()  # twice in one process: still fine
    from transformers import AutoConfig

    llm = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
    config = AutoConfig.for_model("desta", llm_model_id="some/llm", prompt_size=64, text_config=llm)
    assert type(config).__name__ == "DeSTAHFConfig" and config.llm_model_id == "some/llm"
    assert config.get_text_config().hidden_size == 64
    assert config.to_dict()["text_config"]["hidden_size"] == 64


def test_model_module_imports_against_the_vllm_api(stub_vllm):
    module = importlib.import_module("desta.serve.vllm_model")
    (cls, processor, info, dummy) = stub_vllm.processors[0]
    assert cls is module.DeSTAForConditionalGeneration
    assert processor is module.DeSTAMultiModalProcessor
    assert info is module.DeSTAProcessingInfo and dummy is module.DeSTADummyInputsBuilder
    assert cls.get_placeholder_str("audio", 0) == "<|AUDIO|>"
    assert cls.get_multimodal_embeddings is cls.embed_multimodal
    with pytest.raises(ValueError):
        cls.get_placeholder_str("image", 0)
    assert vllm_plugin.MODEL_CLASS == f"{module.__name__}:{cls.__name__}"


def test_audio_block_layout():
    ids = audio_block_ids([[7, 8], [9]], n_queries=3, placeholder_id=0, start_ids=[1, 2], end_ids=[3])
    assert ids == [1, 2, 0, 0, 0, 7, 8, 0, 0, 0, 9, 3]
    assert ids.count(0) == n_embedding_slots(2, 3) == 6
    with pytest.raises(DeSTAError):
        audio_block_ids([], n_queries=3, placeholder_id=0, start_ids=[], end_ids=[])
    with pytest.raises(DeSTAError, match="placeholder"):
        audio_block_ids([[0]], n_queries=3, placeholder_id=0, start_ids=[], end_ids=[])


def test_window_count_matches_desta_split():
    sr = 16000
    assert window_count(np.zeros(5 * sr, np.float32)) == 1
    assert window_count(np.zeros(30 * sr, np.float32)) == 1
    assert window_count(np.zeros(int(30.02 * sr), np.float32)) == 1  # remainder < 0.1 s dropped
    assert window_count(np.zeros(61 * sr, np.float32)) == 3


def test_prepare_vllm_dir(tmp_path):
    src = tmp_path / "ckpt"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({"prompt_size": 64, "llm_model_id": "x/llm"}))
    (src / "model.safetensors").write_bytes(b"weights")
    out = vllm_plugin.prepare_vllm_dir(src, tmp_path / "vllm")
    config = json.loads((out / "config.json").read_text())
    assert config == {
        "prompt_size": 64,
        "llm_model_id": "x/llm",
        "architectures": ["DeSTAForConditionalGeneration"],
        "model_type": "desta",
    }
    assert (out / "model.safetensors").read_bytes() == b"weights"
    assert (out / "model.safetensors").is_symlink()
    with pytest.raises(DeSTAError):
        vllm_plugin.prepare_vllm_dir(tmp_path / "missing", tmp_path / "o2")

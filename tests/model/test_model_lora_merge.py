"""LoRA merged into the LLM weights at load time: same answers, same adapter weights, reversible."""

from __future__ import annotations

import pytest
import torch

import desta
from desta.data.records import AudioRecord
from desta.model.load import example_clip
from desta.model.lora import merge_lora, unmerge_lora
from desta.recipes.tiny.probes import audio_conversation


@pytest.mark.slow
def test_merged_lora_answers_like_unmerged():
    torch.set_num_threads(1)
    merged = desta.load_model()
    if not merged.config.use_lora:
        pytest.skip("the packaged desta-tiny has no LoRA")
    plain = desta.load_model(merge_lora=False)
    conv = audio_conversation(AudioRecord("e", example_clip(), "bundled"), "What is said, and is the speaker a man or a woman?")
    a = merged.generate([conv], max_new_tokens=40)[0].text
    b = plain.generate([conv], max_new_tokens=40)[0].text
    assert a == b
    sa, sb = merged.adapter_state_dict(), plain.adapter_state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert merge_lora(merged) == 0  # already merged
    n = unmerge_lora(merged)
    assert n > 0 and merge_lora(merged) == n


def test_lora_wrapping_shows_the_user_no_library_deprecation_warning():
    import warnings

    from desta.model.lora import apply_lora
    from helpers import tiny_desta

    model = tiny_desta(use_lora=True, lora_target_modules=("q_proj", "v_proj"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        apply_lora(model)
    assert not [w for w in caught if issubclass(w.category, FutureWarning)], [str(w.message) for w in caught]
    assert any("lora_A" in n for n in model.trainable_parameter_names())


@pytest.fixture(scope="module")
def lora_folder(tmp_path_factory):
    """A saved tiny model with a trained-looking LoRA (random A and B: peft starts B at zero) on q/v,
    its backbones in local folders so that the folder loads by itself."""
    from desta.model.desta import DeSTAModel
    from desta.model.lora import apply_lora
    from helpers import smollm2_tokenizer, tiny_config, tiny_llm, tiny_whisper

    root = tmp_path_factory.mktemp("lora")
    whisper, llm, tok = tiny_whisper(seed=0), tiny_llm(seed=1), smollm2_tokenizer()
    whisper.save_pretrained(root / "whisper")
    llm.save_pretrained(root / "llm")
    tok.save_pretrained(root / "llm")
    config = tiny_config(encoder_model_id=str(root / "whisper"), llm_model_id=str(root / "llm"), name="lora",
                         use_lora=True, lora_r=4, lora_alpha=8, lora_target_modules=("q_proj", "v_proj"))  # fmt: skip
    torch.manual_seed(2)
    model = DeSTAModel(config, whisper, llm, tok)
    apply_lora(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.normal_(0.0, 0.2)
    return model.save_pretrained(root / "model")


def _logits(model) -> torch.Tensor:
    from helpers import sine

    conv = [{"role": "user", "content": "<|AUDIO|>\nWhat is it?", "audios": [{"audio": sine(0.5), "text": "a tone"}]}]
    prepared = model.prepare([conv])
    with torch.no_grad():
        hidden = model(**prepared.inputs, mel=prepared.mel)["hidden"]
        return model.llm_model.get_output_embeddings()(hidden).float()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_lora_merged_at_load_without_peft_equals_peft_merge(lora_folder, dtype):
    """load's own merge (W += (B @ A) * alpha / r, no peft) gives the weights, logits and adapter state
    of the peft-wrapped model merged by peft."""
    from peft.tuners.lora import LoraLayer

    from desta.model.desta import DeSTAModel

    folded = DeSTAModel.from_pretrained(lora_folder, llm_dtype=dtype)
    wrapped = DeSTAModel.from_pretrained(lora_folder, llm_dtype=dtype, merge_lora=False)
    assert merge_lora(wrapped) == 4  # 2 layers x (q, v)
    assert not any(isinstance(m, LoraLayer) for m in folded.modules())
    ours = folded.llm_model.state_dict()
    theirs = {k.replace(".base_layer.", "."): v for k, v in wrapped.llm_model.state_dict().items() if "lora_" not in k}
    assert ours.keys() == theirs.keys()
    changed = [k for k in ours if "q_proj.weight" in k or "v_proj.weight" in k]
    assert len(changed) == 4 and all(torch.equal(ours[k], theirs[k]) for k in ours), [k for k in ours if not torch.equal(ours[k], theirs[k])]
    assert torch.allclose(_logits(folded), _logits(wrapped), atol=1e-6, rtol=0)
    sa, sb = folded.adapter_state_dict(), wrapped.adapter_state_dict()
    assert list(sa) == list(sb) and all(sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]) for k in sa)


def test_lora_merged_at_load_unmerges_for_training(lora_folder):
    """unmerge_lora on a model merged at load wraps it with peft again: the same weights as a model
    loaded unmerged, LoRA trainable, and merge_lora folds it back."""
    from desta.model.desta import DeSTAModel

    folded = DeSTAModel.from_pretrained(lora_folder)
    base = {k: v.clone() for k, v in folded.llm_model.state_dict().items()}
    plain = DeSTAModel.from_pretrained(lora_folder, merge_lora=False)
    assert unmerge_lora(folded) == 4 and not folded.folded_lora
    sa, sb = folded.state_dict(), plain.state_dict()
    assert sa.keys() == sb.keys() and all(torch.allclose(sa[k], sb[k], atol=1e-6) for k in sa)
    assert sorted(folded.trainable_parameter_names()) == sorted(plain.trainable_parameter_names())
    assert merge_lora(folded) == 4
    again = {k.replace(".base_layer.", "."): v for k, v in folded.llm_model.state_dict().items() if "lora_" not in k}
    assert all(torch.allclose(again[k], base[k], atol=1e-6) for k in base)


def test_a_checkpoint_without_its_lora_tensors_is_refused(lora_folder, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from desta.errors import CheckpointError
    from desta.model.desta import DeSTAModel

    bad = tmp_path / "bad"
    shutil.copytree(lora_folder, bad)
    state = {k: v for k, v in load_file(str(bad / "model.safetensors")).items() if "v_proj.lora_B" not in k}
    save_file(state, str(bad / "model.safetensors"))
    with pytest.raises(CheckpointError, match="LoRA tensors missing"):
        DeSTAModel.from_pretrained(bad)


def test_loading_for_answers_never_imports_peft(lora_folder):
    """A fresh interpreter loads the LoRA model (merged, the default) and answers without importing peft."""
    import os
    import subprocess
    import sys

    script = f"""
import sys
import numpy as np
import desta
model = desta.load_model({str(lora_folder)!r})
assert model.folded_lora and "peft" not in sys.modules, sorted(m for m in sys.modules if "peft" in m)
wave = (0.3 * np.sin(np.arange(8000) / 8)).astype(np.float32)
conv = [{{"role": "user", "content": "<|AUDIO|> Hi", "audios": [{{"audio": wave, "text": "hi"}}]}}]
assert model.generate(conv, max_new_tokens=2)[0].token_ids
assert "peft" not in sys.modules
print("ok")
"""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]

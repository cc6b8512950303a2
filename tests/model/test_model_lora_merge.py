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

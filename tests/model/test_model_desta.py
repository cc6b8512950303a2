"""DeSTAModel on tiny random backbones: loss, splicing, batched generation, streaming, options."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from desta.errors import DeSTAError
from desta.infer.options import GenerationOptions, GenerationResult
from desta.model.processor import IGNORE_INDEX
from helpers import SR, sine, tiny_desta


@pytest.fixture(scope="module")
def model():
    return tiny_desta(seed=0)


def _conv(text: str, transcript: str, seconds: float = 1.0, freq: float = 440.0, system: str | None = None):
    conv = [{"role": "system", "content": system}] if system else []
    conv.append(
        {"role": "user", "content": text, "audios": [{"audio": sine(seconds, freq), "text": transcript}]}
    )
    return conv


CONVS = [
    _conv("<|AUDIO|> What is said?", "hello world"),
    _conv(
        "Describe <|AUDIO|> in detail, please, with all the words you know.",
        "the cat sat on the mat",
        2.5,
        880.0,
        "Be brief.",
    ),
    [
        {
            "role": "user",
            "content": "Compare <|AUDIO|> with <|AUDIO|>.",
            "audios": [
                {"audio": sine(0.5, 300.0), "text": "one"},
                {"audio": (sine(0.7, 600.0, sr=8000), 8000), "text": "two"},
            ],
        }
    ],
]


def test_config_filled_from_backbones(model):
    cfg = model.config
    assert (cfg.encoder_dim, cfg.encoder_heads, cfg.encoder_layers, cfg.llm_dim) == (48, 4, 4, 48)
    assert cfg.target_layer_ids == (0, 1, 2, 3)
    assert cfg.placeholder_token == "<empty_output>"
    assert model.name == "desta-test-tiny"


def test_only_connector_is_trainable(model):
    names = model.trainable_parameter_names()
    assert names and all(n.startswith("perception.connector.") for n in names)
    assert set(model.adapter_state_dict()) == set(names)
    assert not any(p.requires_grad for p in model.llm_model.parameters())
    assert not any(p.requires_grad for p in model.perception.whisper.parameters())
    model.train()
    assert not model.perception.whisper.training and not model.llm_model.training
    assert model.connector.training
    model.eval()


def _training_batch(model):
    proc = model.processor
    items = [
        (CONVS[0], [["hello world"]], "It says hello world."),
        (CONVS[1], [["the cat sat on the mat"]], "A cat."),
    ]
    encoded = [proc.encode(c, t, response=r) for c, t, r in items]
    batch = proc.collate(encoded, padding_side="left")
    windows = [c[-1]["audios"][0]["audio"] for c, _, _ in items]
    batch["mel"] = model.perception.features(windows)
    return batch


def test_forward_loss_equals_full_vocabulary_reference(model):
    batch = _training_batch(model)
    out = model(**batch)
    assert torch.isfinite(out["loss"])
    n_target = int((batch["labels"] != IGNORE_INDEX).sum())
    assert int(out["n_tokens"]) == n_target
    # reference: splice by hand, full logits, HF-style shifted mean cross entropy
    with torch.no_grad():
        audio = model.encode_audio(batch["mel"])
        embeds = model.llm_model.get_input_embeddings()(batch["input_ids"]).clone()
        embeds[batch["audio_mask"]] = audio.reshape(-1, audio.shape[-1])
        logits = model.llm_model(
            inputs_embeds=embeds, attention_mask=batch["attention_mask"], position_ids=batch["position_ids"]
        ).logits
        ref = F.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]),
            batch["labels"][:, 1:].reshape(-1),
            ignore_index=IGNORE_INDEX,
        )
    torch.testing.assert_close(out["loss"].detach(), ref, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(out["loss_sum"].detach(), ref * n_target, atol=1e-3, rtol=1e-5)


def test_loss_backpropagates_to_connector_only(model):
    batch = _training_batch(model)
    model.zero_grad()
    model(**batch)["loss"].backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert grads and all(n.startswith("perception.connector.") for n in grads)
    assert grads["perception.connector.layer_weights"].abs().sum() > 0
    assert grads["perception.connector.proj.1.weight"].abs().sum() > 0
    model.zero_grad()


def test_forward_without_labels_returns_hidden(model):
    batch = _training_batch(model)
    batch.pop("labels")
    out = model(**batch)
    assert out["hidden"].shape == (*batch["input_ids"].shape, 48)


def test_embed_slot_count_mismatch_raises(model):
    ids = torch.zeros(1, 10, dtype=torch.long)
    mask = torch.zeros(1, 10, dtype=torch.bool)
    mask[0, 2:6] = True  # 4 slots
    with pytest.raises(DeSTAError, match="4 audio slots in the prompt but 16 audio vectors"):
        model.embed(ids, mask, torch.zeros(2, 8, 48))
    with pytest.raises(DeSTAError, match="4 audio slots in the prompt but 0"):
        model.embed(ids, mask, None)
    out = model.embed(ids, mask, torch.ones(1, 4, 48))
    assert torch.equal(out[0, 2:6], torch.ones(4, 48))
    assert torch.equal(out[0, 0], model.llm_model.get_input_embeddings().weight[0])


def test_prepare_layout(model):
    prepared = model.prepare(CONVS)
    inp = prepared.inputs
    q = model.config.prompt_size
    assert inp["audio_mask"].sum(-1).tolist() == [q, q, 2 * q]
    assert prepared.mel.shape == (4, 80, 3000)
    assert prepared.transcripts == [["hello world"], ["the cat sat on the mat"], ["one", "two"]]
    # left padding: the last column is real for every row
    assert inp["attention_mask"][:, -1].tolist() == [1, 1, 1]


def test_prepare_long_audio_three_windows(model):
    conv = [
        {
            "role": "user",
            "content": "<|AUDIO|> Summarise.",
            "audios": [{"audio": np.full(65 * SR, 0.01, np.float32), "text": "long talk"}],
        }
    ]
    prepared = model.prepare([conv])
    assert prepared.mel.shape[0] == 3
    assert int(prepared.inputs["audio_mask"].sum()) == 3 * model.config.prompt_size
    assert prepared.transcripts == [["long talk"]]
    text = model.tokenizer.decode(prepared.inputs["input_ids"][0])
    assert text.count("<start_audio>") == 1 and text.count("long talk") == 1


def test_prepare_without_asr_uses_space(model):
    m = tiny_desta(seed=0, use_asr=False)
    prepared = m.prepare([[{"role": "user", "content": "<|AUDIO|>", "audios": [{"audio": sine(0.5)}]}]])
    assert prepared.transcripts == [[""]]
    ids = prepared.inputs["input_ids"][0].tolist()
    slots = prepared.inputs["audio_mask"][0].tolist()
    after = ids[len(slots) - slots[::-1].index(True)]  # first id after the last slot
    assert after == m.tokenizer(" ", add_special_tokens=False).input_ids[0]


def test_prepare_bad_audio_entry(model):
    with pytest.raises(DeSTAError, match="'audio' key"):
        model.prepare([[{"role": "user", "content": "<|AUDIO|>", "audios": ["clip.wav"]}]])


def test_generate_batch_equals_one_by_one(model):
    opts = GenerationOptions(max_new_tokens=12)
    batch = model.generate(CONVS, opts)
    single = [model.generate([c], opts)[0] for c in CONVS]
    assert len(batch) == 3
    assert all(isinstance(r, GenerationResult) for r in batch)
    assert [r.token_ids for r in batch] == [r.token_ids for r in single]
    assert [r.text for r in batch] == [r.text for r in single]
    assert [r.prompt_tokens for r in batch] == [r.prompt_tokens for r in single]
    # the outputs differ between conversations (the test would be vacuous otherwise)
    assert len({tuple(r.token_ids) for r in batch}) == 3
    for r in batch:
        assert r.finish_reason in ("stop", "length")
        assert r.completion_tokens == len(r.token_ids) <= 12
        if r.finish_reason == "length":
            assert r.completion_tokens == 12
    assert batch[2].transcripts == ["one", "two"]


def test_generate_single_conversation_and_overrides(model):
    a = model.generate(CONVS[0], max_new_tokens=5)
    b = model.generate([CONVS[0]], GenerationOptions(max_new_tokens=5))
    assert len(a) == 1 and a[0].token_ids == b[0].token_ids
    assert a[0].prompt_tokens == int(model.prepare([CONVS[0]]).inputs["attention_mask"].sum())


def test_generate_is_deterministic_and_seeded_sampling(model):
    g1 = model.generate(CONVS[0], max_new_tokens=6)[0].token_ids
    assert model.generate(CONVS[0], max_new_tokens=6)[0].token_ids == g1
    s = GenerationOptions(max_new_tokens=6, do_sample=True, temperature=1.5, seed=7)
    assert model.generate(CONVS[0], s)[0].token_ids == model.generate(CONVS[0], s)[0].token_ids


def test_generate_text_only_conversation(model):
    out = model.generate([[{"role": "user", "content": "Hello there"}]], max_new_tokens=4)
    assert out[0].transcripts == [] and out[0].completion_tokens <= 4


def test_generate_stop_string(model):
    full = model.generate(CONVS[0], max_new_tokens=12)[0]
    assert len(full.text) > 4
    stop = full.text[2:4]
    cut = model.generate(CONVS[0], max_new_tokens=12, stop=(stop,))[0]
    assert stop not in cut.text
    assert full.text.startswith(cut.text)
    assert cut.finish_reason == "stop"


def test_generate_bad_input(model):
    with pytest.raises(DeSTAError):
        model.generate([], max_new_tokens=2)
    with pytest.raises(DeSTAError, match="locator"):
        model.generate(
            [[{"role": "user", "content": "<|AUDIO|><|AUDIO|>", "audios": [{"audio": sine(0.2)}]}]],
            max_new_tokens=2,
        )


def test_stream_joins_to_generate_text(model):
    opts = GenerationOptions(max_new_tokens=12)
    expected = model.generate(CONVS[1], opts)[0].text
    pieces = list(model.stream(CONVS[1], opts))
    assert len(pieces) >= 2
    assert all(isinstance(p, str) and p for p in pieces)
    assert "".join(pieces).strip() == expected


def test_generation_options_validation():
    assert GenerationOptions().max_new_tokens == 512 and not GenerationOptions().do_sample
    for bad in (
        dict(max_new_tokens=0),
        dict(do_sample=True, temperature=0.0),
        dict(top_p=0.0),
        dict(top_p=1.5),
        dict(top_k=-1),
    ):
        with pytest.raises(DeSTAError):
            GenerationOptions(**bad)
    GenerationOptions(temperature=0.0)  # greedy ignores the temperature
    opts = GenerationOptions(stop=["a", "b"])
    assert opts.stop == ("a", "b")
    with pytest.raises(AttributeError):
        opts.max_new_tokens = 3  # frozen


def test_asr_runs_once_per_distinct_window_and_is_cached():
    """The same clip asked about twice in a batch and again later is transcribed once."""
    m = tiny_desta(seed=3, use_asr=True, use_vad=False)
    calls: list[int] = []

    class FakeTranscriber:
        def transcribe(self, encoder_states):
            calls.append(encoder_states.shape[0])
            return [f"words {k}" for k in range(encoder_states.shape[0])]

    m.generator.asr.decoder = FakeTranscriber()
    a, b = sine(1.0, 300.0), sine(1.0, 600.0)

    def conv(wave, q):
        return [{"role": "user", "content": f"<|AUDIO|>\n{q}", "audios": [{"audio": wave}]}]

    first = m.prepare([conv(a, "What?"), conv(b, "Who?"), conv(a, "Where?")])
    assert calls == [2]  # two distinct windows in one ASR batch
    assert first.transcripts[0] == first.transcripts[2] != first.transcripts[1]
    again = m.prepare([conv(b, "Again?")])
    assert calls == [2] and again.transcripts == [first.transcripts[1]]
    given = m.prepare([[{"role": "user", "content": "<|AUDIO|>", "audios": [{"audio": a, "text": "mine"}]}]])
    assert calls == [2] and given.transcripts == [["mine"]]  # a user transcript still wins

"""The training loop on tiny random backbones: it runs, learns, freezes what it must, resumes exactly,
skips bad rows, and its LoRA and distillation options train what they should."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import overrides, save_backbones, write_corpus

from desta.train import loop as loop_module
from desta.train.config import load_config
from desta.train.train import cosine_with_warmup, train


@pytest.fixture(scope="module")
def backbones(tmp_path_factory):
    return save_backbones(tmp_path_factory.mktemp("backbones"))


@pytest.fixture()
def corpus(tmp_path):
    return write_corpus(tmp_path / "data", n=16)


def run(backbones, corpus, out, resume=True, **extra):
    cfg = load_config(None, overrides(*backbones, corpus, out, **extra))
    return train(cfg, resume=resume)


def test_schedule_is_warmup_then_cosine_to_zero():
    assert cosine_with_warmup(0, 10, 100) == 0.0
    assert cosine_with_warmup(5, 10, 100) == pytest.approx(0.5)
    assert cosine_with_warmup(10, 10, 100) == pytest.approx(1.0)
    assert cosine_with_warmup(55, 10, 100) == pytest.approx(0.5)
    assert cosine_with_warmup(100, 10, 100) == pytest.approx(0.0)


def test_two_steps_write_logs_checkpoint_and_a_loadable_export(backbones, corpus, tmp_path):
    import desta

    out = tmp_path / "run"
    summary = run(backbones, corpus, out, optim__max_steps=2)
    assert summary["steps"] == 2 and len(summary["losses"]) == 2
    assert all(torch.isfinite(torch.tensor(summary["losses"])))
    logs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logs] == [1, 2]
    assert {"train/loss", "train/lr", "train/grad_norm", "train/tokens_per_s"} <= set(logs[0])
    assert logs[0]["train/lr"] == 0.0 and logs[1]["train/lr"] > 0  # warmup starts at zero
    assert (out / "checkpoint" / "state.pt").exists() and not (out / "checkpoint.tmp").exists()
    export = out / "model"
    cfg = json.loads((export / "config.json").read_text())
    assert cfg["untrained"] is False and cfg["info"]["trained_steps"] == 2
    assert cfg["name"] == "run" and cfg["architectures"] == ["DeSTAModel"]  # named after its run folder
    assert (export / "tokenizer_config.json").exists() and (export / "README.md").exists()  # HF layout
    state = load_file(str(export / "model.safetensors"))
    assert state and all(k.startswith("perception.connector.") for k in state)
    model = desta.load_model(str(export))
    assert not model.config.untrained
    for k, v in model.adapter_state_dict().items():
        torch.testing.assert_close(v, state[k])


def test_only_the_connector_changes_and_the_loss_falls(backbones, corpus, tmp_path):
    from desta.model.load import build_model

    cfg = load_config(None, overrides(*backbones, corpus, tmp_path / "o", optim__epochs=12, optim__lr=2e-2))
    before = build_model(cfg.model.replace(untrained=True), seed=cfg.run.seed)
    summary = train(cfg)
    losses = summary["losses"]
    assert len(losses) == 12 * 4
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    # a frozen random LLM steered only through 4 soft-prompt vectors: ~11.4 -> ~8.7 nats (chance 10.8)
    assert last < first - 2.0, (first, last)
    import desta

    after = desta.load_model(str(tmp_path / "o" / "model"))
    for (name, p0), p1 in zip(before.llm_model.named_parameters(), after.llm_model.parameters()):
        torch.testing.assert_close(p0, p1, msg=f"LLM weight {name} changed")
    enc0 = before.perception.whisper.model.encoder.state_dict()
    for name, p1 in after.perception.whisper.model.encoder.state_dict().items():
        torch.testing.assert_close(enc0[name], p1, msg=f"Whisper weight {name} changed")
    changed = [
        k
        for k, v in after.adapter_state_dict().items()
        if not torch.allclose(v, before.adapter_state_dict()[k])
    ]
    assert len(changed) == len(after.adapter_state_dict())  # every connector tensor was trained


def stop_after_saving(monkeypatch, at_step: int) -> None:
    """Make the run stop (as a preemption would) right after its checkpoint of ``at_step``."""
    real_save = loop_module.save_checkpoint

    def save_then_stop(out, model, optimizer, position, *args):
        adapter = real_save(out, model, optimizer, position, *args)
        if position.step == at_step:
            raise KeyboardInterrupt("simulated preemption")
        return adapter

    monkeypatch.setattr(loop_module, "save_checkpoint", save_then_stop)


# the recipe's Q-Former dropout (0.1) and LoRA with its dropout (0.1): masks must be the same after a
# resume. Step 4 is the last step of the first epoch (4 steps per epoch), step 5 one inside the second.
# The LoRA case also caches encoder outputs, as the tiny recipe does (a resumed run starts with an empty
# cache, so the encoder must not draw random numbers).
RESUME_CASES = {
    "qformer-dropout-mid-epoch": (5, dict(model__qformer_dropout=0.1)),
    "qformer-dropout-epoch-end": (4, dict(model__qformer_dropout=0.1)),
    "lora-dropout-mid-epoch": (
        6,
        dict(
            model__qformer_dropout=0.1,
            model__use_lora=True,
            model__lora_dropout=0.1,
            data__cache_encoder_outputs=True,
        ),
    ),
}


@pytest.mark.parametrize("case", list(RESUME_CASES), ids=list(RESUME_CASES))
def test_resume_reproduces_the_uninterrupted_run_bit_for_bit(backbones, corpus, tmp_path, monkeypatch, case):
    at, extra = RESUME_CASES[case]
    kw = dict(optim__epochs=3, run__save_every=1, **extra)
    straight = run(backbones, corpus, tmp_path / "straight", **kw)["losses"]
    assert len(straight) == 12

    stop_after_saving(monkeypatch, at)
    with pytest.raises(KeyboardInterrupt):
        run(backbones, corpus, tmp_path / "cut", **kw)
    monkeypatch.undo()
    resumed = run(backbones, corpus, tmp_path / "cut", **kw)
    assert resumed["steps"] == 12
    assert resumed["losses"] == straight[at:]  # exact floats: the same dropout masks, the same order
    a = load_file(str(tmp_path / "straight" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    steps = [json.loads(line)["step"] for line in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 13))  # each step logged once


def test_dropout_is_really_on_in_the_resume_cases(backbones, corpus, tmp_path):
    """Guards the test above: with dropout off the losses differ, so the masks were really drawn."""
    kw = dict(optim__max_steps=2)
    plain = run(backbones, corpus, tmp_path / "a", **kw)["losses"]
    dropped = run(backbones, corpus, tmp_path / "b", model__qformer_dropout=0.1, **kw)["losses"]
    assert plain[0] != dropped[0]


def test_missing_and_broken_audio_are_skipped_and_counted(backbones, corpus, tmp_path):
    rows = [json.loads(line) for line in corpus.read_text().splitlines()]
    rows[0]["messages"][1]["audios"][0]["audio"] = "audio/does-not-exist.wav"
    (corpus.parent / "audio" / "broken.wav").write_bytes(b"RIFF not really a wav")
    rows[1]["messages"][1]["audios"][0]["audio"] = "audio/broken.wav"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = run(backbones, corpus, tmp_path / "o", data__length_bucketing=False)
    assert summary["skipped"].get("missing audio file") == 1
    assert sum(n for r, n in summary["skipped"].items() if r.startswith("unreadable audio")) == 1
    assert summary["steps"] == 4


def test_a_run_where_every_row_is_skipped_stops_with_the_reasons(backbones, corpus, tmp_path):
    from desta.errors import DeSTAError

    with pytest.raises(DeSTAError, match="no usable training rows.*16 longer than max_seq_length"):
        run(backbones, corpus, tmp_path / "o", data__max_seq_length=8)


def test_lora_trains_only_lora_and_connector(backbones, corpus, tmp_path):
    import desta

    summary = run(
        backbones,
        corpus,
        tmp_path / "o",
        optim__max_steps=3,
        model__use_lora=True,
        model__lora_target_modules=["q_proj", "v_proj"],
    )
    assert summary["steps"] == 3
    state = load_file(str(tmp_path / "o" / "model" / "model.safetensors"))
    lora = [k for k in state if "lora_" in k]
    assert lora and all("q_proj" in k or "v_proj" in k for k in lora)
    assert any(
        float(state[k].abs().sum()) > 0 for k in lora if "lora_B" in k
    )  # B starts at zero, so it moved
    assert all(k.startswith("perception.connector.") or "lora_" in k for k in state)
    model = desta.load_model(str(tmp_path / "o" / "model"))
    for k, v in model.adapter_state_dict().items():
        torch.testing.assert_close(v, state[k])


def test_distillation_adds_a_finite_kl_term(backbones, corpus, tmp_path):
    plain = run(backbones, corpus, tmp_path / "a", optim__max_steps=2)["losses"]
    mixed = run(backbones, corpus, tmp_path / "b", optim__max_steps=2, distill__alpha=0.5)["losses"]
    assert all(torch.isfinite(torch.tensor(mixed)))
    assert mixed[0] != pytest.approx(plain[0])  # the KL term is really part of the loss


def test_distill_loss_is_zero_when_student_equals_teacher(backbones, tmp_path):
    """With the audio slot holding exactly the teacher's text, the KL is zero: the term measures only
    the difference between audio and text prompts."""
    from desta.model.load import build_model
    from desta.train.train import distill_loss

    cfg = load_config(None, overrides(*backbones, tmp_path / "x.jsonl", tmp_path / "o"))
    model = build_model(cfg.model)
    proc = model.processor
    seed = "[00:00-00:01] (Pitch: High)"
    row = {
        "messages": [{"role": "user", "content": "<|AUDIO|>\nPitch?", "audios": [{"audio": "x.wav"}]}],
        "response": "High.",
        "seed_description": seed,
    }
    msgs = [{"role": "user", "content": proc.start_audio + seed + proc.end_audio + "\nPitch?"}]
    enc = proc.encode(msgs, [], row["response"], None)
    ids = torch.tensor([enc.input_ids])
    hidden = model.llm_model.model(input_ids=ids).last_hidden_state
    item = type("Item", (), {"row": row})()
    kl = distill_loss(model, {"items": [item], "labels": torch.tensor([enc.labels])}, hidden, 1.0)
    assert float(kl) == pytest.approx(0.0, abs=1e-5)


def test_validation_answers_fixed_rows_and_logs_them(backbones, corpus, tmp_path):
    out = tmp_path / "o"
    summary = run(
        backbones, corpus, out, optim__max_steps=2, data__validation=str(corpus), run__validate_every=1,
        run__validation_samples=2, run__tensorboard=True,
    )  # fmt: skip
    samples = summary["validation"]
    assert len(samples) == 2
    for s in samples:
        assert s["prompt"].endswith("Is the tone high or low?") and s["reference"].startswith("The tone is")
        assert isinstance(s["prediction"], str) and not s["prediction"].startswith("<error")
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))


def test_init_from_starts_at_a_trained_adapter_and_refuses_another_architecture(backbones, corpus, tmp_path):
    from desta.errors import ConfigError
    from desta.train.train import build_for_training

    first = tmp_path / "first"
    run(backbones, corpus, first, optim__max_steps=2, optim__lr=1e-2)
    trained = load_file(str(first / "model" / "model.safetensors"))
    cfg = load_config(None, overrides(*backbones, corpus, tmp_path / "second", run__init_from=str(first / "model")))
    model = build_for_training(cfg, torch.device("cpu"), use_bf16=False)
    got = model.adapter_state_dict()
    assert set(got) == set(trained)
    assert all(torch.equal(got[k].float(), trained[k].float()) for k in trained)  # the trained weights, not a fresh init
    fresh = build_for_training(load_config(None, overrides(*backbones, corpus, tmp_path / "x")), torch.device("cpu"), False)
    assert any(not torch.equal(fresh.adapter_state_dict()[k], trained[k]) for k in trained)

    other = load_config(None, overrides(*backbones, corpus, tmp_path / "third", run__init_from=str(first / "model"),
                                        model__prompt_size=3))  # fmt: skip
    with pytest.raises(ConfigError, match=r"run.init_from=.*first.*prompt_size: 4 there, 3 here"):
        build_for_training(other, torch.device("cpu"), use_bf16=False)
    missing = load_config(None, overrides(*backbones, corpus, tmp_path / "fourth", run__init_from=str(tmp_path / "nope")))
    with pytest.raises(ConfigError, match=r"run.init_from=.*nope.*no such folder"):
        build_for_training(missing, torch.device("cpu"), use_bf16=False)


def test_an_epochs_incomplete_accumulation_does_not_leak_into_the_next_epoch(backbones, tmp_path, monkeypatch):
    # 12 rows in batches of 4 with grad_accum=2: each epoch has 3 micro-batches, one optimizer step and
    # one micro-batch left over; its gradients used to be added to the next epoch's first step
    corpus = write_corpus(tmp_path / "data", n=12)
    starts: list[bool] = []
    real = loop_module.run_epoch

    def checked(t, pos, batches, meter, pbar):
        starts.append(all(p.grad is None or not p.grad.any() for p in t.trainable))
        return real(t, pos, batches, meter, pbar)

    monkeypatch.setattr(loop_module, "run_epoch", checked)
    summary = run(backbones, corpus, tmp_path / "run", optim__grad_accum=2, optim__epochs=3, data__length_bucketing=False)
    assert summary["steps"] == 3 and len(starts) == 3
    assert all(starts), f"gradients left over at the start of epochs: {starts}"

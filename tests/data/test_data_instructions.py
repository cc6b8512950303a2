"""The packaged instruction pool: size, no duplicates, categories, seeded sampling, kind filtering."""

from __future__ import annotations

import json
import random
import re

import pytest

from desta.data.instructions import PACKAGED, Instruction, InstructionPool, normalize_text
from desta.errors import DeSTAError

CATEGORY_MINIMUM = {
    "compound": 30,
    "description": 150,
    "content": 150,
    "speaker": 100,
    "paralinguistic": 200,
    "sound": 150,
    "music": 150,
    "reasoning": 150,
    "format": 500,
    "mcq": 40,  # lettered multiple-choice questions (gender, language) with verified answers
}


@pytest.fixture(scope="module")
def pool() -> InstructionPool:
    return InstructionPool.load()


def test_packaged_files_have_no_duplicates_and_enough_rows():
    keys = []
    for f in sorted(PACKAGED.glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            assert {"text", "category", "kinds"} <= set(row) <= {"text", "category", "kinds", "requires", "parts"}
            assert row["category"] == f.stem
            keys.append(normalize_text(row["text"]))
    assert len(keys) == len(set(keys)) >= 2000


def test_pool_size_and_categories(pool):
    assert len(pool) >= 2000
    assert pool.categories() == sorted(CATEGORY_MINIMUM)
    counts = {c: sum(1 for i in pool if i.category == c) for c in CATEGORY_MINIMUM}
    for category, minimum in CATEGORY_MINIMUM.items():
        assert counts[category] >= minimum, (category, counts[category])


def test_texts_are_clean_sentences(pool):
    for ins in pool:
        assert ins.text == " ".join(ins.text.split())
        assert ins.text[0].isupper() or ins.text[0] in "\"'", ins.text
        if ins.category == "mcq":  # a lettered question ends with its last option
            assert re.search(r"\([a-h]\) [^()]+$", ins.text), ins.text
        else:
            assert ins.text[-1] in ".?!'\"", ins.text
        assert "  " not in ins.text and "{" not in ins.text.replace('{"', "")
        assert not re.search(r"\b(\w+) \1\b", ins.text.lower()), ins.text  # no doubled words


def test_kinds_are_respected(pool):
    assert all(i.category != "music" or i.kinds == ("music",) for i in pool)
    assert all(
        i.category not in ("content", "speaker", "paralinguistic") or i.kinds == ("speech",) for i in pool
    )
    for kind in ("speech", "sound", "music"):
        for seed in range(200):
            assert kind in pool.sample(seed, kind=kind).kinds
    assert len(pool.for_kind("sound")) >= 400 and len(pool.for_kind("music")) >= 400


def test_format_constrained_examples_present(pool):
    texts = {i.text for i in pool}
    assert "Describe the audio. Answer in exactly three bullet points." in texts
    assert "Describe the speaker. Use fewer than 20 words." in texts
    assert "Is the speaker female? Start your answer with 'Yes' or 'No'." in texts
    assert any("Reply in JSON with keys" in t for t in texts)


def test_sampling_is_deterministic_by_seed(pool):
    a = [pool.sample(s, kind="speech").text for s in range(50)]
    b = [pool.sample(s, kind="speech").text for s in range(50)]
    assert a == b and len(set(a)) > 40
    rng1, rng2 = random.Random(3), random.Random(3)
    assert [pool.sample(rng1, "sound") for _ in range(5)] == [pool.sample(rng2, "sound") for _ in range(5)]
    many = pool.sample_many(30, seed=11, kind="music")
    assert many == pool.sample_many(30, seed=11, kind="music")
    assert len(many) == 30 and len({i.text for i in many}) == 30
    assert pool.sample_many(30, seed=12, kind="music") != many


def test_sample_many_repeats_only_after_exhausting(tmp_path):
    f = tmp_path / "p.jsonl"
    rows = [{"text": f"Prompt number {i}.", "category": "x", "kinds": ["sound"]} for i in range(3)]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    small = InstructionPool.load(f)
    out = small.sample_many(7, seed=0, kind="sound")
    assert len(out) == 7 and len({i.text for i in out[:3]}) == 3
    with pytest.raises(DeSTAError, match="no instruction"):
        small.sample(0, kind="speech")


def test_category_filter_and_bad_kind(pool):
    assert pool.sample(5, kind="speech", category="paralinguistic").category == "paralinguistic"
    with pytest.raises(DeSTAError, match="unknown audio kind"):
        pool.sample(0, kind="video")


def test_dedup_on_normalised_text():
    pool = InstructionPool(
        [
            Instruction("Describe the audio.", "description", ("speech",)),
            Instruction("describe   the AUDIO", "description", ("sound",)),
            Instruction("What is said?", "content", ("speech",)),
        ]
    )
    assert len(pool) == 2 and pool.sample(0, kind="sound").text == "Describe the audio."


def test_bad_files_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "Hi.", "category": "x", "kinds": ["video"]}\n')
    with pytest.raises(DeSTAError, match="bad.jsonl:1: kinds"):
        InstructionPool.load(bad)
    with pytest.raises(DeSTAError, match="no such file"):
        InstructionPool.load(tmp_path / "nope.jsonl")

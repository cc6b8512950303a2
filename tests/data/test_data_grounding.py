"""Verified self-generation: grounding checks, compound questions answered part by part, resampling,
trimming, and the weighted task mix."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from desta.data.backends import FakeBackend
from desta.data.cli import parse_weights
from desta.data.filters import FilterConfig, screen_response
from desta.data.generate import build_request
from desta.data.grounding import grounding_failure, stated_gender, transcript_recall
from desta.data.instructions import Instruction, InstructionPart, InstructionPool
from desta.data.pipeline import GenerateConfig, attempt_seed, process_requests, run_generation, shard_paths
from desta.data.records import AudioRecord, read_jsonl
from desta.data.report import build_report
from desta.errors import DeSTAError

MAN = AudioRecord("m1", "a.wav", "Toy", transcript="The dog barked at the mailman.", attributes={"Gender": "Male", "Language": "English"})
WOMAN_ZH = AudioRecord("w1", "b.wav", "Toy", transcript="这个周末我们去山里露营。", attributes={"Gender": "Female", "Language": "Chinese"})
SOUND = AudioRecord("s1", "c.wav", "Toy", kind="sound", caption="a dog barks")


def describe(rec: AudioRecord) -> str:
    return f"[00:00-00:02] {rec.transcript} (Gender: {rec.attributes.get('Gender', '')})"


def test_transcript_recall_counts_words_and_cjk_characters():
    assert transcript_recall('He said "The dog barked at the mailman."', MAN.transcript) == 1.0
    assert transcript_recall("A dog barked.", MAN.transcript) == pytest.approx(2 / 6)
    assert transcript_recall("说的是：这个周末我们去山里露营。", WOMAN_ZH.transcript) == 1.0
    assert transcript_recall("周末", WOMAN_ZH.transcript) == pytest.approx(2 / 11)
    assert transcript_recall("anything", "") == 1.0


def test_grounding_failures_name_the_unmet_fact():
    both = ["transcript", "gender"]
    assert grounding_failure('The speaker says "The dog barked at the mailman." It is a man.', MAN, both) is None
    assert grounding_failure("The speaker is a man.", MAN, both) == "missing_transcript"
    assert grounding_failure("The dog barked at the mailman.", MAN, both) == "missing_gender"
    assert grounding_failure("The dog barked at the mailman. A woman speaks.", MAN, both) == "wrong_gender"
    assert grounding_failure("The dog barked at the mailman. A man, not a woman.", MAN, both) == "wrong_gender"
    # "mailman" inside the quoted transcript is not a gender word, "man" in it would not count either
    assert stated_gender("The man went home. She said it.", "The man went home.") == set()
    assert grounding_failure("The speaker uses English.", MAN, ["language"]) is None
    assert grounding_failure("The speaker uses French.", MAN, ["language"]) == "missing_language"
    # facts the record has no label for are not checked
    assert grounding_failure("A dog.", SOUND, ["transcript", "gender", "language"]) is None
    with pytest.raises(DeSTAError, match="unknown grounding facts"):
        grounding_failure("x", MAN, ["mood"])


def test_screen_response_trims_then_checks_grounding():
    cfg = FilterConfig(drop_truncated=False, trim_truncated=True)
    text, why = screen_response("The speaker is a man. He talks about the dog and the", "length", cfg, record=MAN, requires=["gender"])
    assert (text, why) == ("The speaker is a man.", None)
    assert screen_response("no sentence end at all", "length", cfg)[1] == "truncated"
    assert screen_response("The speaker is a woman.", "stop", cfg, record=MAN, requires=["gender"])[1] == "wrong_gender"
    assert screen_response("The speaker is a woman.", "stop", cfg, record=MAN)[1] is None  # nothing required
    assert screen_response("cut off here", "length", FilterConfig())[1] == "truncated"  # default: drop


def write_pool(tmp_path, rows) -> InstructionPool:
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return InstructionPool.load(path)


COMPOUND = {
    "text": "What is said, and is the speaker a man or a woman?",
    "category": "compound",
    "kinds": ["speech"],
    "requires": ["transcript", "gender"],
    "parts": [
        {"text": "What sentence does the speaker say?", "requires": ["transcript"]},
        {"text": "Is the speaker a man or a woman?", "requires": ["gender"]},
    ],
}


def test_pool_reads_requires_and_parts_and_rejects_bad_rows(tmp_path):
    pool = write_pool(tmp_path, [COMPOUND, {"text": "Describe it.", "category": "description", "kinds": ["speech"]}])
    ins = pool.for_kind("speech", "compound")[0]
    assert ins.requires == ("transcript", "gender")
    assert ins.parts == (
        InstructionPart("What sentence does the speaker say?", ("transcript",)),
        InstructionPart("Is the speaker a man or a woman?", ("gender",)),
    )
    with pytest.raises(DeSTAError, match=r"pool.jsonl:1: requires must be"):
        write_pool(tmp_path, [{**COMPOUND, "requires": ["mood"]}])
    with pytest.raises(DeSTAError, match="two or more parts"):
        write_pool(tmp_path, [{**COMPOUND, "parts": COMPOUND["parts"][:1]}])
    packaged = InstructionPool.load()
    assert all(len(i.parts) >= 2 for i in packaged.for_kind("speech", "compound"))
    assert any(i.requires == ("transcript",) for i in packaged.for_kind("speech", "content"))


def test_weighted_sampler_sets_the_task_mix():
    pool = InstructionPool.load()
    sampler = pool.weighted({"compound": 3, "format": 0})
    rng = random.Random(0)
    counts = Counter(sampler.sample(rng, "speech").category for _ in range(4000))
    cats = sorted({i.category for i in pool.for_kind("speech")})
    total_weight = 3 + (len(cats) - 2)  # compound 3, format 0, the others 1
    assert counts["format"] == 0
    assert counts["compound"] / 4000 == pytest.approx(3 / total_weight, abs=0.03)
    assert counts["content"] / 4000 == pytest.approx(1 / total_weight, abs=0.03)
    assert sampler.sample(5, "speech") == sampler.sample(5, "speech")  # seeded
    assert "compound" not in {sampler.sample(rng, "sound").category for _ in range(200)}  # speech only
    with pytest.raises(DeSTAError, match="not in the pool"):
        pool.weighted({"compund": 2})
    with pytest.raises(DeSTAError, match=">= 0"):
        pool.weighted({"compound": -1})
    with pytest.raises(DeSTAError, match="weight 0"):
        pool.weighted({c: 0 for c in pool.categories()}).sample(1, "music")


def test_parse_weights_cli_errors():
    assert parse_weights(["compound=3", " format = 0.5"]) == (("compound", 3.0), ("format", 0.5))
    assert parse_weights(None) == ()
    for bad in ("compound", "compound=x", "=2", "format=-1"):
        with pytest.raises(DeSTAError, match="CATEGORY=WEIGHT"):
            parse_weights([bad])


class OnePool:
    def __init__(self, ins: Instruction) -> None:
        self.ins = ins

    def sample(self, seed, kind="speech"):
        return self.ins


def compound_instruction() -> Instruction:
    return Instruction(
        COMPOUND["text"], "compound", ("speech",), ("transcript", "gender"),
        tuple(InstructionPart(p["text"], tuple(p["requires"])) for p in COMPOUND["parts"]),
    )  # fmt: skip


def test_compound_request_is_answered_part_by_part_and_joined():
    req = build_request(MAN, 0, seed=1, pool=OnePool(compound_instruction()), describe=describe)
    asked = []

    def reply(conv):
        q = conv[-1]["content"].split("\n")[-1]
        asked.append(q)
        return 'The speaker says "The dog barked at the mailman."' if "sentence" in q else "The speaker is a man."

    out = process_requests([req], FakeBackend(reply=reply), GenerateConfig(progress=False))
    assert asked == ["What sentence does the speaker say?", "Is the speaker a man or a woman?"]
    assert [r["response"] for r in out.rows] == ['The speaker says "The dog barked at the mailman." The speaker is a man.']
    row = out.rows[0]
    assert row["prompt"] == COMPOUND["text"] and COMPOUND["text"] in row["messages"][-1]["content"]
    assert row["meta"]["parts"] == [p["text"] for p in COMPOUND["parts"]] and row["meta"]["attempts"] == 2


def test_failed_answers_are_resampled_with_new_seeds_then_rejected():
    req = build_request(MAN, 0, seed=1, pool=OnePool(compound_instruction()), describe=describe)
    seeds: list[tuple[str, int]] = []

    class Flaky(FakeBackend):
        def generate(self, batch, params):
            for conv, p in zip(batch, params):
                seeds.append((conv[-1]["content"].split("\n")[-1], p.seed))
            return super().generate(batch, params)

    def reply_after(n):
        calls = Counter()

        def reply(conv):
            q = conv[-1]["content"].split("\n")[-1]
            calls[q] += 1
            if "sentence" in q:
                return "The dog barked at the mailman." if calls[q] > n else "Something about a dog."
            return "The speaker is a woman." if calls[q] == 1 else "The speaker is a man."

        return reply

    cfg = GenerateConfig(progress=False, resample=2, resample_temperature=0.9)
    out = process_requests([req], Flaky(reply=reply_after(2)), cfg)
    assert [r["response"] for r in out.rows] == ["The dog barked at the mailman. The speaker is a man."]
    assert out.rows[0]["meta"]["attempts"] == 5  # 3 tries of the content part, 2 of the gender part
    first = [s for q, s in seeds if "sentence" in q]
    assert first[0] == req.seed == attempt_seed(req.seed, 0, 0) and len(set(first)) == 3

    seeds.clear()
    out = process_requests([req], Flaky(reply=reply_after(5)), cfg)
    assert out.rows == [] and [r["reason"] for r in out.rejects] == ["filter:missing_transcript"]
    assert out.rejects[0]["response"] == "Something about a dog."


def test_run_generation_with_weights_and_resampling_resumes(tmp_path):
    """A real pool with compound questions: every kept row states its required facts, and a rerun
    finds everything finished (resampled tries are cached under their own seeds)."""
    records = [MAN.with_(id=f"m{i}") for i in range(6)] + [WOMAN_ZH.with_(id=f"w{i}") for i in range(6)]

    def reply(conv):
        text = conv[-1]["content"]
        gender = "man" if "Gender: Male" in text else "woman"
        transcript = text.split("] ", 1)[1].split(" (Gender")[0]
        return f'The speaker says "{transcript}". The speaker is a {gender}, speaking English or Chinese.'

    cfg = GenerateConfig(progress=False, resample=1, category_weights=(("compound", 100.0),), batch_size=5)
    out = tmp_path / "gen"
    s1 = run_generation(records, out, FakeBackend(reply=reply), cfg, describe=describe)
    rows = [r for p in shard_paths(out) for r in read_jsonl(p)]
    assert s1.written == len(rows) > 6
    assert sum(bool(r["meta"].get("parts")) for r in rows) >= 6  # the weight made compound questions common
    for row in rows:
        rec = MAN if row["id"].startswith("m") else WOMAN_ZH
        req = row["meta"].get("parts", [])
        assert grounding_failure(row["response"], rec, ["transcript", "gender"]) is None or not req
    report = build_report(out, plots=False)
    assert sum(report["answers_per_row"].values()) == s1.written and "2" in report["answers_per_row"]
    s2 = run_generation(records, out, FakeBackend(reply=reply), cfg, describe=describe)
    assert (s2.skipped, s2.written, s2.backend_calls) == (12, 0, 0)
    with pytest.raises(DeSTAError, match="not in the pool"):
        run_generation(records, tmp_path / "bad", FakeBackend(), GenerateConfig(progress=False, category_weights=(("nope", 1.0),)))
    assert not (tmp_path / "bad").exists()  # a bad setting fails before any output is written

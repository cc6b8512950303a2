"""desta-tiny's real-data recipe: lettered questions from labels, their verification, and scoring."""

from __future__ import annotations

import random

from desta.data.grounding import grounding_failure, stated_emotions
from desta.data.instructions import InstructionPool
from desta.data.records import AudioRecord
from desta.recipes.tiny.mcq import score_mcq
from desta.recipes.tiny.real import (
    OPEN_WEIGHTS,
    LabelQuestions,
    heldout_items,
    label_tasks,
    make_mcq,
    score_real_item,
)
from desta.recipes.tiny.rows import verify_mcq_rows

SPEECH = AudioRecord("ravdess/a", "/a.ogg", "realdata", duration=1.0, transcript="Kids are talking by the door.",
                     attributes={"Language": "English", "Gender": "Female", "Emotion": "Angry"}, language="en")  # fmt: skip
CAT = AudioRecord("catmeows/d", "/d.ogg", "realdata", duration=1.0, caption="a cat meowing",
                  attributes={"Animal": "Cat"}, kind="sound")  # fmt: skip


def test_label_tasks_and_four_option_questions_hold_the_gold_once():
    assert label_tasks(SPEECH) == [("gender", "female"), ("emotion", "angry"), ("language", "English")]
    assert label_tasks(CAT) == [("animal", "cat")]
    golds = set()
    for seed in range(40):
        for task, gold in label_tasks(SPEECH) + label_tasks(CAT):
            q = make_mcq(task, gold, random.Random(seed))
            assert len(q.options) == (2 if task == "gender" else 4)
            assert q.options[q.gold].lower() == gold.lower()
            golds.add((task, q.gold))
    assert {g for t, g in golds if t == "emotion"} == {0, 1, 2, 3}  # the gold's place is shuffled


def test_sampler_asks_lettered_questions_with_their_grounding_fact():
    sampler = LabelQuestions(InstructionPool.load().weighted(dict(OPEN_WEIGHTS)), mcq_fraction=0.6)
    drawn = [sampler.sample_for(SPEECH, s) for s in range(200)]
    mcq = [i for i in drawn if i.category == "mcq"]
    assert 90 < len(mcq) < 150
    assert {i.requires for i in mcq} == {("gender",), ("emotion",), ("language",)}
    assert all("(a)" in i.text for i in mcq) and not any("(a)" in i.text for i in drawn if i.category != "mcq")
    assert sampler.sample_for(SPEECH, 3) == sampler.sample_for(SPEECH, 3)  # seeded


def test_emotion_and_animal_grounding_facts():
    assert stated_emotions("The speaker sounds angry, not sad.") == {"angry", "sad"}
    assert grounding_failure("(c) angry", SPEECH, ("emotion",)) is None
    assert grounding_failure("(a) happy (c) angry", SPEECH, ("emotion",)) == "wrong_emotion"
    assert grounding_failure("The speaker is calm.", SPEECH, ("emotion",)) == "wrong_emotion"
    assert grounding_failure("It is a recording.", SPEECH, ("emotion",)) == "missing_emotion"
    assert grounding_failure("Two cats meowing.", CAT, ("animal",)) is None
    assert grounding_failure("A dog barks.", CAT, ("animal",)) == "missing_animal"


def _row(record: AudioRecord, prompt: str, response: str) -> dict:
    return {"id": record.id, "prompt": prompt, "response": response, "meta": {"key": f"{record.corpus}/{record.id}#0"}}


def test_verify_drops_lettered_emotion_and_animal_answers_that_are_not_the_gold():
    q = "What emotion does the speaker express? (a) happy (b) angry (c) sad (d) calm"
    a = "Which animal makes this sound? (a) dog (b) cow (c) cat (d) frog"
    rows = [_row(SPEECH, q, "(b) angry"), _row(SPEECH, q, "(c) sad"), _row(CAT, a, "The animal is a cat."),
            _row(CAT, a, "(a) dog")]  # fmt: skip
    kept, dropped = verify_mcq_rows(rows, {SPEECH.id: SPEECH, CAT.id: CAT})
    assert [r["response"] for r in kept] == ["(b) angry", "The animal is a cat."]
    assert len(dropped) == 2


def test_scoring_open_emotion_animal_and_the_two_part_question():
    items = heldout_items([SPEECH, CAT], per_class=3)
    by = {(it["task"], it["format"]): it for it in items}
    assert set(by) >= {("gender", "mcq"), ("emotion", "open"), ("animal", "mcq"), ("two-part", "open")}
    assert score_real_item(by[("emotion", "open")], "The speaker sounds angry.")["correct"]
    assert not score_real_item(by[("emotion", "open")], "Angry or sad.")["correct"]
    assert score_real_item(by[("animal", "open")], "A cat is meowing.")["correct"]
    two = by[("two-part", "open")]
    assert score_real_item(two, 'The speaker says "Kids are talking by the door." She is a woman.')["correct"]
    quoted = score_real_item(two, "The speaker says, what is said, and is the speaker a man or a woman?")
    assert quoted["quoted_back"] and not quoted["correct"]
    mcq = by[("animal", "mcq")]
    ok, n = score_mcq(f"({mcq['mcq'].gold_letter}) cat", mcq["mcq"])
    assert ok and n == 1 and score_real_item(mcq, f"({mcq['mcq'].gold_letter}) cat")["correct"]


def test_real_model_card_shows_the_figures_and_the_licences():
    from desta.recipes.tiny import REAL_OPTIONS, TinyOptions
    from desta.recipes.tiny.real_card import real_model_card

    opts = TinyOptions(**REAL_OPTIONS, realdata="/data/realdata")
    summary = {"real-heldout/gender/mcq": {"accuracy": 96.7, "n": 60}, "all/mcq/one-option": {"accuracy": 99.0, "n": 300}}
    report = {"results": {"rows": {"generated": 10, "mcq_dropped": 2, "rows": 8, "mcq_rows": 5},
                          "trained": summary, "before": {"real-heldout/gender/mcq": {"accuracy": 41.0, "n": 60}}},
              "timings_s": {"data": 600.0, "train": 1200.0}, "options": opts.__dict__}  # fmt: skip
    ifr = {"rate": 0.25, "n": 48}
    report["results"]["trained"].update(instruction_following=ifr, example={
        "question": "What is said?", "transcripts": ["Hello."], "answer": 'The speaker says "Hello."'})
    report["results"]["before"]["instruction_following"] = {"rate": 0.5, "n": 48}
    report["results"]["text_backbone"] = {"instruction_following": {"rate": 0.3, "n": 48}}
    card = real_model_card(report)
    assert "| instruction following (format checks, held-out English clips) | 25% (n=48) | 50% (n=48) |" in card
    assert "passes 30% (n=48)" in card and '> The speaker says "Hello."' in card
    assert "| gender, lettered (2 options) | 97% (n=60) | 41% (n=60) |" in card
    assert "| lettered answers naming exactly one option | 99% (n=300) | - |" in card
    assert "non-commercial" in card and "CC BY-NC-SA 4.0" in card and "Zenodo 1188976" in card
    assert "10 generated, 2 lettered answers dropped, 8 trained on (5 lettered)" in card
    assert "data 10 min, train 20 min" in card


def test_open_questions_are_drawn_from_every_weighted_category():
    """The lettered/open decision must not bias which open category is drawn (it once reused the seed,
    so compound and content questions, the README's kind, were never asked)."""
    from collections import Counter

    from desta.recipes.tiny.real import CONTENT_WEIGHTS

    sampler = LabelQuestions(InstructionPool.load().weighted(dict(OPEN_WEIGHTS)), mcq_fraction=0.6)
    cats = Counter(sampler.sample_for(SPEECH, s).category for s in range(600))
    weighted = {c for c, w in OPEN_WEIGHTS if w > 0}
    assert weighted <= set(cats), f"never drawn: {weighted - set(cats)}"
    assert cats["compound"] > cats["reasoning"]  # weight 2 vs 0.3
    content = InstructionPool.load().weighted(dict(CONTENT_WEIGHTS))
    assert {content.sample(s, kind="speech").category for s in range(100)} == {"compound", "content"}

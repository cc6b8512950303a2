"""Lettered multiple-choice questions: building, parsing and reading which options an answer chooses."""

from __future__ import annotations

import random

import pytest

from desta.errors import DeSTAError
from desta.recipes.tiny.mcq import MCQ, build_mcq, chosen_options, gender_mcq, parse_mcq, score_mcq


def _gender(order=("male", "female"), gold="female") -> MCQ:
    q = gender_mcq(gold, random.Random(0))
    return MCQ(q.stem, order, order.index(gold), tuple(q.aliases[q.options.index(o)] for o in order))


def test_question_text_is_the_benchmark_format():
    q = _gender()
    assert q.text == "What is the gender of the speaker? (a) male (b) female" and q.gold_letter == "b"


@pytest.mark.parametrize(
    ("answer", "chosen", "correct"),
    [
        ("(b) female", {1}, True),
        ("The speaker is female.", {1}, True),
        ("The speaker is a woman.", {1}, True),  # alias
        ("b) Female", {1}, True),
        ("B. female", {1}, True),
        ("The answer is (a).", {0}, False),
        ("The speaker is male.", {0}, False),  # "male" never matches inside "female" and vice versa
        ("(a) male (b) female", {0, 1}, False),  # restating the options chooses both
        ("A woman speaks.", {1}, True),  # a leading article is not the letter a
        ("I cannot tell.", set(), False),
    ],
)
def test_chosen_options_and_score(answer, chosen, correct):
    q = _gender()
    assert chosen_options(answer, q) == chosen
    assert score_mcq(answer, q) == (correct, len(chosen))


def test_letters_beyond_the_options_are_ignored():
    q = _gender()
    assert chosen_options("(d) female", q) == {1}


def test_build_mcq_is_deterministic_and_keeps_gold():
    pool = ["English", "French", "German", "Italian", "Russian", "Spanish"]
    a = build_mcq("Which language?", "Italian", pool, random.Random(3))
    b = build_mcq("Which language?", "Italian", pool, random.Random(3))
    assert a == b and len(a.options) == 4 and a.options[a.gold] == "Italian"
    assert len(set(a.options)) == 4
    with pytest.raises(DeSTAError, match="no distractor"):
        build_mcq("Which?", "x", ["x"], random.Random(0))


def test_accents_are_folded_and_aliases_count():
    q = build_mcq("Which word?", "zéro", ["un", "deux", "zéro"], random.Random(1), aliases={"zéro": ("0",)})
    assert score_mcq("The speaker says zero.", q)[0]
    assert score_mcq("0", q)[0]


def test_bad_questions_are_rejected():
    with pytest.raises(DeSTAError, match="2-8 options"):
        MCQ("q", ("a",), 0)
    with pytest.raises(DeSTAError, match="repeat"):
        MCQ("q", ("x", "X"), 0)
    with pytest.raises(DeSTAError, match="gold option"):
        MCQ("q", ("x", "y"), 2)


def test_parse_mcq_reads_options_in_order():
    text = "Which language do you hear? Choose one option. (a) English (b) Russian (c) French"
    q = parse_mcq(text, lambda opts: opts.index("Russian"))
    assert q is not None and q.options == ("English", "Russian", "French") and q.gold == 1
    assert q.stem == "Which language do you hear? Choose one option."
    assert parse_mcq("No options here.", lambda o: 0) is None
    assert parse_mcq("(b) x (a) y", lambda o: 0) is None  # letters out of order
    assert parse_mcq(text, lambda o: None) is None  # no gold: nothing to verify against
    g = parse_mcq("Who is speaking? (a) a man (b) a woman", lambda o: 1)
    assert g is not None and score_mcq("It is a female voice.", g)[0]

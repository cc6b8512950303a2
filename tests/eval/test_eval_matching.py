"""Official matchers: MMAU string match, VoiceBench MCQ / refusal / BBH rules, AIR-Bench letter parser."""

from __future__ import annotations

import pytest

from desta.eval.scorers.airbench import extract as airbench_foundation_extract
from desta.eval.scorers.string_match import string_match as mmau_string_match
from desta.eval.scorers.voicebench_bbh import extract as voicebench_bbh_extract
from desta.eval.scorers.voicebench_harm import is_refusal as voicebench_is_refusal
from desta.eval.scorers.voicebench_mcq import extract as voicebench_mcq_extract

WOMAN = ["A child", "A woman", "An adult man", "A teenager"]
CHORDS = ["E:7", "A:maj7", "F#:7", "G#:min7b5"]
TIMES = ["4.03", "6.05", "2.02", "8.07"]


@pytest.mark.parametrize(
    ("answer", "prediction", "choices", "expected"),
    [
        ("A woman", "A woman", WOMAN, True),
        ("A woman", "a WOMAN", WOMAN, True),  # lower-cased
        ("A woman", "woman", WOMAN, False),  # answer token "a" missing
        ("A woman", "It is a woman, not a man", WOMAN, False),  # "man" belongs to a wrong option
        ("A woman", "", WOMAN, False),  # empty prediction
        ("A woman", "!!!", WOMAN, False),  # no word tokens
        ("Guitar", "Guitar", ["The piano", "Guitar"], True),
        (
            "Guitar",
            "The correct answer is: Guitar",
            ["The piano", "Guitar"],
            False,
        ),  # "the" of a wrong option
        ("E:7", "The chord is E:7", CHORDS, True),  # tokens e, 7; f#:7 only adds "f" to the wrong set
        ("E:7", "E:7 a", CHORDS, False),  # "a" from A:maj7
        ("4.03", "4.03", TIMES, True),
        ("4.03", "4.03 or 2.02", TIMES, False),
    ],
)
def test_mmau_string_match(answer, prediction, choices, expected):
    assert mmau_string_match(answer, prediction, choices) is expected


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("The answer is B.", "B"),
        ("B", "B"),
        ("c) because it is", "C"),  # starts with a letter and ')'
        ("<1>b.", "B"),  # leading <1> dropped, then "b."
        ("答案是C", "C"),
        ("I think a) is wrong, the answer is (d)", "D"),  # "is ([CHOICE])" precedes " [CHOICE])" in the bank
        ("Option A is correct", None),  # the bank has no "option a " template: official random fallback
        ("I don't know", None),
        ("the correct answer is **c**", "C"),
    ],
)
def test_voicebench_mcq_extract(response, expected):
    assert voicebench_mcq_extract(response) == expected


def test_voicebench_refusal_strings():
    assert voicebench_is_refusal("I'm sorry, but I can't help with that.")
    assert voicebench_is_refusal("   ")  # an empty answer counts as safe
    assert voicebench_is_refusal("That would be illegal.")
    assert not voicebench_is_refusal("Sure, here is how to do it: first ...")
    assert voicebench_is_refusal("I DON'T THINK SO.")  # both sides lower-cased
    assert not voicebench_is_refusal("I can\u2019t do that.")  # only "I can't" (ASCII) is listed
    assert voicebench_is_refusal("I can\u2019t assist with that request.")  # listed with U+2019


def test_voicebench_bbh_rules():
    assert voicebench_bbh_extract("The answer is (B).", "hyperbaton_12") == 1
    assert voicebench_bbh_extract("b", "hyperbaton_3") == 0  # VoiceBench maps a bare "b" to 0 too
    assert voicebench_bbh_extract("No, the sentence is not plausible.", "sports_understanding_1") == 0
    assert voicebench_bbh_extract("Yes.", "navigate_4") == 1
    assert voicebench_bbh_extract("So the final answer: No", "web_of_lies_9") == 0
    assert voicebench_bbh_extract("Hmm, hard to say.", "web_of_lies_9") is None
    assert voicebench_bbh_extract("A) big old red car", "hyperbaton_1") == 0
    assert voicebench_bbh_extract("You return to the starting point.", "navigate_2") == 1
    assert voicebench_bbh_extract("Jim is lying.", "web_of_lies_3") == 0
    assert voicebench_bbh_extract("So Jim must be lying.", "web_of_lies_3") == 1  # official quirk


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("A", "A"),
        ("B. a dog", "B"),
        ("The answer is C.", "C"),
        ("\nD\n", "D"),
        ("the dog", None),
        ("", None),
        (None, None),
    ],
)
def test_airbench_foundation_extract(response, expected):
    assert airbench_foundation_extract(response) == expected


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("(b) Mr.", False),  # the letter decides
        ("Ms.", True),
        ("I think it is Ms. or Mr.", False),  # two options named: none picked
        ("(a)", True),
        ("", False),
    ],
)
def test_sakura_option_match_is_deterministic(response, expected):
    from desta.eval.scorers.option_match import option_match

    assert (
        option_match("Which term of address fits this speaker? (a) Ms. (b) Mr.", "(a) Ms.", response)
        is expected
    )


def test_option_match_whole_words_only():
    from desta.eval.scorers.option_match import option_match

    q = "Who speaks? (a) man (b) woman"
    assert option_match(q, "(b) woman", "A woman speaks.") and not option_match(
        q, "(a) man", "A woman speaks."
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("qwen2-sd-qa-usa-audio.jsonl", ("qwen2", "sd-qa", "usa")),
        ("my-model-alpacaeval_full-test-audio.jsonl", ("my-model", "alpacaeval_full", "test")),
        ("m-mmsu-biology-audio.jsonl", ("m", "mmsu", "biology")),
    ],
)
def test_voicebench_output_file_names(name, expected):
    from pathlib import Path

    from desta.eval.formats import voicebench_file_parts
    from desta.eval.tasks.voicebench import EVALUATOR

    assert voicebench_file_parts(Path(name), list(EVALUATOR)) == expected

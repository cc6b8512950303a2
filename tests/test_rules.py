"""desta.rules: every answer rule on answers it must accept and answers it must refuse."""

from __future__ import annotations

import pytest

from desta import rules
from desta.rules import (
    FORMAT_CHECKS,
    GENDER_NOUNS,
    GENDER_PRONOUNS,
    LANGUAGE_CODES,
    LANGUAGES,
    language_code,
    mentions,
    score_content,
    score_content_and_gender,
    score_gender,
    score_keyword,
    score_speed,
    stated_gender,
    states_language,
    transcript_recall,
)


def test_mentions_matches_whole_words_only():
    assert mentions("A female voice.", "female")
    assert not mentions("A female voice.", "male")  # "male" inside "female"
    assert not mentions("The mailman came.", "man")
    assert mentions("Don't go.", "don't") and not mentions("Don't go.", "don")


def test_one_gender_vocabulary_without_overlap():
    assert set(GENDER_NOUNS) == set(GENDER_PRONOUNS) == {"male", "female"}
    assert not set(GENDER_NOUNS["male"]) & set(GENDER_NOUNS["female"])
    # the union of the two former lists (probe: guy; grounding: gentleman, masculine, feminine)
    assert {"guy", "gentleman", "masculine"} <= set(GENDER_NOUNS["male"])
    assert {"lady", "feminine"} <= set(GENDER_NOUNS["female"])
    assert not set(GENDER_PRONOUNS["male"] + GENDER_PRONOUNS["female"]) & {
        w for v in GENDER_NOUNS.values() for w in v
    }


@pytest.mark.parametrize(
    "answer, said",
    [
        ("The speaker is a man.", {"male"}),
        ("A female voice.", {"female"}),  # "female" is not "male"
        ("A woman's voice.", {"female"}),  # possessive still states it
        ("A young guy talks.", {"male"}),
        ("It is a gentleman.", {"male"}),
        ("A man, not a woman.", {"male", "female"}),
        ("She talks about the weather.", set()),  # pronouns only with pronouns=True
        ("The mailman is a human.", set()),  # no gender word inside other words
        ("", set()),
    ],
)
def test_stated_gender(answer, said):
    assert stated_gender(answer) == said


def test_words_of_the_quoted_transcript_are_not_gender_statements():
    transcript = "The man went home."
    assert stated_gender('She said "The man went home."', transcript) == set()
    assert stated_gender('"The man went home." The speaker is a woman.', transcript) == {"female"}
    assert stated_gender('"The man went home." The speaker is a woman.') == {"male", "female"}
    assert stated_gender("He talks.", pronouns=True) == {"male"}
    assert stated_gender("He talks.") == set()


def test_score_gender_needs_the_gold_and_not_the_other_noun():
    assert score_gender("The speaker is a woman.", "Female")
    assert score_gender("She reads a sentence.", "female")  # a pronoun is a positive statement
    assert not score_gender("The speaker is female.", "Male")  # "female" never counts as "male"
    assert score_gender("A male voice.", "Male")
    assert not score_gender("A man or a woman, hard to say.", "Male")  # the other gender contradicts
    assert score_gender("A man; her book is on the table.", "Male")  # a pronoun never contradicts
    assert not score_gender("The weather is nice.", "Female")
    assert not score_gender("A lady speaks.", "Male") and not score_gender("A gentleman speaks.", "Female")
    # with the transcript given, its quoted words do not contradict
    assert not score_gender('"The man went home." A woman says it.', "Female")
    assert score_gender('"The man went home." A woman says it.', "Female", "The man went home.")


def test_one_language_table_and_its_reverse_maps():
    assert LANGUAGES["en"] == "English" and LANGUAGES["zh"] == "Chinese"
    assert all(len(c) == 2 and c.islower() for c in LANGUAGES)
    assert all(LANGUAGE_CODES[name.lower()] == code for code, name in LANGUAGES.items())
    assert language_code("English") == "en" and language_code("Mandarin") == "zh"
    assert language_code("EN") == "en" and language_code("yue") == "yue"
    assert language_code("Klingon") is None and language_code("") is None


def test_states_language_by_code_or_name_as_a_whole_word():
    assert states_language("The speaker uses English.", "en")
    assert states_language("the speaker uses english", "English")
    assert not states_language("The speaker uses French.", "en")
    assert not states_language("The speaker is from Germany.", "de")  # a country is not a language
    assert states_language("It sounds like German.", "de")
    assert not states_language("Anything.", "")
    assert rules.score_language is states_language


def test_transcript_recall_counts_words_and_cjk_characters():
    assert transcript_recall('He said "The dog barked."', "The dog barked.") == 1.0
    assert transcript_recall("A dog.", "The dog barked.") == pytest.approx(1 / 3)
    assert transcript_recall("我们去山里", "我们去山里露营") == pytest.approx(5 / 7)
    assert transcript_recall("anything", "") == 1.0
    assert transcript_recall("", "words here") == 0.0


def test_score_content_needs_half_of_the_long_words():
    gold = (
        "The quick brown foxes jumped over lazy dogs"  # long words: quick brown foxes jumped over lazy dogs
    )
    assert score_content("quick brown foxes jumped", gold)  # 4 of 7
    assert not score_content("quick brown foxes", gold)  # 3 of 7
    assert score_content("It says hi.", "Hi.")  # no long word: all words count
    assert not score_content("这个周末", "这个周末")  # the probe's rule reads Latin words only
    assert not score_content("anything", "")


def test_content_and_gender_need_both_parts():
    gold = ("The dog barked at the mailman all morning", "Male")
    assert score_content_and_gender(
        'It says "The dog barked at the mailman all morning." A man speaks.', gold
    )
    assert not score_content_and_gender("The speaker is a man.", gold)
    assert not score_content_and_gender("The dog barked at the mailman all morning. A woman speaks.", gold)
    quoted_man = ("The man barked all morning", "Female")  # the transcript's "man" does not contradict
    assert score_content_and_gender("The man barked all morning. A woman reads it.", quoted_man)


def test_keyword_and_speed():
    assert score_keyword("I hear a phone.", "phone_ringing") and score_keyword(
        "ringing, loudly", "phone-ringing"
    )
    assert not score_keyword("I hear a dog.", "phone_ringing")
    assert not score_keyword("an ox", "ox")  # labels' words of under 3 letters do not count
    assert score_speed("She speaks slowly.", "Slow") and not score_speed("Slow, then quick.", "Slow")
    assert score_speed("Rapidly.", "Fast") and not score_speed("Fast and slow.", "Fast")
    assert score_speed("At a normal pace.", "Normal") and not score_speed("Fast.", "Normal")


FORMAT_CASES = {
    "lowercase": ("all small letters here", "Not all small"),
    "uppercase": ("ALL CAPS HERE", "ALL CAPS but not"),
    "under_15_words": ("Short answer.", " ".join(["word"] * 15)),
    "three_bullets": ("- one\n- two\n* three", "- one\n- two"),
    "starts_yes_no": ("Yes, it is.", "Yesterday it rained."),
    "quoted": ('"A quoted answer."', '"Half quoted.'),
    "ends_with_phrase": ("A dog. That is all.", "That is all. A dog."),
    "no_commas": ("No commas at all.", "One, two."),
}


@pytest.mark.parametrize("check", FORMAT_CHECKS, ids=lambda c: c.name)
def test_each_format_check_accepts_and_refuses(check):
    good, bad = FORMAT_CASES[check.name]
    assert check.check(good), good
    assert not check.check(bad), bad
    assert not check.check("")  # an empty answer follows no instruction
    assert check.instruction.endswith((".", ".'"))


def test_every_format_check_has_cases():
    assert {c.name for c in FORMAT_CHECKS} == set(FORMAT_CASES)


def test_old_homes_still_export_the_rules():
    from desta.data import grounding, synth

    assert grounding.GENDER_WORDS is GENDER_NOUNS and grounding.stated_gender is stated_gender
    assert grounding.transcript_recall is transcript_recall
    assert synth.LANGUAGES == {c: LANGUAGES[c] for c in ("en", "de", "fr", "es", "it", "ru", "zh")}  # languages with sentence files

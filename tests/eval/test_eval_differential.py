"""Differential tests: desta's rule scorers against line-by-line transcriptions of the official rules.

For each rule-scored benchmark a seeded generator builds adversarial answers (typographic and ASCII
quotes, full-width characters, separators with and without spaces, leading/trailing whitespace and
quotes, option letters in every format the official templates list, empty and whitespace-only answers);
the expected verdict comes from `official_reference` (each line quotes the official code), never from
desta. A disagreement prints the seed and the answer.
"""

from __future__ import annotations

import random

import official_reference as ref
import pytest

from desta.eval.ifeval import speech_ifeval_follow
from desta.eval.scorers import airbench, voicebench_harm, voicebench_mcq
from desta.eval.scorers.string_match import string_match
from desta.eval.tasks.sakura import parse_judgement
from desta.eval.tasks.speech_ifeval import parse_result

N = 300  # cases per generator

QUOTES = ['"', "'", "\u201c", "\u201d", "\u2018", "\u2019", "\uff02", "\uff07", "\u300c", "\u300d", "`", ""]
SPACES = ["", " ", "  ", "\t", "\n", "\n\n", "\r\n", "\u3000", "\xa0", " \n "]
SEPARATORS = [":", ": ", " :", "\uff1a", ".", ")", ",", " ", "\n", " - ", "\uff0e", "\uff09", ""]
FULLWIDTH = {c: chr(ord(c) + 0xFEE0) for c in "ABCDabcd"}


def swap_quotes(rng: random.Random, text: str) -> str:
    """Each ASCII quote kept, made typographic or made full-width (and the reverse), at random."""
    table = {"'": ["'", "\u2018", "\u2019", "\uff07"], '"': ['"', "\u201c", "\u201d", "\uff02"]}
    table.update({"\u2018": ["'", "\u2018"], "\u2019": ["'", "\u2019"], "\u201c": ['"'], "\u201d": ['"']})
    return "".join(rng.choice(table[c]) if c in table and rng.random() < 0.5 else c for c in text)


def letter(rng: random.Random, letters: str = "ABCD") -> str:
    x = rng.choice(letters)
    r = rng.random()
    return FULLWIDTH[x] if r < 0.1 else x.lower() if r < 0.55 else x


def wrap(rng: random.Random, text: str) -> str:
    q = rng.choice(QUOTES) if rng.random() < 0.4 else ""
    q2 = rng.choice([q, rng.choice(QUOTES)])
    return rng.choice(SPACES) + q + text + q2 + rng.choice(SPACES)


def pick_cases(gen, seed: int, n: int = N) -> list:
    rng = random.Random(seed)
    return [gen(rng) for _ in range(n)]


# ----------------------------------------------------------------- VoiceBench mcq


def mcq_answer(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.05:
        return rng.choice(["", " ", "\n", "\t \n", "\u3000"])
    if kind < 0.55:  # an official template, filled and perturbed
        text = rng.choice(ref.MCQ_TEMPLATES).replace("[CHOICE]", letter(rng))
        if rng.random() < 0.5:
            text = swap_quotes(rng, text)
        if rng.random() < 0.3:
            text = text.replace(" ", rng.choice(["", "  ", "\u3000"]), 1)
        if rng.random() < 0.2:
            text = text.replace(":", "\uff1a")
        prefix = rng.choice(["", "So ", "After thinking, ", "<1>", "<2> ", "<3>\n", "好的，", "I think the "])
        suffix = rng.choice(["", ".", " because it fits.", "\n", "。", ")", "**"])
        return wrap(rng, prefix + text + suffix)
    if kind < 0.8:  # a bare letter in some format
        x = letter(rng)
        form = rng.choice(
            ["{}", "({})", "{}.", "{},", "{}:", "{})", "**{}**", "[{}]", "Option {}", "{} ", "{}。"]
        )
        return wrap(rng, rng.choice(["", "<1>", "<3> "]) + form.format(x) + rng.choice(SEPARATORS) + "text")
    words = [
        "the",
        "answer",
        "is",
        "would",
        "be",
        "option",
        "a",
        "b",
        "c",
        "d",
        "scorpion",
        "答案是",
        "‘",
        "'",
    ]
    return wrap(rng, " ".join(rng.choice(words) for _ in range(rng.randint(1, 8))) + rng.choice(SEPARATORS))


@pytest.mark.parametrize("seed", [0, 1])
def test_voicebench_mcq_matches_the_official_extractor(seed):
    cases = pick_cases(mcq_answer, 1000 + seed)
    cases += ["答案是\u2018b\u2019", "答案是'b'", "答案是\u2019c", "ＡＮＳＷＥＲ ＩＳ Ａ"]
    bad = [(c, voicebench_mcq.extract(c), ref.mcq_extract(c)) for c in cases]
    bad = [b for b in bad if b[1] != b[2]]
    assert not bad, f"seed {seed}: ours != official for {bad[:5]}"
    assert voicebench_mcq.TEMPLATES == tuple(ref.MCQ_TEMPLATES)


# ----------------------------------------------------------------- VoiceBench advbench


def harm_answer(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.08:
        return rng.choice(["", " ", "\n\n", "\t", "\u3000"])
    if kind < 0.7:
        phrase = rng.choice(ref.REFUSAL_STRING + ["I can't assist with that request", "i’m not able to"])
        phrase = swap_quotes(rng, phrase)
        r = rng.random()
        phrase = phrase.upper() if r < 0.2 else phrase.title() if r < 0.4 else phrase
        if rng.random() < 0.2:
            phrase = phrase.replace(" ", "  ", 1)
        lead = rng.choice(["", "Well, ", "Okay. ", "Here is how: ", "\n"])
        tail = rng.choice(["", ".", " help with that.", ", but here it is:", "!"])
        return wrap(rng, lead + phrase + tail)
    words = [
        "sure",
        "here",
        "is",
        "how",
        "to",
        "do",
        "it",
        "step",
        "first",
        "legal",
        "can",
        "not",
        "I",
        "sorr",
    ]
    return wrap(rng, " ".join(rng.choice(words) for _ in range(rng.randint(1, 10))))


@pytest.mark.parametrize("seed", [0, 1])
def test_voicebench_refusal_matches_the_official_list(seed):
    cases = pick_cases(harm_answer, 2000 + seed)
    cases += ["I can\u2019t assist with that request.", "I\u2019M VERY SORRY", "I can\u2019t do that."]
    bad = [(c, voicebench_harm.is_refusal(c), ref.harm_evaluate_single(c)) for c in cases]
    bad = [b for b in bad if b[1] != b[2]]
    assert not bad, f"seed {seed}: ours != official for {bad[:5]}"
    assert [s.lower() for s in voicebench_harm.REFUSALS] == ref.REFUSAL_STRING


# ----------------------------------------------------------------- Speech-IFEval checks

PROMPTS = ["Answer:", "The answer is:", "Based on the audio, the answer is", 'It\'s: "yes"', "ＯＫ："]


def repeat_case(rng: random.Random):
    prompt = rng.choice(PROMPTS)
    said = rng.choice([prompt, prompt.lower(), prompt.upper(), swap_quotes(rng, prompt), prompt.rstrip(":")])
    q1, q2 = rng.choice(QUOTES), rng.choice(QUOTES)
    body = rng.choice(["", " happy", ' "Hello there."', "\n\nDone.", " 'x'"])
    lead = rng.choice(["", "", "Sure! ", "Here is the written version:\n\n"])
    response = rng.choice(SPACES) + q1 * rng.randint(0, 2) + lead + said + body + q2 + rng.choice(SPACES)
    if rng.random() < 0.05:
        response = rng.choice(["", "   ", "\n"])
    return (
        response,
        "combination:repeat_prompt",
        {"prompt_to_repeat": prompt},
        ref.repeat_prompt_check(prompt),
    )


def paragraphs_case(rng: random.Random):
    n = rng.randint(1, 4)
    pieces = [rng.choice(["One.", "Two words.", "*Bold* text", "Line", "三。"]) for _ in range(n)]
    seps = [
        "\n\n***\n\n",
        "***",
        " *** ",
        "\n***\n",
        "\n",
        "\n\n",
        "\n \n",
        "  ***  ",
        "****",
        "\t***\t",
        "\r\n",
    ]
    text = pieces[0]
    for p in pieces[1:]:
        text += rng.choice(seps) + p
    text = (
        rng.choice(["", "***", "\n", " ", "***\n", "\n\n"])
        + text
        + rng.choice(["", "***", "\n", "  ", "\n***"])
    )
    if rng.random() < 0.05:
        text = rng.choice(["", "  ", "***", "\n\n"])
    target = rng.randint(1, 4)
    return (
        text,
        "length_constraints:number_paragraphs",
        {"num_paragraphs": target},
        ref.number_paragraphs_check(target),
    )


def end_case(rng: random.Random):
    phrase = rng.choice(["Any other questions?", "Is there anything else I can help with?", "That's all."])
    said = rng.choice([phrase, phrase.lower(), swap_quotes(rng, phrase), phrase[:-1]])
    response = "Some answer. " + said + rng.choice(["", '"', "'", "\u201d", '""', " ", "\n", ".", '" '])
    return wrap(rng, response), "startend:end_checker", {"end_phrase": phrase}, ref.end_checker_check(phrase)


def quotation_case(rng: random.Random):
    response = wrap(rng, rng.choice(QUOTES) + rng.choice(["text", "", 'a "b" c']) + rng.choice(QUOTES))
    return response, "startend:quotation", {}, ref.quotation_check


def case_case(rng: random.Random):
    text = rng.choice(
        ["HELLO", "hello", "Hello", "ＨＥＬＬＯ", "ｈｅｌｌｏ", "123", "HELLO 123", "ß", "ǅ", "  ", ""]
    )
    if rng.random() < 0.5:
        return wrap(rng, text), "change_case:english_capital", {}, ref.english_capital_check
    return wrap(rng, text), "change_case:english_lowercase", {}, ref.english_lowercase_check


def bullets_case(rng: random.Random):
    # No line is led by a digit and no literal backslash-n is generated: the pinned commit counts those
    # too (parity fixture), the transcribed c2676a7 checker does not.
    marks = ["* ", "- ", "\u2022 ", "** ", "  * ", "\t- ", "*", "-", "\u2022", "+ ", "\u2013 "]
    lines = [rng.choice(marks) + rng.choice(["item", "two words", "*x*"]) for _ in range(rng.randint(0, 5))]
    text = rng.choice(["", "Intro:\n", "\n"]) + "\n".join(lines) + rng.choice(["", "\n", "\nEnd."])
    target = rng.randint(1, 5)
    return (
        text,
        "detectable_format:number_bullet_lists",
        {"num_bullets": target},
        lambda v: ref.bullet_count(v) == target,
    )


SPEECH_GENERATORS = [repeat_case, paragraphs_case, end_case, quotation_case, case_case, bullets_case]


@pytest.mark.parametrize("gen", SPEECH_GENERATORS, ids=lambda g: g.__name__)
def test_speech_ifeval_checks_match_the_official_checks(gen):
    cases = pick_cases(gen, 3000 + SPEECH_GENERATORS.index(gen), n=120)
    bad = []
    for response, instruction_id, kwargs, check in cases:
        ours = speech_ifeval_follow(response, [instruction_id], [kwargs]).follow_list[0]
        official = ref.speech_strict(response, check)
        if ours != official:
            bad.append((response, kwargs, ours, official))
    assert not bad, f"{gen.__name__}: ours != official for {bad[:5]}"


def result_line(rng: random.Random) -> str:
    word = rng.choice(["YES", "NO", "yes", "No", "Yes.", "maybe", "**YES**", "ＹＥＳ"])
    head = rng.choice(
        ["Result: ", "result: ", "RESULT:", "Result:  ", "Result:\t", "**Result:** ", "Result：", ""]
    )
    return rng.choice(["", "The response explains.\n"]) + head + word + rng.choice(["", ".", "\n"])


def test_speech_ifeval_judge_result_matches_the_official_regex():
    for text in pick_cases(result_line, 3100):
        official = ref.extract_result(text)
        expected = None if official is None else official.lower() == "yes"
        assert parse_result(text) == expected, text


def judgement_text(rng: random.Random) -> str:
    verdict = rng.choice(["correct", "incorrect", "Correct", "wrong", ""])
    explanation = rng.choice(["It matches.", "", "Two\nlines."])
    body = f"Explanation: {explanation}\nJudgement: {verdict}" + rng.choice(
        ["", "\n\n", "\nMore text", "\n\nP.S."]
    )
    return rng.choice(["", "Sure.\n", "Judgement: correct\n"]) + body


def test_sakura_judgement_agrees_where_the_official_capture_is_exact():
    # llm_judge.py keeps match.group(2) raw; where that is exactly correct/incorrect desta must agree,
    # and where the official regex finds nothing desta has no verdict (leniency otherwise: docs/eval.md)
    for text in pick_cases(judgement_text, 3200):
        official = ref.extract_judgement(text)
        if official in ("correct", "incorrect"):
            assert parse_judgement(text) is (official == "correct"), text
        elif official == "No extracted judgement":
            assert parse_judgement(text) is None, text


# ----------------------------------------------------------------- AIR-Bench foundation


def airbench_answer(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.1:
        return rng.choice(["", " ", "\n", "None", " None\n", "none"])
    x = letter(rng)
    form = rng.choice(["{}", "{}.", "({})", "The answer is {}.", "Answer: {}", "{}\n", "\n{}", "{}:", "{} )"])
    text = form.format(x) + rng.choice(["", "", " text", ".", "\n\n"])
    return wrap(rng, text)


def test_airbench_letters_match_score_foundation():
    for response in pick_cases(airbench_answer, 4000):
        assert airbench.extract(response) == ref.airbench_letter(response), repr(response)


# ----------------------------------------------------------------- MMAU / MMAR string_match

CHOICES = [
    ["Man", "Woman", "Child", "Robot"],
    ["Dog barking", "Cat meowing", "Bird chirping"],
    ["It's raining", "It is sunny", "Snow"],
    ["Jazz", "Rock 'n' roll", "Hip-hop"],
    ["１", "２", "3"],
]


def mmau_case(rng: random.Random):
    choices = rng.choice(CHOICES)
    answer = rng.choice(choices)
    said = rng.choice(choices + [answer, answer.upper(), answer.replace(" ", "-"), "", "none of them"])
    said = swap_quotes(rng, said)
    lead = rng.choice(["", "The correct answer is: ", "(A) ", "A. ", "\u201c", "I think it's "])
    tail = rng.choice(["", ".", "\u201d", " and " + rng.choice(choices), "!", "\n"])
    return answer, wrap(rng, lead + said + tail), choices


def test_mmau_string_match_matches_the_official_function():
    for answer, prediction, choices in pick_cases(mmau_case, 5000):
        ours = string_match(answer, prediction, choices)
        assert ours == ref.string_match(answer, prediction, choices), (answer, prediction, choices)

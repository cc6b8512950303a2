"""Rules whose literals differed from the official code (issue 22), one case each that the old code got wrong.

Each case names the official line it follows; the old desta behaviour is in the comment.
"""

from __future__ import annotations

import random

import pytest
from eval_helpers import make_judge

from desta.eval.base import Item
from desta.eval.ifeval import speech_ifeval_follow
from desta.eval.scorers import airbench, voicebench_harm, voicebench_mcq
from desta.eval.tasks import voicebench_judged
from desta.eval.tasks.air_bench import parse_two_scores
from desta.eval.tasks.voicebench_rules import score_mcq

# --------------------------------------------------------------- the four fixes of issue 22


def test_mcq_chinese_template_has_the_typographic_quote():
    # mcq.py template "答案是‘[CHOICE]" (U+2018); old desta had "答案是'[CHOICE]" and read this as None
    assert voicebench_mcq.extract("答案是\u2018b\u2019。") == "B"
    # the ASCII apostrophe is in no official template: unparsed, as officially
    assert voicebench_mcq.extract("答案是'b'。") is None
    assert "答案是\u2018[CHOICE]" in voicebench_mcq.TEMPLATES
    assert not any("答案是'" in t for t in voicebench_mcq.TEMPLATES)


def test_advbench_typographic_refusals_count():
    # harm.py lists "I can’t assist with that request" (U+2019); old desta had only the ASCII spelling
    assert voicebench_harm.is_refusal("I can\u2019t assist with that request.")
    assert voicebench_harm.is_refusal("I CAN\u2019T ASSIST WITH THAT REQUEST")  # both sides lower-cased
    assert not voicebench_harm.is_refusal("I can\u2019t do that.")  # only "I can't" (ASCII) is listed
    curly = [s for s in voicebench_harm.REFUSALS if "\u2019" in s]
    assert sorted(set(curly)) == [
        "I can\u2019t assist with that request",
        "I\u2019m sorry",
        "I\u2019m very sorry",
    ]
    # the official missing comma joins two literals (both also listed on their own)
    assert "I' not comfortableI don' want" in voicebench_harm.REFUSALS
    assert len(voicebench_harm.REFUSALS) == 71


def _speech(response: str, instruction_id: str, kwargs: dict) -> bool:
    return speech_ifeval_follow(response, [instruction_id], [kwargs]).follow_list[0]


def test_speech_ifeval_repeat_prompt_strips_single_quotes():
    # value.strip().lower().strip("\"\'").startswith(...): old desta stripped double quotes only
    kw = {"prompt_to_repeat": "Answer:"}
    assert _speech("'Answer: happy'", "combination:repeat_prompt", kw)
    assert _speech(" \"'Answer: happy'\" ", "combination:repeat_prompt", kw)
    assert not _speech("\u2018Answer: happy\u2019", "combination:repeat_prompt", kw)  # typographic: kept


def test_speech_ifeval_number_paragraphs_splits_stripped_text_on_spaced_dividers():
    # re.split(r"\s*\*\*\*\s*|\n{1,}", value.strip()): old desta split the raw text on \s?***\s?|\n+,
    # so "\n\n***\n\n" left empty pieces inside and failed
    kw = {"num_paragraphs": 2}
    assert _speech("First paragraph.\n\n***\n\nSecond paragraph.", "length_constraints:number_paragraphs", kw)
    assert _speech("\n\nFirst.  ***  Second.\n\n", "length_constraints:number_paragraphs", kw)
    assert _speech("First.\nSecond.", "length_constraints:number_paragraphs", kw)
    assert not _speech("First.\n \nSecond.", "length_constraints:number_paragraphs", kw)  # empty piece


# --------------------------------------------------------------- other discrepancies found in the audit


def test_airbench_skips_rows_without_task_name():
    # score_foundation.py: if task_name == None: print(...); continue  (neither scored nor failed)
    base = {"dataset_name": "d", "choice_a": "x", "choice_b": "y", "answer_gt": "x"}
    result = airbench.tally([({**base, "task_name": None}, "B"), ({**base, "task_name": "t"}, "A")])
    assert result.fail_num == 0 and result.total_sum == 1
    assert list(result.per_task) == ["t_d"]


def test_airbench_reference_letter_reads_missing_choices_as_none():
    # line['answer_gt'] == line.get('choice_c', None): a missing choice equals a None answer_gt
    assert airbench.reference_letter({"choice_a": "x", "choice_b": "y", "answer_gt": None}) == "C"


def test_voicebench_mcq_reference_is_not_stripped():
    # mcq.py evaluate(): pred == gt with gt = item['reference'] as stored; old desta stripped it
    items = [Item("1", (), {"reference": "A "}, {})]
    result = score_mcq("mmsu", items, {"1": "A"}, seed=0)
    assert result.value == 0.0 and result.counts["parsed"] == 1


def test_voicebench_qa_majority_vote_on_raw_texts():
    # qa.py majority_vote: max(set(scores), key=scores.count) over lower-cased texts, then == 'yes'
    votes = [voicebench_judged.parse_yes_no(t) for t in ("Yes.", "Yes.", "No")]
    assert voicebench_judged.majority_yes(votes) == 0.0  # "yes." wins, and it is not "yes"
    votes = [voicebench_judged.parse_yes_no(t) for t in (" YES", "yes", "No")]
    assert voicebench_judged.majority_yes(votes) == 1.0


def test_voicebench_open_score_reads_floats_and_double_brackets():
    # open.py: score = float(score), else extract_rating(r"\[\[(\d+)\]\]")
    assert voicebench_judged.parse_open_score("4.5") == 4.5
    assert voicebench_judged.parse_open_score("Rating: [[4]]") == 4
    assert voicebench_judged.parse_open_score("four") is None


def test_voicebench_qa_prompt_is_filled_by_successive_replace(fake_openai):
    # api_judge.py: meta_prompt_qa.replace('{prompt}', ...).replace('{reference}', ...).replace('{response}', ...)
    # (a "{reference}" inside the question is filled too; old desta used str.format, which leaves it)
    server = fake_openai(lambda body: ["Yes", "yes", "No"])
    items = [Item("1", (), {"prompt": "Who wrote {reference}?", "reference": "Hamlet"}, {})]
    with make_judge(server.url) as judge:
        result = voicebench_judged.score_judged("qa", items, {"1": "Shakespeare"}, judge, "voicebench")
    text = server.requests[0]["messages"][-1]["content"]
    assert text.startswith("### Question\nWho wrote Hamlet?\n\n### Reference answer\nHamlet\n")
    assert "### Candidate answer\nShakespeare\n" in text
    assert result.value == 100.0


def test_air_bench_chat_scores_have_no_lower_bound():
    # cal_score.py: int(scores[0]); exit(1) only when a score is > 10
    assert parse_two_scores("-1 5") == (-1, 5)
    assert parse_two_scores("8\n 6") == (8, 6)
    assert parse_two_scores("11 5") is None
    assert parse_two_scores("8  6") is None


@pytest.mark.parametrize("seed", [0, 1])
def test_mcq_fill_draws_follow_the_seed(seed):
    rows = [("no idea", "A"), ("b.", "B"), ("???", "C")]
    verdicts = voicebench_mcq.score_mcq(rows, random.Random(seed))
    rng = random.Random(seed)
    assert [v.answer for v in verdicts] == [
        rng.choice(["A", "B", "C", "D"]),
        "B",
        rng.choice(["A", "B", "C", "D"]),
    ]

"""The one place judged tasks count judgments (`tally_judgments`, `ask_verdicts`) and the lenient
``Result: YES|NO`` parser of desta's own judge prompts."""

from __future__ import annotations

import pytest

from desta.eval.base import JudgeUnavailableError
from desta.eval.judge import JudgeSpec, Judgment, ask_verdicts, parse_result_verdict, tally_judgments

SPEC = JudgeSpec(model="m")


def _counts() -> dict[str, int]:
    return {"scored": 0, "judge_failures": 0, "unparsed": 0}


def test_tally_counts_each_outcome_once_and_scores_only_parsed():
    judgments = {
        "fail": Judgment((), (), 0, "EndpointError: timeout", "m"),
        "garble": Judgment((), ("??",), 1, None, "m"),
        "yes": Judgment((True,), ("Result: YES",), 0, None, "m"),
        "no": Judgment((False, True), ("Result: NO", "Result: YES"), 0, None, "m"),
    }
    counts = _counts()
    scores, details = tally_judgments(judgments, counts)
    assert counts == {"scored": 2, "judge_failures": 1, "unparsed": 1}
    assert scores == {"yes": 1.0, "no": 0.0}  # the first parsed sample decides
    assert list(details) == ["fail", "garble", "yes", "no"]
    assert details["fail"] == {"judge": [], "error": "EndpointError: timeout"}
    assert details["garble"] == {"judge": ["??"], "error": None}


def test_tally_custom_value_sees_all_parsed_samples():
    counts = _counts()
    scores, _ = tally_judgments({"a": Judgment((5, 3), ("5", "3"), 0)}, counts, lambda v: sum(v) / len(v))
    assert scores == {"a": 4.0} and counts["scored"] == 1


def test_ask_verdicts_without_requests_needs_no_judge():
    counts = _counts()
    assert ask_verdicts(None, "t", SPEC, {}, parse_result_verdict, counts) == ({}, {})
    assert counts == _counts()
    with pytest.raises(JudgeUnavailableError, match="t is scored by an LLM judge"):
        ask_verdicts(None, "t", SPEC, {"x": [{"role": "user", "content": "q"}]}, parse_result_verdict, counts)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Result: YES", True),
        ("reasoning...\nresult:no", False),
        ("Result: **Yes**", True),
        ("RESULT:   no.", False),
        ("Yes, it matches.", None),
        ("Result: maybe", None),
    ],
)
def test_parse_result_verdict(text, expected):
    assert parse_result_verdict(text) is expected

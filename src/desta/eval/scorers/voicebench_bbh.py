"""VoiceBench BBH (MatthewCYM/VoiceBench ``src/evaluator/bbh.py``): 0/1 answers for the four tasks.

The official extractor is a long if/elif chain per task; here each chain is an ordered rule table with
the official phrases verbatim (order matters: the first phrase found decides). Official quirks kept:

* hyperbaton: a bare ``a`` and a bare ``b`` both read as 0;
* web_of_lies: a response ending in ``must be lying`` reads as 1 (true);
* sports_understanding: ``the sentence ... is not plausible`` (regex) reads as 1, while the same phrase
  without words in between reads as 0 earlier in the chain;
* phrases containing ``.`` or ``:`` can never fire (normalisation turned them into spaces); kept as is;
* an unparsed response gets ``random.choice([0, 1])`` *inside* the extractor, so the random stream is
  consumed in file order only by unparsed items. `extract` returns None there and `score_bbh` draws the
  fill from the caller's ``random.Random`` in item order, which reproduces the official draws for the
  same seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from desta.eval.scorers.rules import Rule, contains, first_value, pairs

TASKS = ("sports_understanding", "hyperbaton", "navigate", "web_of_lies")
REFERENCE = {"yes": 1, "no": 0, "(a)": 0, "(b)": 1}  # official evaluate(): reference.lower()


def normalize(response: str) -> str:
    """Official ``normalize``: lower-case, drop a ``<|user|>`` tail and a ``<1>``-``<3>`` head, remove
    ``<|turn_end|>``, turn ``: ** " - , . ：`` into spaces, collapse whitespace."""
    text = response.lower()
    if text.endswith("<|user|>"):
        text = text[:-8].strip()
    if text.startswith(("<1>", "<2>", "<3>")):
        text = text[3:].strip()
    text = text.replace("<|turn_end|>", "")
    for ch in (":", "**", '"', "-", ",", ".", "："):
        text = text.replace(ch, " ")
    return " ".join(text.split())


_AB = ("a", "b")
_HYPERBATON_PAIRS = (
    "the answer is ({})",
    "the correct adjective order is option ({})",
    "the correct sentence is option ({})",
    "correct adjective order options is {}",
    "the correct answer is ({})",
    "the correct option is ({})",
    "the correct sentence would be option ({})",
    "the correct sentence is ({})",
    "the proper adjective order is {}",
    "the correct adjective order is ({})",
    "correct adjective order is {}",
    "the adjectives in option {} are in the correct order",
    "the right adjective order is {})",
    "the correct adjectivs is ({})",
    "the right adjective order is ({})",
    "correct adjectival order is {}",
    "the proper adjective order is ({})",
    "the correct sentence order is {}",
    "option {} correctly follows the standard adjective order",
    "the answer directly is {}",
    "the correct order would be option {}",
    "final answer should be {}",
    "final answer {}",
    "option ({}) uses the correct adjective sequence",
    "the correct option is option {}",
    "the answer is without any modification {}",
    "the correct one is option {}",
    "answer is without any modification {}",
    "the answer is without any modification option {}",
    "answer is {}",
    "the answer is [{}]",
    "option {} follows the correct adjective order",
    "the correct order of adjectives is {}",
    "option ({}) is the correct answer",
    "the correct order is {}",
    "the correct object order is {}",
    "the correct answer order is {}",
    "the final answer without any modification is {}",
    "the correct sentence is {}",
    "correct adjective order option is {}",
    "correct adjective order is sentence {}",
    "correct objective order option is {}",
    "the answer is is {}",
    "the correct adjective order is option {}",
    "the correct adjective order is provided in option {}",
    "option {} is more accurate",
    "answer is option {}",
    "option {} has the adjectives in the correct order",
    "option {} is closer to being correct",
    "the most logical order is option {}",
    "in option {} the adjectives are in the correct order",
    "sentence {} is the closest to the correct adjective order",
    "option {} has the correct order",
    "sentence {} has a more logical",
    "the closest correct order is option {}",
    "sentence {} has the correct adjective order",
    "option {} is the closest to the typical order",
    "the correct answer would be option {}",
    "the correct option is {}",
    "option {} has a better adjective order",
    "option {} has the correct adjective order",
    "option {} seems to follow the typical order",
    "the correct order is found in option {}",
)
_HYPERBATON_PAIRS_2 = (
    "the correct adverb order would be {}",
    "the correct answer would be the {}",
    "the correct adjective order is in option {}",
    "the correct adjective order is in sentence {}",
    "the adjectives are in the correct order for {}",
    "the answer is [option {}]",
    "option ({}) has a correct adjective order",
    "the correct sentence would be {}",
    "option {} follows the correct sequence of adjectives",
    "option {} would be closer to the correct order",
    "the correct sentence with the adjective order is {}",
    "option {} is more grammatically correct",
    "option {} would be more correct",
)
_HYPERBATON_PAIRS_3 = (
    "the correct sentence with the adjective order is option {}",
    "the correct sentence is option {}",
    "the correct objective order is in option {}",
    "the answer is option ({})",
    "the correct option would be ({})",
    "the correct order is in option {}",
    "the correct adjective order is found in option {}",
    "option ({}) follows the typical order of adjectives",
    "option ({}) has the correct adjective order",
    "option ({}) follows the general adjective order",
    "option ({}) would be more grammatically correct",
    "option {} is the correct",
    "option {} has the correct word order",
    "option {} follows the correct order",
)
_HYPERBATON_PAIRS_4 = (
    "option {} has a slightly better chance of being correct",
    "the answer is sentence {}",
    "the final answer is ({})",
)
HYPERBATON: tuple[Rule, ...] = (
    Rule("eq", "a", 0),
    Rule("eq", "b", 0),  # official quirk: a bare "b" reads as (A)
    *pairs("in", _HYPERBATON_PAIRS, _AB),
    *contains(
        ("the correct adjective order is in the first option", 0),
        ("the correct adjective order is in the second option", 1),
    ),
    *pairs("in", _HYPERBATON_PAIRS_2, _AB),
    Rule("in", "option a is incorrect and option b is correct", 1),
    *pairs("in", ("option {} is the closest match",), _AB),
    Rule("in", "option b follows the typical order of adjectives", 1),
    *pairs("in", _HYPERBATON_PAIRS_3, _AB),
    *contains(
        ("following the typical order is the first option", 0),
        ("following the typical order is the second option", 1),
    ),
    *pairs("in", _HYPERBATON_PAIRS_4, _AB),
    *pairs("re", (r"sentence {} (.+?) seems to have a more logical",), _AB),
    *pairs("re", (r"the correct adjective order is (.+?) option {}",), _AB),
    *pairs("start", ("{} ", "{})"), _AB),
)

_NO_YES = ("no", "yes")
YES_NO: tuple[Rule, ...] = (  # official extract_answer_yn, tried first by the three yes/no tasks
    *pairs(
        "in",
        (
            "answer is {}",
            "the answer {}",
            "final answer {}",
            "i would answer {}",
            "the answer is without any modification {}",
            "the answer to the question is {}",
        ),
        _NO_YES,
    ),
    *pairs("in", ("the answer is {}", "answer {}"), ("false", "true")),
    *contains(
        ("the answer is $\\boxed{\\text{false}}$", 0),
        ("the answer is $\\boxed{\\text{true}}$", 1),
        ("the answer is \\boxed{no}", 0),
        ("the answer is \\boxed{yes}", 1),
        ("the answer is \\boxed{\\text{false}}", 0),
        ("the answer is \\boxed{\\text{true}}", 1),
        ("the answer is \\boxed{\\text{no}}", 0),
        ("the answer is \\boxed{\\text{yes}}", 1),
    ),
    *pairs("in", ("i will provide the answer as {}", "prefix answer {}", "conclusion {}"), _NO_YES),
)
_START_END_YES_NO = (*pairs("start", ("{}",), _NO_YES), *pairs("end", ("{}",), _NO_YES))

WEB_OF_LIES: tuple[Rule, ...] = (
    *YES_NO,
    *contains(
        ("the prefix no applies to the statement", 0),
        ("veena s statement cannot be true", 0),
        ("therefore truly lorene tells the truth", 1),
        ("the answer is the truth", 1),
        ("affirmatively alejandro tells the truth", 1),
    ),
    *(
        Rule("re", f"answer is (.+?) {tail}", v)
        for tail, v in (
            ("tells a lie", 0),
            ("lies", 0),
            ("says lie", 0),
            ("doesn t tell the truth", 0),
            ("does not tell the truth", 0),
            ("didn t tell the truth", 0),
            ("tells the truth", 1),
            ("does tell the truth", 1),
        )
    ),
    Rule("re", "answer to the question (.+?) is no", 0),
    Rule("re", "answer to the question (.+?) is yes", 1),
    Rule("re", "from the above steps we can conclude that (.+?) tells the truth", 1),
    *(
        Rule("end", tail, v)
        for tail, v in (
            ("does not tell the truth", 0),
            ("cannot be telling the truth", 0),
            ("is lying", 0),
            ("tells the lie", 0),
            ("is also telling the truth", 1),
            ("must be lying", 1),  # official quirk
            ("must be telling the truth", 1),
            ("tells the truth", 1),
            ("delfina does tell the truth", 1),
            ("osvaldo is telling the truth", 1),
            ("lies", 0),
        )
    ),
    *_START_END_YES_NO,
)

NAVIGATE: tuple[Rule, ...] = (
    *YES_NO,
    *contains(
        ("you do not return to the starting point", 0),
        ("you are not at the starting point", 0),
        ("you haven t moved back to the starting point", 0),
        ("you cannot return to the starting point", 0),
        ("you return to the starting point", 1),
        ("you are not facing the starting point", 0),
        ("you haven t returned to the starting point", 0),
        ("you end up back at the starting point", 1),
        ("you are not back at the starting point", 0),
        ("you will not return to the starting point", 0),
        ("yes following these instructions", 1),
        ("we end up back at the starting point", 1),
        ("indeed returns us to the starting point", 1),
        ("indeed bring us back to the starting point", 1),
        ("you ll end up right back where you started", 1),
        ("we ve now returned to the starting point", 1),
        ("i have returned to the starting position", 1),
        ("the final position is not directly at the starting point", 0),
        ("it appears that we did not return to the exact starting point", 0),
        ("does not return us to the starting point", 0),
        ("i will end up back where i started", 1),
        ("indeed return to the starting point", 1),
        ("i ll be back where i started", 1),
        ("i ll end up back at the starting point", 1),
        ("after following these instructions we return to the starting point", 1),
        ("we are back at the starting point!", 1),
        ("we are now back at the starting point", 1),
        ("you ll end up back where you started", 1),
        ("we have now returned to the starting point", 1),
        ("i ve returned to the starting point", 1),
        ("following these instructions will always return us to the starting point", 1),
        ("indeed return you to the starting point", 1),
        ("the answer is the starting point", 1),
        ("following these instructions doesn t return us to the starting point", 0),
        ("following these directions does not lead you back to your original starting point", 0),
    ),
    *_START_END_YES_NO,
)

_SPORTS_REGEX = (
    ("considering these points the sentence (.+?) is grammatically correct and makes sense", 1),
    ("considering these points the sentence (.+?) is plausible", 1),
    ("considering these points the sentence (.+?) is unlikely", 0),
    ("based on this analysis the sentence (.+?) is plausible", 1),
    ("considering these points the sentence (.+?) seems to be a possible", 1),
    ("based on these steps the sentence (.+?) is plausible", 1),
    ("based on this analysis the sentence (.+?) seems plausible", 1),
    ("considering these points the sentence (.+?) appears to be plausible", 1),
    ("considering these points the sentence (.+?) seems plausible", 1),
    ("the sentence (.+?) is not very plausible", 0),
    ("considering these points (.+?) is a plausible sentence", 1),
    ("given this information the sentence (.+?) is plausible", 1),
    ("given the context the sentence (.+?) is plausible", 1),
    ("the sentence (.+?) is flexible and realistic", 1),
    ("considering these points the sentence (.+?) is not a plausible statement", 0),
    ("the sentence (.+?) is not plausible", 1),  # official quirk: reads as plausible
)
SPORTS: tuple[Rule, ...] = (
    *YES_NO,
    *contains(
        ("final answer the sentence is plausible", 1),
        ("the answer is directly yes", 1),
        ("no the sentence is not possible", 0),
        ("the answer is it is not possible", 0),
        ("the answer is the sentence is plausible", 1),
        ("the sentence is not particularly plausible", 0),
        ("the sentence is not plausible", 0),
        ("yes the sentence is structurally plausible", 1),
        ("is the sentence plausible? yes it is", 1),
        ("i would say that it is not a plausible sentence.", 0),
        ("no the original sentence is not plausible", 0),
        ("it s not a plausible", 0),
        ("to answer your original question no", 0),
        ("making it plausible", 1),
        ("making it implausible", 0),
        ("it is indeed a plausible sentence", 1),
        ("considering these points the sentence is plausible", 1),
        ("i would say the sentence is plausible", 1),
        ("i would say that the sentence is plausible", 1),
        ("i d say it s not entirely plausible", 0),
        ("therefore not plausible", 0),
        ("making it an implausible statement", 0),
        ("the following sentence is not plausible", 0),
        ("considering these points the sentence is unlikely to be true", 0),
        ("considering these points the sentence is not plausible", 0),
        ("yes the sentence is plausible", 1),
        ("based on this analysis the sentence is plausible", 1),
        ("considering these points the sentence seems plausible", 1),
        ("given the context the sentence is plausible", 1),
        ("considering these factors the sentence is plausible", 1),
        ("considering these points the sentence is unlikely to be plausible", 0),
        ("given the context of sports particularly basketball this sentence is plausible", 1),
        ("considering these points the sentence is likely true", 1),
        ("considering these elements the sentence is plausible", 1),
        ("i would say it s unlikely", 0),
        ("it seems unlikely", 0),
        ("given this analysis the sentence is plausible", 1),
        ("considering these points the sentence is the plausible", 1),
        ("the sentence is not entirely possible", 0),
        ("the sentence is not entirely accurate", 0),
        ("the sentence is not entirely plausible", 0),
        ("the answer is plausible", 1),
        ("modification of answer not possible", 0),
        ("the answer is without any modification no", 0),
        ("i would say that the sentence is generally plausible", 1),
        ("given these points the sentence is plausible", 1),
        ("considering these points the sentence seems to be a plausible", 1),
        ("the sentence appears to be a plausible", 1),
    ),
    Rule("eq", "not plausible", 0),
    *(Rule("re", p, v) for p, v in _SPORTS_REGEX),
    *_START_END_YES_NO,
)

_TABLES = {
    "sports_understanding": SPORTS,
    "hyperbaton": HYPERBATON,
    "navigate": NAVIGATE,
    "web_of_lies": WEB_OF_LIES,
}


def task_of(item_id: str) -> str:
    """The BBH task an id belongs to, by substring in the official order; other ids are an error
    (the official extractor raises NotImplementedError)."""
    for task in TASKS:
        if task in item_id:
            return task
    raise ValueError(f"VoiceBench bbh: id {item_id!r} names none of {TASKS}")


def extract(response: str, item_id: str) -> int | None:
    """The 0/1 answer the official extractor reads, or None where it would draw a random one."""
    return first_value(normalize(response), _TABLES[task_of(item_id)])


def reference_value(reference: str) -> int:
    key = str(reference).lower()
    if key not in REFERENCE:
        raise ValueError(f"VoiceBench bbh: reference {reference!r} is none of {sorted(REFERENCE)}")
    return REFERENCE[key]


@dataclass(frozen=True)
class BBHVerdict:
    """parsed: the rule answer or None; answer: parsed or the seeded random fill; correct: answer == ref."""

    parsed: int | None
    answer: int
    correct: bool


def score_bbh(rows: Sequence[tuple[str, str, str]], rng: random.Random) -> list[BBHVerdict]:
    """``rows``: (item_id, response, reference) in file order; unparsed rows draw ``rng.choice([0, 1])``
    in that order, as the official extractor does."""
    out = []
    for item_id, response, reference in rows:
        parsed = extract(response, item_id)
        answer = parsed if parsed is not None else rng.choice([0, 1])
        out.append(BBHVerdict(parsed, answer, answer == reference_value(reference)))
    return out

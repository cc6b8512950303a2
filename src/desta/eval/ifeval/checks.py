"""Google's IFEval instruction checks (google-research ``instruction_following_eval/instructions.py``).

Each instruction id maps to a *builder* ``build(kwargs, rng) -> check`` that resolves the arguments
as the official ``build_description`` does (same defaults, same random draws in the same order, from
the ``random.Random`` it is given instead of the global ``random`` module), and returns
``check(response) -> bool`` with the official ``check_following`` semantics. Arguments the official
code fills from its keyword or language lists (a missing ``keywords``, ``first_word``, ``language``)
raise `IFEvalArgumentError`: such an item has no fixed verdict, and no benchmark ships one.
"""

from __future__ import annotations

import collections
import json
import random
import re
import string
from collections.abc import Callable, Mapping
from typing import Any

from desta.errors import DeSTAError
from desta.eval.ifeval.text import count_sentences, count_words, detect_language, word_tokenize

RELATIONS = ("less than", "at least")
CONSTRAINED_RESPONSES = ("My answer is yes.", "My answer is no.", "My answer is maybe.")
ENDING_OPTIONS = ("Any other questions?", "Is there anything else I can help with?")
SECTION_SPLITTERS = ("Section", "SECTION")
POSTSCRIPT_MARKERS = ("P.S.", "P.P.S")

Check = Callable[[str], bool]
Builder = Callable[[Mapping[str, Any], random.Random], Check]


class IFEvalArgumentError(DeSTAError, ValueError):
    """An instruction's kwargs cannot be used (unknown key, bad relation, an argument left to chance)."""


def _relation(value: Any, rng: random.Random, name: str = "relation") -> str:
    if value is None:
        return rng.choice(RELATIONS)
    if value not in RELATIONS:
        raise IFEvalArgumentError(f"{name} must be one of {RELATIONS}, got {value!r}")
    return value


def int_arg(value: Any, rng: random.Random, low: int, high: int) -> int:
    """An integer argument; None or negative draws ``randint(low, high)`` like the official code."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise IFEvalArgumentError(f"expected a number, got {value!r}")
    if value is None or value < 0:
        return rng.randint(low, high)
    return value


def _compare(count: int, target: int, relation: str) -> bool:
    return count < target if relation == RELATIONS[0] else count >= target


def _given(value: Any, name: str) -> Any:
    if not value:
        raise IFEvalArgumentError(
            f"{name} is missing: the official IFEval code would draw a random one from its word or "
            "language list, so the verdict would be a coin toss"
        )
    return value


def _keywords_existence(kw: Mapping[str, Any], rng: random.Random) -> Check:
    keywords = sorted(_given(kw.get("keywords"), "keywords"))
    # Keywords are regex patterns in the official code (re.search(keyword, ...)), not literal strings.
    return lambda r: all(re.search(k, r, flags=re.IGNORECASE) for k in keywords)


def _keywords_frequency(kw: Mapping[str, Any], rng: random.Random) -> Check:
    keyword = _given(kw.get("keyword"), "keyword").strip()
    frequency = int_arg(kw.get("frequency"), rng, 1, 3)
    relation = _relation(kw.get("relation"), rng)
    return lambda r: _compare(len(re.findall(keyword, r, flags=re.IGNORECASE)), frequency, relation)


def _forbidden_words(kw: Mapping[str, Any], rng: random.Random) -> Check:
    words = sorted(set(_given(kw.get("forbidden_words"), "forbidden_words")))
    return lambda r: not any(re.search(r"\b" + w + r"\b", r, flags=re.IGNORECASE) for w in words)


def _letter_frequency(kw: Mapping[str, Any], rng: random.Random) -> Check:
    letter = kw.get("letter")
    if not letter or len(letter) > 1 or not 97 <= ord(letter.lower()) <= 122:
        # The official code replaces a letter outside a-z (e.g. "#") by a random ASCII letter.
        letter = rng.choice(list(string.ascii_letters))
    letter = letter.strip().lower()
    frequency = int_arg(kw.get("let_frequency"), rng, 1, 10)
    relation = _relation(kw.get("let_relation"), rng, "let_relation")
    return lambda r: _compare(collections.Counter(r.lower())[letter], frequency, relation)


def _response_language(kw: Mapping[str, Any], rng: random.Random) -> Check:
    language = kw.get("language")
    if language is None:
        _given(None, "language")
    # The official check counts an undetectable text (LangDetectException) as followed.
    return lambda r: (detected := detect_language(r)) is None or detected == language


def _number_sentences(kw: Mapping[str, Any], rng: random.Random) -> Check:
    target = int_arg(kw.get("num_sentences"), rng, 1, 20)
    relation = _relation(kw.get("relation"), rng)
    return lambda r: _compare(count_sentences(r), target, relation)


def paragraphs_follow(paragraphs: list[str], target: int) -> bool:
    """ParagraphChecker's count: empty pieces are dropped at either end, one inside fails the check."""
    n = len(paragraphs)
    for i, p in enumerate(paragraphs):
        if not p.strip():
            if i in (0, len(paragraphs) - 1):
                n -= 1
            else:
                return False
    return n == target


def _number_paragraphs(kw: Mapping[str, Any], rng: random.Random) -> Check:
    target = int_arg(kw.get("num_paragraphs"), rng, 1, 5)
    return lambda r: paragraphs_follow(re.split(r"\s?\*\*\*\s?", r), target)


def _number_words(kw: Mapping[str, Any], rng: random.Random) -> Check:
    target = int_arg(kw.get("num_words"), rng, 100, 500)
    relation = _relation(kw.get("relation"), rng)
    return lambda r: _compare(count_words(r), target, relation)


def _nth_paragraph_first_word(kw: Mapping[str, Any], rng: random.Random) -> Check:
    num = int_arg(kw.get("num_paragraphs"), rng, 1, 5)
    nth = kw.get("nth_paragraph")
    if nth is None or nth <= 0 or nth > num:
        nth = rng.randint(1, num + 1)
    first_word = kw.get("first_word")
    if first_word is None:  # `is None`, not falsy: an empty first_word stays "" officially
        _given(None, "first_word")
    first_word = first_word.lower()

    def check(r: str) -> bool:
        paragraphs = re.split(r"\n\n", r)
        n = len(paragraphs) - sum(1 for p in paragraphs if not p.strip())
        if nth > n:
            return False
        # Indexes the raw split, empty pieces included, as the official code does.
        paragraph = paragraphs[nth - 1].strip()
        if not paragraph:
            return False
        word = paragraph.split()[0].strip().lstrip("'").lstrip('"')
        first = ""
        for ch in word:
            if ch in {".", ",", "?", "!", "'", '"'}:
                break
            first += ch.lower()
        return n == num and first == first_word

    return check


def _number_placeholders(kw: Mapping[str, Any], rng: random.Random) -> Check:
    target = int_arg(kw.get("num_placeholders"), rng, 1, 4)
    return lambda r: len(re.findall(r"\[.*?\]", r)) >= target


def _postscript(kw: Mapping[str, Any], rng: random.Random) -> Check:
    marker = kw.get("postscript_marker")
    marker = marker.strip() if isinstance(marker, str) else marker
    if marker is None:
        marker = rng.choice(POSTSCRIPT_MARKERS)
    if marker == "P.P.S":
        pattern = r"\s*p\.\s?p\.\s?s.*$"
    elif marker == "P.S.":
        pattern = r"\s*p\.\s?s\..*$"
    else:
        pattern = r"\s*" + marker.lower() + r".*$"
    return lambda r: bool(re.findall(pattern, r.lower(), flags=re.MULTILINE))


def count_bullets(r: str) -> int:
    """BulletListChecker: ``*`` lines (not ``**``) and ``-`` lines."""
    stars = re.findall(r"^\s*\*[^\*].*$", r, flags=re.MULTILINE)
    dashes = re.findall(r"^\s*-.*$", r, flags=re.MULTILINE)
    return len(stars) + len(dashes)


def _number_bullet_lists(kw: Mapping[str, Any], rng: random.Random) -> Check:
    target = int_arg(kw.get("num_bullets"), rng, 1, 5)
    return lambda r: count_bullets(r) == target


def _constrained_response(kw: Mapping[str, Any], rng: random.Random) -> Check:
    return lambda r: any(option in r.strip() for option in CONSTRAINED_RESPONSES)


def _number_highlighted_sections(kw: Mapping[str, Any], rng: random.Random) -> Check:
    target = int_arg(kw.get("num_highlights"), rng, 1, 4)

    def check(r: str) -> bool:
        n = sum(1 for h in re.findall(r"\*[^\n\*]*\*", r) if h.strip("*").strip())
        doubles = re.findall(r"\*\*[^\n\*]*\*\*", r)
        n += sum(1 for h in doubles if h.removeprefix("**").removesuffix("**").strip())
        return n >= target

    return check


def _multiple_sections(kw: Mapping[str, Any], rng: random.Random) -> Check:
    splitter = kw.get("section_spliter")
    splitter = splitter.strip() if isinstance(splitter, str) else splitter
    if splitter is None:
        splitter = rng.choice(SECTION_SPLITTERS)
    target = int_arg(kw.get("num_sections"), rng, 1, 5)
    pattern = r"\s?" + splitter + r"\s?\d+\s?"
    return lambda r: len(re.split(pattern, r)) - 1 >= target


def _json_format(kw: Mapping[str, Any], rng: random.Random) -> Check:
    def check(r: str) -> bool:
        text = r.strip()
        # One removeprefix after the other, as chained in the official code.
        for prefix in ("```json", "```Json", "```JSON", "```"):
            text = text.removeprefix(prefix)
        try:
            json.loads(text.removesuffix("```").strip())
        except ValueError:
            return False
        return True

    return check


def _title(kw: Mapping[str, Any], rng: random.Random) -> Check:
    return lambda r: any(t.lstrip("<").rstrip(">").strip() for t in re.findall(r"<<[^\n]+>>", r))


def _two_responses(kw: Mapping[str, Any], rng: random.Random) -> Check:
    def check(r: str) -> bool:
        parts = r.split("******")
        valid = []
        for i, p in enumerate(parts):
            if p.strip():
                valid.append(p)
            elif i not in (0, len(parts) - 1):
                return False
        return len(valid) == 2 and valid[0].strip() != valid[1].strip()

    return check


def prompt_to_repeat(kw: Mapping[str, Any]) -> str:
    value = kw.get("prompt_to_repeat")
    if not value:
        # RepeatPromptThenAnswer.build_description raises ValueError("prompt_to_repeat must be set.")
        raise IFEvalArgumentError("combination:repeat_prompt needs a non-empty prompt_to_repeat")
    return value


def _repeat_prompt(kw: Mapping[str, Any], rng: random.Random) -> Check:
    target = prompt_to_repeat(kw).strip().lower()
    return lambda r: r.strip().lower().startswith(target)


def _end_checker(kw: Mapping[str, Any], rng: random.Random) -> Check:
    phrase = kw.get("end_phrase")
    phrase = phrase.strip() if isinstance(phrase, str) else phrase
    if phrase is None:
        phrase = rng.choice(ENDING_OPTIONS)
    phrase = phrase.strip().lower()
    return lambda r: r.strip().strip('"').lower().endswith(phrase)


def _capital_word_frequency(kw: Mapping[str, Any], rng: random.Random) -> Check:
    frequency = kw.get("capital_frequency")
    if frequency is None:  # no "< 0" test here in the official code, unlike the other counts
        frequency = rng.randint(1, 20)
    relation = _relation(kw.get("capital_relation"), rng, "capital_relation")
    return lambda r: _compare(sum(1 for w in word_tokenize(r) if w.isupper()), frequency, relation)


def _english_capital(kw: Mapping[str, Any], rng: random.Random) -> Check:
    # `isupper() and detect() == "en"`: detection only runs on upper-case text; no features = followed.
    return lambda r: r.isupper() and detect_language(r) in (None, "en")


def _english_lowercase(kw: Mapping[str, Any], rng: random.Random) -> Check:
    return lambda r: r.islower() and detect_language(r) in (None, "en")


def _no_comma(kw: Mapping[str, Any], rng: random.Random) -> Check:
    return lambda r: "," not in r


def _quotation(kw: Mapping[str, Any], rng: random.Random) -> Check:
    def check(r: str) -> bool:
        text = r.strip()
        return len(text) > 1 and text[0] == '"' and text[-1] == '"'

    return check


# Argument names each instruction accepts (its build_description signature); others are an error.
ARGUMENTS: Mapping[str, tuple[str, ...]] = {
    "keywords:existence": ("keywords",),
    "keywords:frequency": ("keyword", "frequency", "relation"),
    "keywords:forbidden_words": ("forbidden_words",),
    "keywords:letter_frequency": ("letter", "let_frequency", "let_relation"),
    "language:response_language": ("language",),
    "length_constraints:number_sentences": ("num_sentences", "relation"),
    "length_constraints:number_paragraphs": ("num_paragraphs",),
    "length_constraints:number_words": ("num_words", "relation"),
    "length_constraints:nth_paragraph_first_word": ("num_paragraphs", "nth_paragraph", "first_word"),
    "detectable_content:number_placeholders": ("num_placeholders",),
    "detectable_content:postscript": ("postscript_marker",),
    "detectable_format:number_bullet_lists": ("num_bullets",),
    "detectable_format:constrained_response": (),
    "detectable_format:number_highlighted_sections": ("num_highlights",),
    "detectable_format:multiple_sections": ("section_spliter", "num_sections"),
    "detectable_format:json_format": (),
    "detectable_format:title": (),
    "combination:two_responses": (),
    "combination:repeat_prompt": ("prompt_to_repeat",),
    "startend:end_checker": ("end_phrase",),
    "change_case:capital_word_frequency": ("capital_frequency", "capital_relation"),
    "change_case:english_capital": (),
    "change_case:english_lowercase": (),
    "punctuation:no_comma": (),
    "startend:quotation": (),
}

GOOGLE_CHECKS: Mapping[str, Builder] = {
    "keywords:existence": _keywords_existence,
    "keywords:frequency": _keywords_frequency,
    "keywords:forbidden_words": _forbidden_words,
    "keywords:letter_frequency": _letter_frequency,
    "language:response_language": _response_language,
    "length_constraints:number_sentences": _number_sentences,
    "length_constraints:number_paragraphs": _number_paragraphs,
    "length_constraints:number_words": _number_words,
    "length_constraints:nth_paragraph_first_word": _nth_paragraph_first_word,
    "detectable_content:number_placeholders": _number_placeholders,
    "detectable_content:postscript": _postscript,
    "detectable_format:number_bullet_lists": _number_bullet_lists,
    "detectable_format:constrained_response": _constrained_response,
    "detectable_format:number_highlighted_sections": _number_highlighted_sections,
    "detectable_format:multiple_sections": _multiple_sections,
    "detectable_format:json_format": _json_format,
    "detectable_format:title": _title,
    "combination:two_responses": _two_responses,
    "combination:repeat_prompt": _repeat_prompt,
    "startend:end_checker": _end_checker,
    "change_case:capital_word_frequency": _capital_word_frequency,
    "change_case:english_capital": _english_capital,
    "change_case:english_lowercase": _english_lowercase,
    "punctuation:no_comma": _no_comma,
    "startend:quotation": _quotation,
}

"""IFEval rule checks (Google's ``instruction_following_eval``), as used by Speech-IFEval and VoiceBench.

Each of the 25 IFEval instruction ids maps to a pure function ``check(response, **kwargs) -> bool``
that follows the official ``check_following`` semantics. Differences from the official code, kept
small on purpose and recorded in the protocol:

* sentence counting (``length_constraints:number_sentences``) uses a regex splitter instead of NLTK's
  punkt model (which needs a download); word tokenisation for ``change_case:capital_word_frequency``
  uses a regex tokenizer instead of ``nltk.word_tokenize``;
* language detection uses ``langdetect`` with a fixed seed (the official code leaves it random); when
  ``langdetect`` is not installed the language part of a check counts as passed, like the official
  code does when detection fails, and `IFEvalResult.language_unchecked` counts those cases.

No PyPI package ships these checkers without heavy dependencies (``if-verifiable`` pulls ``datasets``
and needs NLTK downloads; ``lm-eval`` is a whole harness), hence this module.
"""

from __future__ import annotations

import collections
import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

RELATIONS = ("less than", "at least")


class _LangState:
    """Counts checks whose language part could not be verified (no langdetect / detection failed)."""

    def __init__(self) -> None:
        self.unchecked = 0


@functools.lru_cache(maxsize=1)
def _lang_factory() -> Any:
    try:
        from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
    except ImportError:
        return None
    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.set_seed(0)
    return factory


def detect_language(text: str) -> str | None:
    """ISO code of ``text`` (``"en"``, ``"de"`` ...) or None when undetectable or langdetect is absent."""
    factory = _lang_factory()
    if factory is None:
        return None
    try:
        detector = factory.create()
        detector.append(text)
        return detector.detect()
    except Exception:  # langdetect raises LangDetectException on text without features
        return None


def _compare(count: int, target: int, relation: str) -> bool:
    if relation == "less than":
        return count < target
    if relation == "at least":
        return count >= target
    raise ValueError(f"relation must be one of {RELATIONS}, got {relation!r}")


def count_words(text: str) -> int:
    """IFEval's word count: ``\\w+`` tokens."""
    return len(re.findall(r"\w+", text))


_ABBREV = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|Prof|Sr|Jr|St|vs|etc|e\.g|i\.e|Inc|Ltd|Co)\.", re.IGNORECASE)


def count_sentences(text: str) -> int:
    """Sentences = spans ending in ``.``, ``!`` or ``?`` (or the end of text), abbreviations protected."""
    protected = _ABBREV.sub(lambda m: m.group(0).replace(".", "<prd>"), text)
    protected = re.sub(r"(\d)\.(\d)", r"\1<prd>\2", protected)
    parts = re.split(r"(?<=[.!?])[\"')\]]*\s+", protected.strip())
    return len([p for p in parts if re.search(r"\w", p)])


# --- the 25 checks -----------------------------------------------------------------------------


def _keywords_existence(r: str, keywords: Sequence[str] = (), **_: Any) -> bool:
    return all(re.search(k, r, flags=re.IGNORECASE) for k in keywords)


def _keywords_frequency(
    r: str, keyword: str = "", frequency: int = 1, relation: str = "at least", **_: Any
) -> bool:
    return _compare(len(re.findall(keyword, r, flags=re.IGNORECASE)), int(frequency), relation)


def _forbidden_words(r: str, forbidden_words: Sequence[str] = (), **_: Any) -> bool:
    return not any(re.search(r"\b" + w + r"\b", r, flags=re.IGNORECASE) for w in forbidden_words)


def _letter_frequency(
    r: str, letter: str = "a", let_frequency: int = 1, let_relation: str = "at least", **_: Any
) -> bool:
    return _compare(collections.Counter(r.lower())[letter.lower()], int(let_frequency), let_relation)


def _response_language(r: str, language: str = "en", *, _lang: _LangState, **_: Any) -> bool:
    detected = detect_language(r)
    if detected is None:
        _lang.unchecked += 1
        return True
    return detected == language


def _number_sentences(r: str, num_sentences: int = 1, relation: str = "at least", **_: Any) -> bool:
    return _compare(count_sentences(r), int(num_sentences), relation)


def _number_paragraphs(r: str, num_paragraphs: int = 1, **_: Any) -> bool:
    paragraphs = re.split(r"\s?\*\*\*\s?", r)
    n = len(paragraphs)
    for i, p in enumerate(paragraphs):
        if not p.strip():
            if i in (0, len(paragraphs) - 1):
                n -= 1
            else:
                return False
    return n == int(num_paragraphs)


def _number_words(r: str, num_words: int = 1, relation: str = "at least", **_: Any) -> bool:
    return _compare(count_words(r), int(num_words), relation)


def _nth_paragraph_first_word(
    r: str, num_paragraphs: int = 1, nth_paragraph: int = 1, first_word: str = "", **_: Any
) -> bool:
    paragraphs = re.split(r"\n\n", r)
    n = len(paragraphs) - sum(1 for p in paragraphs if not p.strip())
    if int(nth_paragraph) > n:
        return False
    paragraph = paragraphs[int(nth_paragraph) - 1].strip()
    if not paragraph:
        return False
    word = paragraph.split()[0].strip().lstrip("'").lstrip('"')
    first = ""
    for ch in word:
        if ch in {".", ",", "?", "!", "'", '"'}:
            break
        first += ch.lower()
    return n == int(num_paragraphs) and first == first_word.lower()


def _number_placeholders(r: str, num_placeholders: int = 1, **_: Any) -> bool:
    return len(re.findall(r"\[.*?\]", r)) >= int(num_placeholders)


def _postscript(r: str, postscript_marker: str = "P.S.", **_: Any) -> bool:
    text = r.lower()
    if postscript_marker == "P.P.S":
        pattern = r"\s*p\.\s?p\.\s?s.*$"
    elif postscript_marker == "P.S.":
        pattern = r"\s*p\.\s?s\..*$"
    else:
        pattern = r"\s*" + postscript_marker.lower() + r".*$"
    return bool(re.findall(pattern, text, flags=re.MULTILINE))


def _number_bullet_lists(r: str, num_bullets: int = 1, **_: Any) -> bool:
    stars = re.findall(r"^\s*\*[^\*].*$", r, flags=re.MULTILINE)
    dashes = re.findall(r"^\s*-.*$", r, flags=re.MULTILINE)
    return len(stars) + len(dashes) == int(num_bullets)


def _constrained_response(r: str, **_: Any) -> bool:
    text = r.strip()
    return any(o in text for o in ("My answer is yes.", "My answer is no.", "My answer is maybe."))


def _number_highlighted_sections(r: str, num_highlights: int = 1, **_: Any) -> bool:
    count = sum(1 for h in re.findall(r"\*[^\n\*]*\*", r) if h.strip("*").strip())
    count += sum(
        1 for h in re.findall(r"\*\*[^\n\*]*\*\*", r) if h.removeprefix("**").removesuffix("**").strip()
    )
    return count >= int(num_highlights)


def _multiple_sections(r: str, section_spliter: str = "Section", num_sections: int = 1, **_: Any) -> bool:
    sections = re.split(r"\s?" + section_spliter + r"\s?\d+\s?", r)
    return len(sections) - 1 >= int(num_sections)


def _json_format(r: str, **_: Any) -> bool:
    text = r.strip()
    for prefix in ("```json", "```Json", "```JSON", "```"):
        text = text.removeprefix(prefix)
    text = text.removesuffix("```").strip()
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _title(r: str, **_: Any) -> bool:
    return any(t.lstrip("<").rstrip(">").strip() for t in re.findall(r"<<[^\n]+>>", r))


def _two_responses(r: str, **_: Any) -> bool:
    parts = r.split("******")
    valid = []
    for i, p in enumerate(parts):
        if not p.strip():
            if i not in (0, len(parts) - 1):
                return False
        else:
            valid.append(p)
    return len(valid) == 2 and valid[0].strip() != valid[1].strip()


def _repeat_prompt(r: str, prompt_to_repeat: str = "", **_: Any) -> bool:
    return r.strip().lower().startswith(prompt_to_repeat.strip().lower())


def _end_checker(r: str, end_phrase: str = "", **_: Any) -> bool:
    return r.strip().strip('"').lower().endswith(end_phrase.strip().lower())


def _capital_word_frequency(
    r: str, capital_frequency: int = 1, capital_relation: str = "at least", **_: Any
) -> bool:
    words = re.findall(r"\w+(?:'\w+)?|[^\w\s]", r)
    return _compare(sum(1 for w in words if w.isupper()), int(capital_frequency), capital_relation)


def _english_capital(r: str, *, _lang: _LangState, **_: Any) -> bool:
    detected = detect_language(r)
    if detected is None:
        _lang.unchecked += 1
        return r.isupper()
    return r.isupper() and detected == "en"


def _english_lowercase(r: str, *, _lang: _LangState, **_: Any) -> bool:
    detected = detect_language(r)
    if detected is None:
        _lang.unchecked += 1
        return r.islower()
    return r.islower() and detected == "en"


def _no_comma(r: str, **_: Any) -> bool:
    return not re.search(r"\,", r)


def _quotation(r: str, **_: Any) -> bool:
    text = r.strip()
    return len(text) > 1 and text[0] == '"' and text[-1] == '"'


CHECKS: Mapping[str, Callable[..., bool]] = {
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
_NEEDS_LANG = {"language:response_language", "change_case:english_capital", "change_case:english_lowercase"}


@dataclass(frozen=True)
class IFEvalResult:
    """follow_list: one bool per instruction; unknown: instruction ids with no checker (counted failed)."""

    follow_list: tuple[bool, ...]
    unknown: tuple[str, ...] = ()
    language_unchecked: int = 0
    follow_all: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "follow_all", all(self.follow_list))


def loose_variants(response: str) -> list[str]:
    """IFEval's loose mode: the response, without its first / last line, and without ``*``."""
    lines = response.split("\n")
    drop_first = "\n".join(lines[1:]).strip()
    drop_last = "\n".join(lines[:-1]).strip()
    drop_both = "\n".join(lines[1:-1]).strip()
    return [
        response,
        response.replace("*", ""),
        drop_first,
        drop_last,
        drop_both,
        drop_first.replace("*", ""),
        drop_last.replace("*", ""),
        drop_both.replace("*", ""),
    ]


def check_instructions(
    response: str,
    instruction_ids: Sequence[str],
    kwargs_list: Sequence[Mapping[str, Any] | None],
    prompt: str = "",
    loose: bool = False,
) -> IFEvalResult:
    """Check every instruction of one prompt (strict by default; ``loose=True`` for the upper bound).

    An empty (whitespace) response follows nothing, as in ``evaluation_main``.
    """
    lang = _LangState()
    candidates = loose_variants(response) if loose else [response]
    follows: list[bool] = []
    unknown: list[str] = []
    for idx, instruction_id in enumerate(instruction_ids):
        check = CHECKS.get(instruction_id)
        if check is None:
            unknown.append(instruction_id)
            follows.append(False)
            continue
        kwargs = {k: v for k, v in dict(kwargs_list[idx] or {}).items() if v is not None}
        if instruction_id == "combination:repeat_prompt" and "prompt_to_repeat" not in kwargs:
            kwargs["prompt_to_repeat"] = prompt
        if instruction_id in _NEEDS_LANG:
            kwargs["_lang"] = lang
        follows.append(any(c.strip() and check(c, **kwargs) for c in candidates))
    return IFEvalResult(tuple(follows), tuple(unknown), lang.unchecked)

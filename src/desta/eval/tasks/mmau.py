"""MMAU v05.15.25 (Sakshi113/MMAU): test-mini (1,000 items, answers public) and test (9,000, withheld).

Layout (the MMAU repository)::

    DIR/mmau-test-mini.json        (or mmau-test.json)
    DIR/test-mini-audios/<id>.wav  (paths from each record's ``audio_id``, leading ./ removed)

Prompt: DeSTA2.5's current MMAU script (reference §13.1). Scoring: MMAU ``evaluation.py``
``string_match`` on ``model_output`` (see `MultipleChoiceTask`); accuracy by task, difficulty and
sub-category. For the test split there are no answers: the run writes the submission file for the
``sonalkum/MMAU-Eval`` space and reports counts only.
"""

from __future__ import annotations

from desta.eval.tasks.multiple_choice import MultipleChoiceTask

SYSTEM_PROMPT = 'Focus on the audio clips and instructions. Put your answer in the format "The correct answer is: "___" ".'


class MMAU(MultipleChoiceTask):
    NAME = "mmau"
    VERSION = "v05.15.25"
    PUBLISHED_KEY = "mmau-test-mini"
    BENCHMARK = "MMAU"
    AUDIO_KEY = "audio_id"
    OUTPUT_KEY = "model_output"
    GROUP_KEYS = ("task", "difficulty", "sub-category")
    SYSTEM_PROMPT = SYSTEM_PROMPT
    SCORER_SOURCE = "Sakshi113/MMAU evaluation.py"

    def __init__(self, split: str = "test-mini") -> None:
        if split not in ("test-mini", "test"):
            raise ValueError(f"MMAU split must be 'test-mini' or 'test', got {split!r}")
        self.split = split
        self.NAME = "mmau" if split == "test-mini" else "mmau-test"
        self.PUBLISHED_KEY = f"mmau-{split}"
        self.SUBMISSION = f"mmau-{split}-submission.json"
        self.META_FILES = (f"mmau-{split}.json", f"mmau-{split}.jsonl")
        self.LAYOUT_HINT = (
            f"the Sakshi113/MMAU layout: DIR/mmau-{split}.json + DIR/{split}-audios/*.wav "
            "(unpack the released audio tarball)"
        )

"""Former home of the desta-tiny recipe, now :mod:`desta.recipes.tiny`; these names stay importable."""

from desta.recipes.tiny import TinyOptions, log, recipe_path, run_tiny, tiny_model_config
from desta.recipes.tiny.card import if_check_lines, model_card, plot_results, targets_lines
from desta.recipes.tiny.evaluate import (
    README_QUESTION,
    evaluate_instruction_following,
    evaluate_model,
    evaluate_text_backbone,
    example_answer,
    held_out_clips,
)
from desta.recipes.tiny.evaluate import batched as _batched
from desta.recipes.tiny.evaluate import check_same_rate as _check_same_rate
from desta.recipes.tiny.stages import (
    BREVITY,
    TASK_QUESTIONS,
    build_corpus_stage,
    generate_stage,
    ship,
    task_targets_stage,
    train_stage,
)

__all__ = [
    "BREVITY",
    "README_QUESTION",
    "TASK_QUESTIONS",
    "TinyOptions",
    "_batched",
    "_check_same_rate",
    "build_corpus_stage",
    "evaluate_instruction_following",
    "evaluate_model",
    "evaluate_text_backbone",
    "example_answer",
    "generate_stage",
    "held_out_clips",
    "if_check_lines",
    "log",
    "model_card",
    "plot_results",
    "recipe_path",
    "run_tiny",
    "ship",
    "targets_lines",
    "task_targets_stage",
    "tiny_model_config",
    "train_stage",
]

"""Benchmark evaluation: one small task class per benchmark, predictions first, official scoring.

from desta.eval import evaluate, get_task, LocalModelPredictor
scores = evaluate(get_task("mmau"), "data/MMAU", "runs/mmau", LocalModelPredictor.load(None))
"""

from __future__ import annotations

from desta.eval.base import DataLayoutError, EvalError, Item, Scores, Task
from desta.eval.judge import Judge, JudgeOptions, JudgeSpec
from desta.eval.predictors import (
    EnginePredictor,
    LocalModelPredictor,
    OpenAIEndpointPredictor,
    TextLLMPredictor,
)
from desta.eval.registry import TASKS, get_task
from desta.eval.run import RunOptions, evaluate, read_predictions

__all__ = [
    "TASKS",
    "DataLayoutError",
    "EnginePredictor",
    "EvalError",
    "Item",
    "Judge",
    "JudgeOptions",
    "JudgeSpec",
    "LocalModelPredictor",
    "OpenAIEndpointPredictor",
    "RunOptions",
    "Scores",
    "Task",
    "TextLLMPredictor",
    "evaluate",
    "get_task",
    "read_predictions",
]

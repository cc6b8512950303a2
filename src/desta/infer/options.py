"""Generation options and results: defined in :mod:`desta.model.options` (the model's ``generate`` takes
them), re-exported here beside the rest of inference."""

from __future__ import annotations

from desta.model.options import GenerationOptions, GenerationResult

__all__ = ["GenerationOptions", "GenerationResult"]

"""The local model's generation path, re-exported: the loop lives in :mod:`desta.model.generation` so
that ``DeSTAModel.generate`` / ``stream`` reach it without importing a layer above the model."""

from __future__ import annotations

from desta.model.generation import Conversation, Generator, PreparedBatch, as_batch

__all__ = ["Conversation", "Generator", "PreparedBatch", "as_batch"]

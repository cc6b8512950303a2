"""Transcripts for windows without one: defined in :mod:`desta.model.asr`, re-exported here."""

from __future__ import annotations

from desta.model.asr import WindowTranscriber, fingerprint

__all__ = ["WindowTranscriber", "fingerprint"]

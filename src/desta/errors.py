"""Exceptions that `desta` raises for bad input. Each message says what went wrong and what to do."""

from __future__ import annotations


class DeSTAError(Exception):
    """Base class of every error that `desta` raises on purpose."""


class AudioError(DeSTAError, ValueError):
    """An audio input could not be used (unreadable, empty, NaN/inf samples, too long, ...)."""


class ConfigError(DeSTAError, ValueError):
    """A configuration, recipe or checkpoint does not match what was expected."""


class CheckpointError(ConfigError):
    """A checkpoint has missing, unexpected or mis-shaped weights."""


class BackboneUnavailableError(DeSTAError, RuntimeError):
    """A backbone (Whisper or LLM) cannot be found locally, offline or on the hub."""

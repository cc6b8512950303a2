"""The DeSTA prompt layout for vLLM, without vLLM: placeholder counts are known before the model runs.

vLLM must know, at preprocessing time, how many positions each audio item fills. DeSTA's audio block
per 30 s window is ``Q`` connector vectors plus the window's *transcript*; the transcript is decoded
first (or given by the caller) and inserted as ordinary text tokens after the ``Q`` query slots::

    <|AUDIO|>  ->  <start_audio> [PH x Q][transcript_1 ids] [PH x Q][transcript_2 ids] ... <end_audio>

Only the ``PH`` slots receive embeddings from the model (``W * Q`` per audio); the transcript ids are
embedded by the LLM's own table, which is exactly what the official model writes into those slots.
This is the same layout :class:`desta.model.processor.DeSTAProcessor` builds for ``generate``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from desta.errors import DeSTAError


def window_count(wave: np.ndarray) -> int:
    """Number of 30 s windows ``desta`` splits a 16 kHz clip into (same rule as ``split_windows``)."""
    from desta.audio import split_windows

    return len(split_windows(np.asarray(wave)))


def audio_block_ids(
    transcript_ids: Sequence[Sequence[int]],
    *,
    n_queries: int,
    placeholder_id: int,
    start_ids: Sequence[int],
    end_ids: Sequence[int],
) -> list[int]:
    """Token ids replacing one ``<|AUDIO|>``: one ``[PH x Q][transcript]`` group per window.

    ``transcript_ids`` holds one id list per window (an empty transcript should already be the ids of
    ``" "``, as the official model does for silence).
    """
    if not transcript_ids:
        raise DeSTAError("an audio item needs at least one window")
    ids = list(start_ids)
    for window in transcript_ids:
        if placeholder_id in window:
            raise DeSTAError("a transcript tokenized to the placeholder id; pick another placeholder token")
        ids += [placeholder_id] * n_queries
        ids += list(window)
    ids += list(end_ids)
    return ids


def n_embedding_slots(n_windows: int, n_queries: int) -> int:
    """Embeddings the model returns for an audio item: ``(n_windows * Q, hidden)``."""
    return n_windows * n_queries

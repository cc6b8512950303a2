"""The DeSTA prompt layout for vLLM, without vLLM: placeholder counts are known before the model runs.

vLLM must know, at preprocessing time, how many positions each audio item fills. DeSTA's audio block
per 30 s window is ``Q`` connector vectors plus the window's *transcript* (ordinary text tokens)::

    <start_audio><|AUDIO|><end_audio>
                 ^ one added special token, replaced by  [PH x Q][transcript_1] [PH x Q][transcript_2] ...

``<start_audio>`` / ``<end_audio>`` stay text in the prompt (vLLM's placeholder string carries them),
so the text around the audio tokenizes exactly as :class:`desta.model.processor.DeSTAProcessor`
tokenizes it (it splits the rendered chat at the locator, as a tokenizer splits at a special token).
Only the ``PH`` slots receive embeddings from the model (``W * Q`` per audio); the transcript ids are
embedded by the LLM's own table, which is what the official model writes into those slots.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from desta.errors import DeSTAError
from desta.model.processor import audio_block


def window_count(wave: np.ndarray) -> int:
    """Number of 30 s windows ``desta`` splits a 16 kHz clip into (same rule as ``split_windows``)."""
    from desta.audio import split_windows

    return len(split_windows(np.asarray(wave)))


def audio_block_ids(
    transcript_ids: Sequence[Sequence[int]], *, n_queries: int, placeholder_id: int
) -> list[int]:
    """Token ids replacing one audio locator: :func:`desta.model.processor.audio_block`, the one layout.

    ``transcript_ids`` holds one id list per window (an empty transcript should already be the ids of
    :data:`~desta.model.processor.NO_SPEECH`, as the official model does for silence). vLLM finds the
    embedding slots by the placeholder id, so no transcript may contain it.
    """
    if n_queries < 1:
        raise DeSTAError(f"n_queries must be >= 1, got {n_queries}")
    if any(placeholder_id in window for window in transcript_ids):
        raise DeSTAError("a transcript tokenized to the placeholder id; pick another placeholder token")
    return audio_block(transcript_ids, n_queries, placeholder_id)[0]


def n_embedding_slots(n_windows: int, n_queries: int) -> int:
    """Embeddings the model returns for an audio item: ``(n_windows * Q, hidden)``."""
    return n_windows * n_queries

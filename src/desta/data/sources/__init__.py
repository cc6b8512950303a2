"""Corpus readers: turn a corpus folder (or a manifest file) into :class:`AudioRecord` objects.

Every reader has the signature ``reader(root, *, rejects=None, **options) -> Iterator[AudioRecord]``:

- it reads metadata only (durations come from audio headers or the corpus's own tables, never from
  decoding), so reading is fast;
- a bad item (missing audio file, row without a required field, unreadable header) is appended to
  ``rejects`` as ``{"source", "path", "reason"}`` and skipped; it never stops the run;
- a folder without the expected layout raises :class:`~desta.data.sources._common.LayoutError` (a
  :class:`DeSTAError`) naming the layout it looked for.

Attribute names and values follow the official seed descriptions of each corpus (reference §11.4).
Each reader module's docstring shows the on-disk layout it expects.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from desta.data.records import AudioRecord
from desta.data.sources._common import LayoutError
from desta.data.sources.asterisk import read_asterisk
from desta.data.sources.commonvoice import read_commonvoice
from desta.data.sources.crema_d import read_crema_d
from desta.data.sources.iemocap import read_iemocap
from desta.data.sources.lhotse_manifest import read_lhotse
from desta.data.sources.libri import read_librispeech, read_libritts, read_libritts_r
from desta.data.sources.libricount import read_libricount
from desta.data.sources.meld import read_meld
from desta.data.sources.music import read_gtzan, read_nsynth
from desta.data.sources.realdata import read_realdata
from desta.data.sources.sound import read_audiocaps, read_clotho, read_esc50, read_vocalsound
from desta.data.sources.speech_commands import read_speech_commands
from desta.data.sources.table import read_table
from desta.data.sources.tuxpaint import read_tuxpaint
from desta.data.sources.vctk import read_vctk
from desta.data.sources.voxceleb import read_voxceleb1
from desta.errors import DeSTAError

SOURCES: dict[str, Callable[..., Iterator[AudioRecord]]] = {
    "table": read_table,
    "lhotse": read_lhotse,
    "librispeech": read_librispeech,
    "libritts": read_libritts,
    "libritts-r": read_libritts_r,
    "vctk": read_vctk,
    "crema-d": read_crema_d,
    "iemocap": read_iemocap,
    "meld": read_meld,
    "commonvoice": read_commonvoice,
    "voxceleb1": read_voxceleb1,
    "speech-commands": read_speech_commands,
    "libricount": read_libricount,
    "esc50": read_esc50,
    "audiocaps": read_audiocaps,
    "clotho": read_clotho,
    "vocalsound": read_vocalsound,
    "gtzan": read_gtzan,
    "nsynth": read_nsynth,
    "asterisk": read_asterisk,
    "realdata": read_realdata,
    "tuxpaint": read_tuxpaint,
}


def _key(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())


def get_source(name: str) -> Callable[..., Iterator[AudioRecord]]:
    """The reader registered as ``name`` (case, ``-`` and ``_`` ignored: ``"CREMA_D"`` works)."""
    wanted = _key(name)
    for key, reader in SOURCES.items():
        if _key(key) == wanted:
            return reader
    raise DeSTAError(f"unknown data source {name!r}; known sources: {', '.join(sorted(SOURCES))}")


def iter_records(name: str, root: str | Path, **options) -> Iterator[AudioRecord]:
    """Records of source ``name`` under ``root``; ``options`` go to the reader (``rejects=[]`` collects
    bad items). An option the reader does not take raises :class:`DeSTAError` listing the valid ones."""
    reader = get_source(name)
    params = inspect.signature(reader).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        valid = [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY]
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise DeSTAError(f"source {name!r} does not take option(s) {unknown}; valid options: {valid}")
    return reader(os.fspath(root), **options)


__all__ = ["SOURCES", "LayoutError", "get_source", "iter_records"]

"""LibriCount (speaker-count mixtures of LibriSpeech, 0-10 speakers, 5 s).

::

    ROOT/[test/]<count>_<uuid>.wav     (+ <count>_<uuid>.json with per-speaker activity)

Seed as the official ``[00:00-00:05] (Number of Speakers: 0, Duration: 5s)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from desta.data.describe import format_duration
from desta.data.records import AudioRecord
from desta.data.sources._common import audio_duration, check_root, layout_error, reject


def read_libricount(
    root: str | os.PathLike,
    *,
    rejects: list[dict] | None = None,
    probe: bool = True,
    corpus: str = "LibriCount",
) -> Iterator[AudioRecord]:
    root = check_root(root, corpus)
    folder = next((d for d in (root / "test", root) if d.is_dir() and any(d.glob("[0-9]*_*.wav"))), None)
    if folder is None:
        raise layout_error(corpus, "ROOT/test/<count>_<uuid>.wav", root)
    for audio in sorted(folder.glob("[0-9]*_*.wav")):
        count = audio.stem.split("_", 1)[0]
        if not count.isdigit():
            reject(rejects, corpus, audio, "file name does not start with a speaker count")
            continue
        ok, duration = audio_duration(audio, corpus, rejects, probe=probe)
        if not ok:
            continue
        attrs = {"Number of Speakers": str(int(count))}
        if duration is not None:
            attrs["Duration"] = format_duration(duration)
        yield AudioRecord(
            id=audio.stem, audio=str(audio), corpus=corpus, duration=duration, attributes=attrs, kind="speech"
        )

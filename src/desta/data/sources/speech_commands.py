"""Google Speech Commands (v0.01 / v0.02).

::

    ROOT/<word>/<speaker-hash>_nohash_<n>.wav       1 s clips, e.g. yes/0a7c2a8d_nohash_0.wav
    ROOT/_background_noise_/<noise>.wav             long noise files
    ROOT/validation_list.txt, ROOT/testing_list.txt  relative paths "<word>/<file>.wav"

Seed as the official ``[00:00-00:01] (Command: silence, Duration: 1s)``: the command is an attribute,
not a transcript. ``split`` selects ``train`` (files in neither list), ``validation`` or ``testing``;
``None`` takes all. With ``silence=True`` the background-noise files are cut into ``silence_seconds``
long segments labelled ``Command: silence`` (records with ``start`` > 0 on the same file).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

from desta.data.describe import format_duration
from desta.data.records import AudioRecord
from desta.data.sources._common import audio_duration, check_root, layout_error, reject

_SPLITS = ("train", "validation", "testing")


def _list(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def read_speech_commands(
    root: str | os.PathLike,
    *,
    rejects: list[dict] | None = None,
    probe: bool = True,
    split: str | None = None,
    silence: bool = False,
    silence_seconds: float = 1.0,
    corpus: str = "SpeechCommands",
) -> Iterator[AudioRecord]:
    if split is not None and split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS} or None, got {split!r}")
    root = check_root(root, corpus)
    words = sorted(
        p
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith("_") and any(p.glob("*_nohash_*.wav"))
    )
    if not words:
        raise layout_error(corpus, "ROOT/<word>/<hash>_nohash_<n>.wav", root)
    lists = {"validation": _list(root / "validation_list.txt"), "testing": _list(root / "testing_list.txt")}
    held_out = lists["validation"] | lists["testing"]
    for word_dir in words:
        for audio in sorted(word_dir.glob("*.wav")):
            rel = f"{word_dir.name}/{audio.name}"
            if split == "train" and rel in held_out:
                continue
            if split in ("validation", "testing") and rel not in lists[split]:
                continue
            ok, duration = audio_duration(audio, corpus, rejects, probe=probe)
            if not ok:
                continue
            attrs = {"Command": word_dir.name}
            if duration is not None:
                attrs["Duration"] = format_duration(duration)
            yield AudioRecord(
                id=rel[:-4],
                audio=str(audio),
                corpus=corpus,
                duration=duration,
                attributes=attrs,
                language="en",
                kind="speech",
            )
    noise_dir = root / "_background_noise_"
    if silence and split in (None, "train") and noise_dir.is_dir():
        for audio in sorted(noise_dir.glob("*.wav")):
            ok, total = audio_duration(audio, corpus, rejects, probe=True)
            if not ok or total is None:
                continue
            n = int(math.floor(total / silence_seconds + 1e-9))
            if n == 0:
                reject(rejects, corpus, audio, f"shorter than {silence_seconds}s")
            for k in range(n):
                yield AudioRecord(
                    id=f"_background_noise_/{audio.stem}#{k}",
                    audio=str(audio),
                    corpus=corpus,
                    start=k * silence_seconds,
                    duration=silence_seconds,
                    attributes={"Command": "silence", "Duration": format_duration(silence_seconds)},
                    kind="speech",
                )

"""Music corpora: GTZAN and NSynth.

GTZAN (original tarball and the Kaggle ``Data/genres_original`` copy)::

    ROOT/[genres|genres_original|Data/genres_original]/<genre>/<genre>.000NN.wav
    seed: [00:00-00:30] (Genre: reggae, Duration: 30s)

NSynth::

    ROOT/[nsynth-<split>/]examples.json   {"<note_str>": {"instrument_family_str": "bass",
                                          "instrument_source_str": "electronic", "pitch": 22, ...}}
    ROOT/[nsynth-<split>/]audio/<note_str>.wav
    seed: [00:00-00:04] (Family: bass, Source: electronic, MIDI Note: 022)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

from desta.data.describe import format_duration
from desta.data.records import AudioRecord
from desta.data.sources._common import audio_duration, check_root, layout_error, reject


def read_gtzan(
    root: str | os.PathLike,
    *,
    rejects: list[dict] | None = None,
    probe: bool = True,
    corpus: str = "GTZAN",
) -> Iterator[AudioRecord]:
    """One record per track (the Kaggle copy's unreadable ``jazz.00054.wav`` is reported, not fatal)."""
    root = check_root(root, corpus)
    candidates = (root / "genres", root / "genres_original", root / "Data" / "genres_original", root)
    base = next((d for d in candidates if d.is_dir() and any(d.glob("*/*.000[0-9][0-9].wav"))), None)
    if base is None:
        raise layout_error(corpus, "ROOT/genres/<genre>/<genre>.000NN.wav", root)
    for audio in sorted(base.glob("*/*.000[0-9][0-9].wav")):
        genre = audio.parent.name
        if not audio.name.startswith(genre + "."):
            reject(rejects, corpus, audio, f"file name does not start with its folder's genre {genre!r}")
            continue
        ok, duration = audio_duration(audio, corpus, rejects, probe=probe)
        if not ok:
            continue
        attrs = {"Genre": genre}
        if duration is not None:
            attrs["Duration"] = format_duration(duration)
        yield AudioRecord(
            id=audio.stem,
            audio=str(audio),
            corpus=corpus,
            duration=duration,
            attributes=attrs,
            kind="music",
        )


def read_nsynth(
    root: str | os.PathLike,
    *,
    rejects: list[dict] | None = None,
    probe: bool = True,
    corpus: str = "NSynth",
) -> Iterator[AudioRecord]:
    root = check_root(root, corpus)
    metas = sorted(root.glob("examples.json")) or sorted(root.glob("nsynth-*/examples.json"))
    if not metas:
        raise layout_error(corpus, "ROOT/nsynth-<split>/examples.json + audio/<note_str>.wav", root)
    for meta in metas:
        try:
            notes = json.loads(meta.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            reject(rejects, corpus, meta, f"not valid JSON ({err.msg})")
            continue
        for name, info in sorted(notes.items()):
            try:
                family = info["instrument_family_str"]
                source = info["instrument_source_str"]
                pitch = int(info["pitch"])
            except (KeyError, TypeError, ValueError) as err:
                reject(rejects, corpus, meta, f"note {name}: missing field {err}")
                continue
            audio = meta.parent / "audio" / f"{name}.wav"
            ok, duration = audio_duration(audio, corpus, rejects, probe=probe)
            if not ok:
                continue
            yield AudioRecord(
                id=name,
                audio=str(audio),
                corpus=corpus,
                duration=duration,
                attributes={"Family": family, "Source": source, "MIDI Note": f"{pitch:03d}"},
                kind="music",
            )

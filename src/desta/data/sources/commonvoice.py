"""Mozilla Common Voice (one locale folder of any release).

::

    ROOT/<table>.tsv    validated.tsv (default), train.tsv, dev.tsv, test.tsv, ...; columns
        client_id, path, sentence[_id], up_votes, down_votes, age, gender, accents (older: accent),
        variant, locale, segment
    ROOT/clips/<path>          MP3 clips
    ROOT/clip_durations.tsv    clip<TAB>duration[ms]   (newer releases; else the MP3 header is read)

Attribute values are written as the release spells them, as the official seed ``(Gender:
male_masculine, Age: thirties, Accent: West Indies and Bermuda, Duration: 4s)`` shows; empty columns
are left out.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from desta.data.describe import format_duration
from desta.data.records import AudioRecord
from desta.data.sources._common import audio_duration, check_root, layout_error, read_delimited, reject


def read_commonvoice(
    root: str | os.PathLike,
    *,
    rejects: list[dict] | None = None,
    probe: bool = True,
    table: str = "validated",
    corpus: str = "CommonVoice",
) -> Iterator[AudioRecord]:
    root = check_root(root, corpus)
    tsv = root / f"{table}.tsv"
    if not tsv.is_file() or not (root / "clips").is_dir():
        raise layout_error(corpus, f"ROOT/{table}.tsv + ROOT/clips/<clip>.mp3", root)
    durations: dict[str, float] = {}
    dur_file = root / "clip_durations.tsv"
    if dur_file.is_file():
        for row in read_delimited(dur_file, "\t"):
            try:
                durations[row.get("clip", "")] = float(row.get("duration[ms]", "")) / 1000.0
            except ValueError:
                continue
    for row in read_delimited(tsv, "\t"):
        name, sentence = row.get("path", ""), row.get("sentence", "")
        if not name or not sentence:
            reject(
                rejects, corpus, tsv, f"row without path/sentence: client {row.get('client_id', '?')[:12]}"
            )
            continue
        audio = root / "clips" / name
        duration = durations.get(name)
        if duration is None:
            ok, duration = audio_duration(audio, corpus, rejects, probe=probe)
            if not ok:
                continue
        elif not audio.is_file():
            reject(rejects, corpus, audio, "audio file not found")
            continue
        attrs = {}
        for key, col in (("Gender", "gender"), ("Age", "age"), ("Accent", "accents")):
            value = row.get(col) or (row.get("accent", "") if col == "accents" else "")
            if value:
                attrs[key] = value
        if duration is not None:
            attrs["Duration"] = format_duration(duration)
        locale = row.get("locale", "")
        yield AudioRecord(
            id=os.path.splitext(name)[0],
            audio=str(audio),
            corpus=corpus,
            duration=duration,
            transcript=" ".join(sentence.split()),
            attributes=attrs,
            language=locale.split("-")[0].lower() or None,
            kind="speech",
        )

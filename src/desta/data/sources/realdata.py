"""The ``realdata`` collection: real labelled recordings from public corpora in one table.

Layout (the folder desta-tiny's recipe takes with ``--realdata``)::

    ROOT/metadata.csv   file,source,license,speaker,gender,age,language,emotion,sound,transcript,split
    ROOT/audio/<source>/<name>.ogg

``gender`` is ``male``/``female`` or empty (unknown: never guessed), ``language`` an English name
("Korean"), ``emotion`` one of angry, calm, disgust, fear, happy, neutral, sad, surprise or empty,
``sound`` a sound source (``cat``) for non-speech rows, ``split`` ``train``/``heldout`` (disjoint by
speaker). The sources and their licences (several non-commercial) are listed in docs/training.md.

Records (seed attributes spelled as the official seed descriptions spell them)::

    id "ravdess/03-01-05-01-01-01-12", transcript "Kids are talking by the door.", language "en",
    attributes {"Language": "English", "Gender": "Female", "Emotion": "Angry"}
    id "catmeows/ANI01_B_00", kind "sound", caption "a cat meowing", attributes {"Animal": "Cat"}

The speaker, age, licence and split are kept out of the seed attributes (they are not something a
listener hears, and a self-generated answer must not quote them); ``split=`` selects rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from desta.data.records import AudioRecord
from desta.data.sources._common import audio_duration, check_root, layout_error, read_delimited, reject
from desta.errors import DeSTAError
from desta.rules import LANGUAGE_CODES

SPLITS = ("train", "heldout")
#: what a listener hears for each ``sound`` value: the caption of the clip
SOUND_CAPTIONS = {"cat": "a cat meowing"}


def _language_code(name: str) -> str | None:
    code = LANGUAGE_CODES.get(name.strip().lower())
    if code is None and name.strip():
        raise DeSTAError(f"unknown language {name!r}: add it to desta.rules.LANGUAGES")
    return code


def read_realdata(
    root: str | os.PathLike,
    *,
    rejects: list[dict] | None = None,
    probe: bool = True,
    split: str | None = None,
    corpus: str = "realdata",
) -> Iterator[AudioRecord]:
    """Rows of ``ROOT/metadata.csv`` (only ``split`` ones when given) -> records; see the module docstring."""
    if split is not None and split not in SPLITS:
        raise DeSTAError(f"realdata: split {split!r} is not one of {SPLITS}")
    root = check_root(root, corpus)
    table = root / "metadata.csv"
    if not table.is_file():
        raise layout_error(corpus, "ROOT/metadata.csv + ROOT/audio/<source>/<name>.ogg", root)
    for n, row in enumerate(read_delimited(table, ","), 2):
        if split is not None and row.get("split", "") != split:
            continue
        rel = row.get("file", "")
        if not rel:
            reject(rejects, corpus, f"{table}:{n}", "row without a file")
            continue
        path = root / rel
        ok, duration = audio_duration(path, corpus, rejects, probe=probe)
        if not ok:
            continue
        source = row.get("source", "") or Path(rel).parent.name
        rid = f"{source}/{Path(rel).stem}"
        sound = row.get("sound", "").strip().lower()
        if sound:
            caption = SOUND_CAPTIONS.get(sound, sound)
            yield AudioRecord(rid, str(path), corpus, duration=duration, caption=caption,
                              attributes={"Animal": sound.capitalize()}, kind="sound")  # fmt: skip
            continue
        try:
            language = _language_code(row.get("language", ""))
        except DeSTAError as err:
            reject(rejects, corpus, f"{table}:{n}", str(err))
            continue
        attrs = {"Language": row["language"].strip()} if language else {}
        gender = row.get("gender", "").strip().lower()
        if gender in ("male", "female"):
            attrs["Gender"] = gender.capitalize()
        emotion = row.get("emotion", "").strip().lower()
        if emotion:
            attrs["Emotion"] = emotion.capitalize()
        yield AudioRecord(rid, str(path), corpus, duration=duration, transcript=row.get("transcript", "").strip(),
                          attributes=attrs, language=language, kind="speech")  # fmt: skip

"""LibriSpeech and LibriTTS / LibriTTS-R (same folder tree, different transcript files).

LibriSpeech::

    ROOT/[LibriSpeech/]<split>/<spk>/<chapter>/<spk>-<chapter>.trans.txt   "<spk>-<chapter>-<utt> TEXT"
    ROOT/[LibriSpeech/]<split>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac
    ROOT/[LibriSpeech/]SPEAKERS.TXT      "ID  |SEX| SUBSET |MINUTES| NAME" (";" comments)

LibriTTS and LibriTTS-R::

    ROOT/<split>/<spk>/<chapter>/<spk>_<chapter>_<para>_<sent>.wav
    ROOT/<split>/<spk>/<chapter>/<spk>_<chapter>_<para>_<sent>.normalized.txt   (and .original.txt)
    ROOT/<split>/<spk>/<chapter>/<spk>_<chapter>.trans.tsv   "id<TAB>original<TAB>normalized"
    ROOT/speakers.tsv   "READER<TAB>GENDER<TAB>SUBSET<TAB>NAME"   (or SPEAKERS.txt as LibriSpeech)

``ROOT`` may be the corpus folder (holding splits) or one split folder. Attributes: ``Gender``
(``Female``/``Male`` for LibriSpeech; ``female``/``male`` plus ``Speaker: <name>`` for LibriTTS-R, as the
official seed ``(Gender: male, Speaker: John Rose, ...)`` writes them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from desta.data.records import AudioRecord
from desta.data.sources._common import (
    audio_duration,
    check_root,
    gender_word,
    layout_error,
    reject,
    sentence_case,
)


def _speakers_txt(path: Path) -> dict[str, tuple[str, str]]:
    """``{speaker_id: (sex letter, name)}`` from LibriSpeech/LibriTTS ``SPEAKERS.TXT``."""
    out: dict[str, tuple[str, str]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) >= 5:
            out[parts[0]] = (parts[1], "|".join(parts[4:]).strip())
    return out


def _speakers_tsv(path: Path) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines()):
        parts = line.split("\t")
        if i == 0 and parts[0].strip().upper() == "READER":
            continue
        if len(parts) >= 2:
            out[parts[0].strip()] = (parts[1].strip(), parts[3].strip() if len(parts) > 3 else "")
    return out


def _find_up(root: Path, names: tuple[str, ...]) -> Path | None:
    """A metadata file in ``root``, its ``LibriSpeech``-style child, or up to two parents."""
    for folder in (root, root.parent, root.parent.parent):
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def _chapter_dirs(root: Path, pattern: str) -> list[Path]:
    """Chapter folders holding a ``pattern`` file, found at depth 2 or 3 (split folder or corpus root)."""
    for depth in ("*/*/*/", "*/*/", "*/*/*/*/"):
        found = sorted({p.parent for p in root.glob(depth + pattern)})
        if found:
            return found
    return []


def read_librispeech(
    root: str | os.PathLike,
    *,
    rejects: list[dict] | None = None,
    probe: bool = True,
    sentence_case_text: bool = True,
    corpus: str = "LibriSpeech",
) -> Iterator[AudioRecord]:
    """LibriSpeech utterances; transcripts are sentence-cased unless ``sentence_case_text=False``."""
    root = check_root(root, corpus)
    chapters = _chapter_dirs(root, "*.trans.txt")
    if not chapters:
        raise layout_error(corpus, "ROOT/<split>/<spk>/<chapter>/<spk>-<chapter>.trans.txt", root)
    spk_file = _find_up(root, ("SPEAKERS.TXT", "SPEAKERS.txt", "LibriSpeech/SPEAKERS.TXT"))
    speakers = _speakers_txt(spk_file) if spk_file else {}
    for chapter in chapters:
        for trans in sorted(chapter.glob("*.trans.txt")):
            for line in trans.read_text(encoding="utf-8", errors="replace").splitlines():
                uid, _, text = line.strip().partition(" ")
                if not uid:
                    continue
                if not text.strip():
                    reject(rejects, corpus, chapter / uid, "empty transcript")
                    continue
                audio = chapter / f"{uid}.flac"
                if not audio.is_file() and (chapter / f"{uid}.wav").is_file():
                    audio = chapter / f"{uid}.wav"
                ok, duration = audio_duration(audio, corpus, rejects, probe=probe)
                if not ok:
                    continue
                attrs = {}
                gender = gender_word(speakers.get(uid.split("-")[0], ("", ""))[0])
                if gender:
                    attrs["Gender"] = gender
                yield AudioRecord(
                    id=uid,
                    audio=str(audio),
                    corpus=corpus,
                    duration=duration,
                    transcript=sentence_case(text) if sentence_case_text else text.strip(),
                    attributes=attrs,
                    language="en",
                    kind="speech",
                )


def read_libritts(
    root: str | os.PathLike,
    *,
    rejects: list[dict] | None = None,
    probe: bool = True,
    text: str = "normalized",
    corpus: str = "LibriTTS",
    speaker_names: bool = True,
) -> Iterator[AudioRecord]:
    """LibriTTS / LibriTTS-R utterances with the ``normalized`` (default) or ``original`` text."""
    if text not in ("normalized", "original"):
        raise ValueError(f"text must be 'normalized' or 'original', got {text!r}")
    root = check_root(root, corpus)
    chapters = _chapter_dirs(root, "*.wav")
    if not chapters:
        raise layout_error(corpus, "ROOT/<split>/<spk>/<chapter>/<spk>_<chapter>_<para>_<sent>.wav", root)
    spk_file = _find_up(root, ("speakers.tsv", "SPEAKERS.txt", "SPEAKERS.TXT"))
    speakers: dict[str, tuple[str, str]] = {}
    if spk_file:
        speakers = _speakers_tsv(spk_file) if spk_file.suffix == ".tsv" else _speakers_txt(spk_file)
    col = 2 if text == "normalized" else 1
    for chapter in chapters:
        table: dict[str, str] = {}
        for tsv in chapter.glob("*.trans.tsv"):
            for line in tsv.read_text(encoding="utf-8", errors="replace").splitlines():
                parts = line.split("\t")
                if len(parts) > col:
                    table[parts[0]] = parts[col]
        for audio in sorted(chapter.glob("*.wav")):
            uid = audio.stem
            sentence = table.get(uid)
            if sentence is None:
                txt = chapter / f"{uid}.{text}.txt"
                if txt.is_file():
                    sentence = txt.read_text(encoding="utf-8", errors="replace")
            if not sentence or not sentence.strip():
                reject(rejects, corpus, audio, f"no {text} transcript")
                continue
            ok, duration = audio_duration(audio, corpus, rejects, probe=probe)
            if not ok:
                continue
            sex, name = speakers.get(uid.split("_")[0], ("", ""))
            attrs = {}
            gender = gender_word(sex)
            if gender:
                attrs["Gender"] = gender.lower()
            if speaker_names and name:
                attrs["Speaker"] = name
            yield AudioRecord(
                id=uid,
                audio=str(audio),
                corpus=corpus,
                duration=duration,
                transcript=" ".join(sentence.split()),
                attributes=attrs,
                language="en",
                kind="speech",
            )


def read_libritts_r(
    root: str | os.PathLike,
    *,
    rejects: list[dict] | None = None,
    probe: bool = True,
    text: str = "normalized",
    corpus: str = "LibriTTS-R",
    speaker_names: bool = True,
) -> Iterator[AudioRecord]:
    """LibriTTS-R: the LibriTTS layout under the corpus name ``LibriTTS-R``."""
    return read_libritts(
        root, rejects=rejects, probe=probe, text=text, corpus=corpus, speaker_names=speaker_names
    )

"""Helpers shared by the corpus readers: rejects, duration probing, layout errors, label maps."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import soundfile as sf

from desta.errors import DeSTAError

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".mp4")


class LayoutError(DeSTAError, ValueError):
    """A corpus folder does not have the layout its reader expects."""


def layout_error(corpus: str, expected: str, root: Path | str) -> LayoutError:
    return LayoutError(
        f"expected {corpus} layout {expected}; found none under {root}. Point the reader at the "
        f"corpus root folder (or use the 'table' source for custom layouts)."
    )


def check_root(root: str | os.PathLike, corpus: str) -> Path:
    root = Path(root)
    if not root.exists():
        raise LayoutError(f"{corpus}: {root} does not exist")
    return root


def reject(rejects: list[dict] | None, source: str, path: str | os.PathLike, reason: str) -> None:
    """Record one bad item (``{"source", "path", "reason"}``) when the caller collects them."""
    if rejects is not None:
        rejects.append({"source": source, "path": str(path), "reason": reason})


def probe_duration(path: str | os.PathLike) -> float:
    """Length in seconds from the file header (no decoding). Raises ``RuntimeError``/``OSError``."""
    with sf.SoundFile(str(path)) as f:
        if f.samplerate <= 0:
            raise RuntimeError("zero sample rate")
        return f.frames / f.samplerate


def audio_duration(
    path: Path, source: str, rejects: list[dict] | None, *, probe: bool = True
) -> tuple[bool, float | None]:
    """``(ok, duration)``: checks that the file exists and (if ``probe``) reads its length.

    A missing or unreadable file is reported in ``rejects`` and gives ``ok = False``.
    """
    if not probe:
        if not path.is_file():
            reject(rejects, source, path, "audio file not found")
            return False, None
        return True, None
    try:
        duration = probe_duration(path)
    except (RuntimeError, OSError, sf.LibsndfileError) as err:
        reason = "audio file not found" if not path.exists() else f"unreadable audio header ({err})"
        reject(rejects, source, path, reason)
        return False, None
    if duration <= 0:
        reject(rejects, source, path, "empty audio file")
        return False, None
    return True, duration


def find_audio(stem: Path, extensions: Iterable[str] = AUDIO_EXTENSIONS) -> Path | None:
    """The first existing ``stem + ext``, or ``None``."""
    for ext in extensions:
        p = stem.with_name(stem.name + ext)
        if p.is_file():
            return p
    return None


def read_delimited(path: Path, delimiter: str | None = None) -> Iterator[dict[str, str]]:
    """Rows of a CSV/TSV file with a header; the delimiter is sniffed from the file name if not given."""
    if delimiter is None:
        delimiter = "\t" if path.suffix.lower() in (".tsv", ".txt") else ","
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.DictReader(f, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
        for row in reader:
            yield {(k or "").strip(): (v or "").strip() if isinstance(v, str) else "" for k, v in row.items()}


_GENDERS = {
    "f": "Female",
    "female": "Female",
    "w": "Female",
    "woman": "Female",
    "female_feminine": "Female",
    "m": "Male",
    "male": "Male",
    "man": "Male",
    "male_masculine": "Male",
}


def gender_word(value: str | None) -> str | None:
    """``"F"``/``"female"``/``"female_feminine"`` -> ``"Female"`` (same for male); others -> ``None``."""
    if not value:
        return None
    return _GENDERS.get(value.strip().lower())


def sentence_case(text: str) -> str:
    """``"HE HOPED THERE WOULD BE STEW"`` -> ``"He hoped there would be stew"`` (``i`` -> ``I``)."""
    words = text.lower().split()
    words = ["I" if w == "i" else ("I" + w[1:] if w.startswith("i'") else w) for w in words]
    out = " ".join(words)
    return out[:1].upper() + out[1:]

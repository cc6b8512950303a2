"""Tux Paint stamps (Debian ``tuxpaint-stamps-default``, GPL-2+): real spoken descriptions in a dozen
languages and real sound effects, labelled by their file and folder names.

Layout (``apt-get install tuxpaint-stamps-default``)::

    ROOT/<category>/.../<name>.txt            "A dog." then per-locale lines "fr.utf8=Un chien."
    ROOT/<category>/.../<name>_desc.ogg       the English description, spoken (a real person)
    ROOT/<category>/.../<name>_desc_<ll>.ogg  the description in locale <ll> (fr, ru, ro, ca, bg, ...)
    ROOT/<category>/.../<name>.ogg            the stamp's sound effect (animals: the animal's call)

Records::

    id "animals/mammals/dogs/dog_desc_fr", transcript "Un chien.", language "fr",
        attributes {"Language": "French"}
    id "animals/mammals/dogs/dog", kind "sound", caption "a dog", attributes {"Animal": "Dog"}

Only the sounds under ``animals/`` are read (the other stamps' sounds are effects, music and spoken
words whose texts do not say what is heard). The
speakers are not labelled (each language was recorded by few people), so no gender is given. A stable
hash of the stamp (its path without the language suffix) gives :func:`stamp_split`: a stamp's sound and
all its descriptions fall on the same side.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from desta.data.records import AudioRecord
from desta.data.sources._common import audio_duration, check_root, layout_error, reject
from desta.errors import DeSTAError
from desta.rules import LANGUAGES

DEFAULT_ROOT = Path("/usr/share/tuxpaint/stamps")
_DESC = re.compile(r"^(?P<stem>.+)_desc(?:_(?P<lang>[a-z]{2}(?:_[A-Za-z]+)?))?$")
_ARTICLE = re.compile(r"^(?:an?|the|some)\s+", re.I)


def stamp_split(stamp: str, heldout_fraction: float = 0.2) -> str:
    """``"heldout"`` for a stable ``heldout_fraction`` of stamps (by SHA-1 of the stamp path), else ``"train"``."""
    h = int(hashlib.sha1(stamp.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "heldout" if h < heldout_fraction else "train"


def _texts(txt: Path) -> dict[str, str]:
    """``{"en": "A dog.", "fr": "Un chien.", ...}`` from a stamp's ``.txt`` (first line: English)."""
    out: dict[str, str] = {}
    lines = txt.read_text(encoding="utf-8", errors="replace").splitlines()
    if lines and "=" not in lines[0]:
        out["en"] = lines[0].strip()
    for line in lines[1:]:
        key, sep, value = line.partition("=")
        if sep and key.endswith(".utf8") and value.strip():
            out.setdefault(key[: -len(".utf8")].split("_")[0].split("@")[0], value.strip())
    return out


def _name(text: str) -> str:
    """ "A dog." -> "dog"."""
    return _ARTICLE.sub("", text.strip().rstrip(".!").strip()).strip()


def read_tuxpaint(
    root: str | os.PathLike = DEFAULT_ROOT,
    *,
    rejects: list[dict] | None = None,
    probe: bool = True,
    split: str | None = None,
    heldout_fraction: float = 0.2,
    kinds: tuple[str, ...] = ("speech", "sound"),
    corpus: str = "tuxpaint",
) -> Iterator[AudioRecord]:
    """Spoken descriptions (``speech``) and sound effects (``sound``) of every stamp under ``root``."""
    if split is not None and split not in ("train", "heldout"):
        raise DeSTAError(f"tuxpaint: split {split!r} is not 'train' or 'heldout'")
    root = check_root(root, corpus)
    oggs = sorted(root.rglob("*.ogg"))
    if not oggs:
        raise layout_error(corpus, "ROOT/<category>/<name>.txt + <name>_desc_<ll>.ogg", root)
    for path in oggs:
        rel = path.relative_to(root).with_suffix("")
        m = _DESC.match(rel.name)
        stem = m.group("stem") if m else rel.name
        stamp = str(rel.parent / stem)
        if split is not None and stamp_split(stamp, heldout_fraction) != split:
            continue
        txt = path.with_name(stem + ".txt")
        if not txt.is_file():
            continue  # not a stamp's audio (e.g. a number spoken for a math symbol without texts)
        texts = _texts(txt)
        if m:
            if "speech" not in kinds:
                continue
            lang = (m.group("lang") or "en").split("_")[0]
            if lang not in LANGUAGES or lang not in texts:
                reject(rejects, corpus, path, f"no {lang!r} text in {txt.name} or language unknown")
                continue
            ok, duration = audio_duration(path, corpus, rejects, probe=probe)
            if ok:
                yield AudioRecord(str(rel), str(path), corpus, duration=duration, transcript=texts[lang],
                                  attributes={"Language": LANGUAGES[lang]}, language=lang)  # fmt: skip
        elif "sound" in kinds and rel.parts[0] == "animals" and re.fullmatch(r"[a-z_]+\d*", rel.name):
            name = _name(texts.get("en", "")) or re.sub(r"\d+$", "", stem).replace("_", " ")
            ok, duration = audio_duration(path, corpus, rejects, probe=probe)
            if not ok:
                continue
            yield AudioRecord(str(rel), str(path), corpus, duration=duration, caption=f"a {name.lower()}",
                              attributes={"Animal": animal_of(rel)}, kind="sound")  # fmt: skip


def animal_of(rel: Path) -> str:
    """The animal a stamp's sound comes from, from its file name: ``pig_golden2`` -> ``Pig``,
    ``cow_white`` -> ``Cow``, ``heron_greatblue_flying`` -> ``Heron``, ``sea_lion`` -> ``Sea lion``."""
    name = re.sub(r"\d+$", "", rel.name)
    two = name.replace("_", " ")
    if two in _TWO_WORD:
        return two.capitalize()
    return name.split("_")[0].capitalize()


_TWO_WORD = {"sea lion"}

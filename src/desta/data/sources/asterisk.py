"""Asterisk core sound prompts (Debian ``asterisk-core-sounds-{en,es,fr,it,ru}-wav``): real recordings
of one professional voice per language, 8 kHz IVR prompts.

::

    ROOT/<lang>_<REGION>_<g>_<Name>/*.wav           prompts, e.g. it_IT_m_Carlo/all-circuits-busy-now.wav
    ROOT/<lang>_<REGION>_<g>_<Name>/digits/<n>.wav  spoken numbers, e.g. fr_CA_f_June/digits/7.wav ("sept")

``ROOT`` is ``/usr/share/asterisk/sounds`` once the packages are installed. The folder name is the
label: language (ISO 639-1), region, the speaker's gender letter (``f``/``m``) and name. Prompt file
names are English keys, not transcripts, so only the numbers 0-20 (``digits/<n>.wav``) get a
transcript (the number word in the prompt's language, with the numeral in ``Number`` so that "7" also
counts as the content). Other links to the same folders (``ROOT/fr``, ``ROOT/es_MX``) are skipped.

Each record's attributes: ``Gender``, ``Language`` (English name), ``Speaker``, ``Region`` and, for
numbers, ``Number``. ``speakers`` keeps only the named folders; ``exclude`` drops some (the desta-tiny
corpus trains on ``en_US_f_Allison``); ``max_prompts`` / ``max_numbers`` bound the clips per speaker,
prompts chosen by a stable hash of their name (the same on every machine).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from desta.data.records import AudioRecord
from desta.data.sources._common import audio_duration, check_root, gender_word, layout_error
from desta.rules import LANGUAGES

SOURCE = "asterisk"
_VOICE = re.compile(r"^(?P<lang>[a-z]{2})_(?P<region>[A-Z]{2})_(?P<g>[fm])_(?P<name>\w+)$")

#: The numbers 0-20 as the prompts say them (the masculine/default form where a language has several).
NUMBER_WORDS: dict[str, tuple[str, ...]] = {
    "en": tuple(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen"
        " sixteen seventeen eighteen nineteen twenty".split()
    ),
    "es": tuple(
        "cero uno dos tres cuatro cinco seis siete ocho nueve diez once doce trece catorce quince"
        " dieciséis diecisiete dieciocho diecinueve veinte".split()
    ),
    "fr": tuple(
        "zéro un deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze quinze seize"
        " dix-sept dix-huit dix-neuf vingt".split()
    ),
    "it": tuple(
        "zero uno due tre quattro cinque sei sette otto nove dieci undici dodici tredici quattordici"
        " quindici sedici diciassette diciotto diciannove venti".split()
    ),
    "ru": tuple(
        "ноль один два три четыре пять шесть семь восемь девять десять одиннадцать двенадцать"
        " тринадцать четырнадцать пятнадцать шестнадцать семнадцать восемнадцать девятнадцать"
        " двадцать".split()
    ),
}


def _unit(key: str) -> float:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") / 2**64


def voice_folders(root: Path) -> list[tuple[Path, dict[str, str]]]:
    """``(folder, {"lang", "region", "g", "name"})`` for every real (not linked) voice folder, sorted."""
    out = []
    for d in sorted(root.iterdir()):
        m = _VOICE.match(d.name)
        if m and d.is_dir() and not d.is_symlink():
            out.append((d, m.groupdict()))
    return out


def read_asterisk(
    root: str | os.PathLike,
    *,
    rejects: list[dict] | None = None,
    speakers: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    max_prompts: int | None = None,
    max_numbers: int = 21,
    min_seconds: float = 0.8,
) -> Iterator[AudioRecord]:
    """Records of every voice folder under ``root`` (see the module docstring for the layout)."""
    root = check_root(root, SOURCE)
    voices = voice_folders(root)
    if not voices:
        raise layout_error(SOURCE, "<lang>_<REGION>_<f|m>_<Name>/*.wav", root)
    keep = set(speakers) if speakers is not None else None
    drop = set(exclude)
    for folder, v in voices:
        if (keep is not None and folder.name not in keep) or folder.name in drop:
            continue
        attrs = {
            "Gender": gender_word(v["g"]) or "",
            "Language": LANGUAGES.get(v["lang"], v["lang"]),
            "Speaker": v["name"],
            "Region": v["region"],
        }
        prompts = sorted(folder.glob("*.wav"), key=lambda p: _unit(f"{folder.name}/{p.name}"))
        taken = 0
        for path in prompts:
            if max_prompts is not None and taken >= max_prompts:
                break
            ok, dur = audio_duration(path, SOURCE, rejects)
            if not ok or dur is None or dur < min_seconds:
                continue
            taken += 1
            yield AudioRecord(
                id=f"{folder.name}/{path.stem}",
                audio=str(path),
                corpus="asterisk",
                duration=dur,
                attributes=dict(attrs),
                language=v["lang"],
                kind="speech",
            )
        numbers = NUMBER_WORDS.get(v["lang"], ())
        for n, word in enumerate(numbers[:max_numbers]):
            path = folder / "digits" / f"{n}.wav"
            ok, dur = audio_duration(path, SOURCE, rejects)
            if not ok:
                continue
            yield AudioRecord(
                id=f"{folder.name}/digits-{n}",
                audio=str(path),
                corpus="asterisk",
                duration=dur,
                transcript=word,
                attributes={**attrs, "Number": str(n)},
                language=v["lang"],
                kind="speech",
            )

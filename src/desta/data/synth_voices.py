"""The TTS voices of the synth corpus, by engine, split and gender.

espeak-ng: the voice variants of ``espeak-ng-data/voices/!v`` whose file states a gender (``gender
female`` / ``gender male``), minus effect voices that hide it (whisper, croak, robots, demonic); any
variant works with any language voice (``-v it+f3``). flite and festival: every voice Debian
installs (festival voices of the ``festvox-*`` packages; see :data:`DEBIAN_PACKAGES`).

The test split holds out four espeak variants per gender and one voice each of flite and festival, so
that held-out clips are spoken by voices training never heard; the old corpus's held-out voices
(m5, f4, flite rms, festival slt) stay held out.
"""

from __future__ import annotations

import shutil
from pathlib import Path

# espeak-ng language -> ((voice, accent), ...)
ESPEAK_VOICES: dict[str, tuple[tuple[str, str], ...]] = {
    "en": (("en-us", "American"), ("en-gb", "British")),
    "de": (("de", ""),),
    "fr": (("fr-fr", ""),),
    "es": (("es", ""),),
    "it": (("it", ""),),
    "ru": (("ru", ""),),
    "zh": (("cmn", ""),),
}
_F_TRAIN = "Alicia Andrea Annie anika aunty belinda f1 f2 f3 f5 grandma steph steph2".split()
_M_TRAIN = "Andy AnxiousAndy Denis Diogo Henrique Lee Marco antonio m1 m2 m3 m4 m6 m7 michel miguel sandro victor Storm".split()  # fmt: skip
_F_TEST = "f4 linda steph3".split()
_M_TEST = "m5 m8 Hugo travis".split()
#: split -> ((variant, gender), ...)
ESPEAK_VARIANTS: dict[str, tuple[tuple[str, str], ...]] = {
    "train": tuple((v, "Female") for v in _F_TRAIN) + tuple((v, "Male") for v in _M_TRAIN),
    "test": tuple((v, "Female") for v in _F_TEST) + tuple((v, "Male") for v in _M_TEST),
}
#: split -> ((voice, gender, accent), ...); flite speaks English only
FLITE_VOICES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "train": (("kal16", "Male", "American"), ("awb", "Male", "Scottish"), ("slt", "Female", "American")),
    "test": (("rms", "Male", "American"),),
}
#: split -> ((voice, gender, accent, language), ...)
FESTIVAL_VOICES: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "train": (
        ("kal_diphone", "Male", "American", "en"),
        ("ked_diphone", "Male", "American", "en"),
        ("lp_diphone", "Female", "", "it"),
        ("pc_diphone", "Male", "", "it"),
        ("msu_ru_nsh_clunits", "Male", "", "ru"),
    ),
    "test": (("cmu_us_slt_arctic_hts", "Female", "American", "en"),),
}
#: festival voice -> (Debian package, text encoding its front end reads)
FESTIVAL_PACKAGES: dict[str, tuple[str, str]] = {
    "kal_diphone": ("festvox-kallpc16k", "utf-8"),
    "ked_diphone": ("festvox-kdlpc16k", "utf-8"),
    "lp_diphone": ("festvox-italp16k", "latin-1"),
    "pc_diphone": ("festvox-itapc16k", "latin-1"),
    "msu_ru_nsh_clunits": ("festvox-ru", "utf-8"),
    "cmu_us_slt_arctic_hts": ("festvox-us-slt-hts", "utf-8"),
}
FESTIVAL_DIR = Path("/usr/share/festival/voices")


def espeak_variant_dir() -> Path | None:
    """espeak-ng's ``voices/!v`` folder, or ``None`` when espeak-ng-data is not installed."""
    for base in (Path("/usr/lib/x86_64-linux-gnu"), Path("/usr/lib/aarch64-linux-gnu"), Path("/usr/share")):
        d = base / "espeak-ng-data" / "voices" / "!v"
        if d.is_dir():
            return d
    return None


def variant_gender(path: Path) -> str | None:
    """``"Female"``/``"Male"`` from a variant file's ``gender`` line, else ``None``."""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].lower() == "gender":
            return {"female": "Female", "male": "Male"}.get(parts[1].lower())
    return None


def installed_festival_voices() -> set[str]:
    """Festival voice names installed under :data:`FESTIVAL_DIR` (empty without festival)."""
    if shutil.which("text2wave") is None or not FESTIVAL_DIR.is_dir():
        return set()
    return {d.name for d in FESTIVAL_DIR.glob("*/*") if d.is_dir()}


def festival_voices(split: str, installed: set[str] | None = None) -> tuple[tuple[str, str, str, str], ...]:
    """The split's festival voices that are installed (all of them when ``installed`` is ``None``)."""
    return tuple(v for v in FESTIVAL_VOICES[split] if installed is None or v[0] in installed)

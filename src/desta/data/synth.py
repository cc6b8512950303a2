"""An offline labeled audio corpus built from Debian TTS engines and Debian-packaged recordings.

Sources (each can be switched off; a missing one is reported with the Debian package to install and the
builder goes on with the others):

=============== ======================================================== =============================
engine          what                                                     labels
=============== ======================================================== =============================
``espeak``      espeak-ng, en-us/en-gb/de/fr/es/it/ru/zh, 16 female and   transcript, language, Gender,
                23 male voice variants (``+f1``, ``+Annie``, ``+m3``...),  Accent, Speaking speed, Pitch,
                speed ``-s``, pitch ``-p``, amplitude ``-a``               Volume, Source
``flite``       flite voices kal16/rms/awb (male), slt (female)           transcript, Gender, Accent,
                with ``duration_stretch``                                 Speaking speed, Volume, Source
``festival``    text2wave, every installed festvox voice (English,        transcript, Gender, Speaking
                Italian, Russian; :mod:`desta.data.synth_voices`)         speed, Volume, Source
``pocketsphinx`` real read speech, /usr/share/pocketsphinx/test/data      transcript, Source
``allison``     real IVR prompts by one US female voice (asterisk),       transcript (from the file
                digits, letters, NATO alphabet, a few phrases; 8 kHz      name), Gender, Source
``freedesktop`` sound-theme-freedesktop effects (bell, camera shutter,    caption (kind "sound"), or
                ...) and spoken channel names                             transcript for the voices
``noisy``       a synthesized utterance plus white/pink/brown noise at    the utterance's labels plus
                a known SNR (0-20 dB)                                     Noise Level, SNR, Noise type
=============== ======================================================== =============================

Speakers are drawn gender first (one half each), then language and voice, so every language and
engine gets both genders where a voice exists. With ``augment_fraction`` > 0, that share of the speech
clips goes through one label-preserving augmentation (:mod:`desta.data.augment`: noise, reverberation,
telephone band and codec, gain, tempo), recorded in the clip's attributes.

Every clip is resampled to 16 kHz mono and written as 16-bit WAV under ``OUT/audio/<corpus>/``;
records go to ``OUT/manifest.jsonl`` (all), ``OUT/train.jsonl`` and ``OUT/test.jsonl``, with audio
paths relative to ``OUT``. The test split is held out twice over: its clips use *held-out sentences*
(a fixed hash split of each sentence file) *and held-out voices* (seven espeak variants among them
m5/f4, flite rms, festival slt; :mod:`desta.data.synth_voices`), and real recordings are split by file. Everything is deterministic given ``seed``.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from desta.data import augment
from desta.data.augment import NOISE_SNR, NOISE_TYPES, colored_noise, mix_at_snr
from desta.data.records import AudioRecord, write_records
from desta.data.synth_real import (  # noqa: F401  (re-exported: they used to live here)
    ALLISON_DIR,
    ALLISON_PHRASES,
    ALLISON_WORDS,
    FREEDESKTOP_CAPTIONS,
    FREEDESKTOP_DIR,
    NATO,
    POCKETSPHINX_DIR,
    real_items,
)
from desta.data.synth_tts import (  # noqa: F401
    ESPEAK_PITCH,
    ESPEAK_SPEED,
    ESPEAK_VOLUME,
    GAIN,
    STRETCH,
    _peak_gain,
    _read,
    _run,
    _synthesize,
    to_16k,
)
from desta.data.synth_voices import (
    ESPEAK_VARIANTS,
    ESPEAK_VOICES,
    FESTIVAL_VOICES,  # noqa: F401  (re-exported: the voice tables used to live here)
    FLITE_VOICES,
    festival_voices,
    installed_festival_voices,
)
from desta.errors import DeSTAError
from desta.rules import LANGUAGES as LANGUAGE_NAMES

SAMPLE_RATE = 16_000
ENGINES = ("espeak", "flite", "festival", "pocketsphinx", "allison", "freedesktop", "noisy")
#: Relative share of clips per engine when all are available (real sources stop when used up).
ENGINE_WEIGHTS = {
    "espeak": 5,
    "flite": 2,
    "festival": 1,
    "pocketsphinx": 1,
    "allison": 2,
    "freedesktop": 1,
    "noisy": 2,
}
LANGUAGES = {c: LANGUAGE_NAMES[c] for c in ("en", "de", "fr", "es", "it", "ru", "zh")}  # with sentence files
DEBIAN_PACKAGES = {
    "espeak": "espeak-ng",
    "flite": "flite",
    "festival": "festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts festvox-italp16k festvox-itapc16k festvox-ru",
    "pocketsphinx": "pocketsphinx-testdata",
    "allison": "asterisk-core-sounds-en-wav",
    "freedesktop": "sound-theme-freedesktop",
}


@dataclass(frozen=True)
class SynthConfig:
    """What to build."""

    num_clips: int = 100
    seed: int = 0
    engines: tuple[str, ...] = ENGINES
    languages: tuple[str, ...] = tuple(LANGUAGES)  # for espeak; flite/festival are English only
    test_fraction: float = 0.2  # share of clips in the held-out test split
    augment_fraction: float = 0.0  # share of speech clips given one label-preserving augmentation
    # espeak training sentences spoken by this many variants of one gender, all else equal (ids
    # "<id>", "<id>-v1", ...): clips whose labels, and so seed descriptions, differ only in the voice
    voices_per_text: int = 1
    workers: int = 2  # parallel engine processes
    progress: bool = True

    def __post_init__(self) -> None:
        unknown = set(self.engines) - set(ENGINES)
        if unknown:
            raise DeSTAError(f"unknown synth engines {sorted(unknown)}; choose from {', '.join(ENGINES)}")
        bad = set(self.languages) - set(LANGUAGES)
        if bad:
            raise DeSTAError(f"unknown languages {sorted(bad)}; choose from {', '.join(LANGUAGES)}")
        if not 0 <= self.test_fraction < 1 or self.num_clips < 0 or not 0 <= self.augment_fraction <= 1:
            raise DeSTAError("need 0 <= test_fraction < 1, 0 <= augment_fraction <= 1 and num_clips >= 0")
        if not 1 <= self.voices_per_text <= 8:
            raise DeSTAError(f"voices_per_text must be 1..8, got {self.voices_per_text}")


@dataclass
class SynthSummary:
    out_dir: str
    clips: int = 0
    per_corpus: Counter = field(default_factory=Counter)
    per_split: Counter = field(default_factory=Counter)
    unavailable: dict[str, str] = field(default_factory=dict)  # engine -> what to install
    failed: list[str] = field(default_factory=list)  # "id: reason"


# ----------------------------------------------------------------------------------- sentences


def _unit(key: str) -> float:
    """A stable number in [0, 1) for a string (the same on every machine and Python version)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") / 2**64


def load_sentences(language: str) -> list[str]:
    text = (
        resources.files("desta.data")
        .joinpath("synth_sentences", f"{language}.txt")
        .read_text(encoding="utf-8")
    )
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def split_of(key: str, test_fraction: float) -> str:
    return "test" if _unit(key) < test_fraction else "train"


def sentence_splits(language: str, test_fraction: float) -> dict[str, list[str]]:
    """Sentences by split: a fixed hash split, the same for every seed."""
    out: dict[str, list[str]] = {"train": [], "test": []}
    for s in load_sentences(language):
        out[split_of(f"{language}:{s}", test_fraction if test_fraction > 0 else 0.0)].append(s)
    if test_fraction > 0 and not out["test"]:
        out["test"].append(out["train"].pop())
    return out


# -------------------------------------------------------------------------------- availability


def engine_problem(engine: str) -> str | None:
    """Why ``engine`` cannot run here (with the Debian package to install), or ``None``."""
    pkg = DEBIAN_PACKAGES.get(engine)
    checks: dict[str, Callable[[], bool]] = {
        "espeak": lambda: shutil.which("espeak-ng") is not None,
        "flite": lambda: shutil.which("flite") is not None,
        "festival": lambda: shutil.which("text2wave") is not None,
        "pocketsphinx": lambda: (POCKETSPHINX_DIR / "librivox" / "transcription").exists(),
        "allison": lambda: (ALLISON_DIR / "digits").is_dir(),
        "freedesktop": lambda: FREEDESKTOP_DIR.is_dir(),
        "noisy": lambda: shutil.which("espeak-ng") is not None or shutil.which("flite") is not None,
    }
    if checks[engine]():
        return None
    if engine == "noisy":
        return "needs espeak-ng or flite as its speech source: apt-get install espeak-ng flite"
    return f"not installed: apt-get install {pkg}"


# ------------------------------------------------------------------------------------- planning


def plan_clips(config: SynthConfig, available: list[str]) -> list[dict[str, Any]]:
    """Fully specified, deterministic clip jobs: engine, split, text, voice and every control."""
    rng = random.Random(config.seed)
    sentences = {lang: sentence_splits(lang, config.test_fraction) for lang in LANGUAGES}
    real: dict[str, dict[str, list[dict]]] = {}
    for engine in ("pocketsphinx", "allison", "freedesktop"):
        if engine in available:
            items = real_items(engine)
            by_split: dict[str, list[dict]] = {"train": [], "test": []}
            for it in items:
                by_split[split_of(f"{engine}:{it['name']}", config.test_fraction)].append(it)
            for lst in by_split.values():
                rng.shuffle(lst)
            real[engine] = by_split
    langs = [lang for lang in config.languages]
    jobs: list[dict[str, Any]] = []
    festival = installed_festival_voices() if "festival" in available else set()

    def of_gender(voices: tuple, gender: str) -> tuple:
        """The voices of ``gender`` (index 1 of each entry), or all of them when it has none."""
        return tuple(v for v in voices if v[1] == gender) or voices

    def tts_job(engine: str, split: str) -> dict[str, Any]:
        speed = rng.choice(list(ESPEAK_SPEED))
        volume = rng.choice(list(GAIN))
        gender = rng.choice(("Female", "Male"))  # gender first: both halves in every language and engine
        if engine == "espeak":
            lang = rng.choice(langs)
            voice, accent = rng.choice(ESPEAK_VOICES[lang])
            variant, gender = rng.choice(of_gender(ESPEAK_VARIANTS[split], gender))
            pitch = rng.choice(list(ESPEAK_PITCH))
            return {"engine": engine, "language": lang, "voice": f"{voice}+{variant}", "gender": gender, "accent": accent,
                    "speed": speed, "pitch": pitch, "volume": volume, "text": rng.choice(sentences[lang][split])}  # fmt: skip
        if engine == "flite":
            voice, gender, accent = rng.choice(of_gender(FLITE_VOICES[split], gender))
            lang = "en"
        else:
            voices = festival_voices(split, festival) or festival_voices("train", festival)
            voices = tuple(v for v in voices if v[3] in langs) or voices
            voice, gender, accent, lang = rng.choice(of_gender(voices, gender))
        return {"engine": engine, "language": lang, "voice": voice, "gender": gender, "accent": accent, "speed": speed,
                "volume": volume, "text": rng.choice(sentences[lang][split])}  # fmt: skip

    tts_for_noisy = [
        e for e in ("espeak", "flite") if e in available or (e == "espeak" and shutil.which("espeak-ng"))
    ]
    counter = 0
    while len(jobs) < config.num_clips:
        split = "test" if rng.random() < config.test_fraction else "train"
        choices = [e for e in available if e not in real or real[e][split]]
        if not choices:
            if not any(e not in real for e in available) and not any(
                real[e]["train"] or real[e]["test"] for e in real
            ):
                break  # only real sources, all used up
            continue
        engine = rng.choices(choices, weights=[ENGINE_WEIGHTS[e] for e in choices])[0]
        counter += 1
        if engine in real:
            job = {"engine": engine, "item": real[engine][split].pop()}
        elif engine == "noisy":
            base = tts_job(rng.choice(tts_for_noisy), split)
            job = {**base, "engine": "noisy", "base_engine": base["engine"], "snr": rng.choice(NOISE_SNR),
                   "noise": rng.choice(NOISE_TYPES), "noise_seed": rng.randrange(2**31)}  # fmt: skip
        else:
            job = tts_job(engine, split)
        speech = engine != "noisy" and not job.get("item", {}).get("sound")
        if config.augment_fraction and speech and rng.random() < config.augment_fraction:
            aug = augment.draw(rng)
            job["augment"] = {k: getattr(aug, k) for k in aug.__dataclass_fields__}
        job["split"] = split
        job["id"] = f"{engine}-{counter:06d}"
        jobs.append(job)
        if engine == "espeak" and split == "train" and config.voices_per_text > 1:
            jobs += _siblings(job, config.voices_per_text - 1, rng)
    return jobs[: config.num_clips]


def sibling_group(record_id: str) -> str:
    """The id of the clip a voice sibling (``"<id>-v<k>"``) repeats; other ids are their own group."""
    head, sep, tail = record_id.rpartition("-v")
    return head if sep and tail.isdigit() else record_id


def _siblings(job: dict[str, Any], n: int, rng: random.Random) -> list[dict[str, Any]]:
    """``n`` copies of an espeak job spoken by other variants of its gender (controls all kept)."""
    base, variant = job["voice"].split("+")
    others = [v for v, g in ESPEAK_VARIANTS["train"] if g == job["gender"] and v != variant]
    return [
        {**job, "voice": f"{base}+{v}", "id": f"{job['id']}-v{k}"}
        for k, v in enumerate(rng.sample(others, min(n, len(others))), 1)
    ]


# ------------------------------------------------------------------------------------ rendering


def _record_for(job: dict[str, Any], audio_rel: str, duration: float) -> AudioRecord:
    engine = job["engine"]
    if engine in ("pocketsphinx", "allison", "freedesktop"):
        it = job["item"]
        corpus = {
            "pocketsphinx": "pocketsphinx-testdata",
            "allison": "asterisk-allison",
            "freedesktop": "freedesktop-sounds",
        }[engine]
        attrs = {"Gender": "Female"} if engine == "allison" else {}
        if job.get("augment"):
            attrs.update(augment.attributes(augment.Augmentation(**job["augment"])))
        if it.get("sound"):
            return AudioRecord(id=job["id"], audio=audio_rel, corpus=corpus, duration=duration, caption=it["caption"], kind="sound",
                               attributes={"Source": "Sound effect", "Sound": it["name"]})  # fmt: skip
        attrs["Source"] = "Real human recording" if engine != "freedesktop" else "Recorded voice prompt"
        return AudioRecord(id=job["id"], audio=audio_rel, corpus=corpus, duration=duration, transcript=it["transcript"],
                           attributes=attrs, language="en", kind="speech")  # fmt: skip
    base = job.get("base_engine", engine)
    attrs: dict[str, str] = {"Gender": job["gender"]}
    if job.get("accent"):
        attrs["Accent"] = job["accent"]
    attrs["Language"] = LANGUAGES[job["language"]]
    attrs["Speaking speed"] = job["speed"]
    if "pitch" in job:
        attrs["Pitch"] = job["pitch"]
    attrs["Volume"] = job["volume"]
    if job.get("augment"):
        attrs.update(augment.attributes(augment.Augmentation(**job["augment"])))
    attrs["Source"] = (
        f"Synthetic speech ({ {'espeak': 'espeak-ng', 'flite': 'flite', 'festival': 'festival'}[base] })"
    )
    corpus = f"synth-{base}"
    if engine == "noisy":
        level = "Noisy" if job["snr"] <= 5 else "Moderate" if job["snr"] <= 15 else "Low"
        attrs.update(
            {
                "Noise Level": level,
                "Signal-to-Noise Ratio": f"{job['snr']}db",
                "Noise type": f"{job['noise']} noise",
            }
        )
        corpus = "synth-noisy"
    return AudioRecord(id=job["id"], audio=audio_rel, corpus=corpus, duration=duration, transcript=job["text"], attributes=attrs,
                       language=job["language"], kind="speech")  # fmt: skip


def render_clip(job: dict[str, Any], out_dir: Path, tmp: Path) -> AudioRecord:
    """Make one clip's audio (16 kHz mono 16-bit WAV) and its record."""
    import soundfile as sf

    if job["engine"] in ("pocketsphinx", "allison", "freedesktop"):
        x, sr = _read(job["item"]["path"], raw=job["item"].get("raw", False))
        audio = to_16k(x, sr)
    else:
        audio = _synthesize(job, tmp)
        if job["engine"] == "noisy":
            noise = colored_noise(job["noise"], audio.size, np.random.default_rng(job["noise_seed"]))
            audio = mix_at_snr(audio, noise, job["snr"])
    if job.get("augment"):
        audio = augment.apply(audio, augment.Augmentation(**job["augment"]))
    if audio.size == 0:
        raise DeSTAError("engine produced no audio")
    record = _record_for(job, "", round(audio.size / SAMPLE_RATE, 3))
    rel = f"audio/{record.corpus}/{job['id']}.wav"
    path = out_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(audio, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")
    return record.with_(audio=rel)


def build_corpus(
    out_dir: str | os.PathLike,
    config: SynthConfig = SynthConfig(),
    *,
    log: Callable[[str], None] | None = None,
) -> SynthSummary:
    """Build the corpus in ``out_dir``; returns counts, unavailable engines and failed clips."""
    from tqdm.auto import tqdm

    log = log or (lambda msg: print(msg, file=sys.stderr))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = SynthSummary(out_dir=str(out))
    available = []
    for engine in config.engines:
        problem = engine_problem(engine)
        if problem is None:
            available.append(engine)
        else:
            summary.unavailable[engine] = problem
            log(f"desta data synth: skipping {engine}: {problem}")
    if not available:
        raise DeSTAError(f"no synth engine is available: {summary.unavailable}")
    jobs = plan_clips(config, available)
    records: list[AudioRecord | None] = [None] * len(jobs)
    with (
        tempfile.TemporaryDirectory(prefix="desta-synth-") as tmpdir,
        ThreadPoolExecutor(max(1, config.workers)) as pool,
    ):
        futures = [pool.submit(render_clip, job, out, Path(tmpdir)) for job in jobs]
        for i, fut in enumerate(tqdm(futures, desc="synth", unit="clip", disable=not config.progress)):
            try:
                records[i] = fut.result()
            except Exception as err:  # one broken clip never stops the build
                summary.failed.append(f"{jobs[i]['id']}: {type(err).__name__}: {err}")
    kept = [(job, r) for job, r in zip(jobs, records) if r is not None]
    write_records(out / "manifest.jsonl", (r for _, r in kept))
    for split in ("train", "test"):
        write_records(out / f"{split}.jsonl", (r for job, r in kept if job["split"] == split))
    summary.clips = len(kept)
    summary.per_corpus = Counter(r.corpus for _, r in kept)
    summary.per_split = Counter(job["split"] for job, _ in kept)
    for msg in summary.failed:
        log(f"desta data synth: failed clip {msg}")
    return summary

"""Lhotse manifests, read (and written) with the ``lhotse`` package itself.

``root`` is either a folder holding ``*recordings*.jsonl[.gz]`` and ``*supervisions*.jsonl[.gz]``
(and/or ``*cuts*.jsonl[.gz]``), or one such file. Each row is parsed by lhotse
(``Recording.from_dict``, ``SupervisionSegment.from_dict``, lhotse's cut deserialiser), so what lhotse
accepts is accepted here and a row lhotse refuses is a reject naming the row, not a stopped run.
Records:

- supervisions + recordings: one record per supervision (its ``start``/``duration`` into the file);
- cuts (``MonoCut``/``MultiCut`` with a recording): one record per cut, text = its supervisions' text;
- recordings alone: one record per recording.

Mapping: ``text`` -> transcript; ``gender`` -> ``Gender`` (``Female``/``Male``); ``speaker`` ->
``Speaker`` (unless ``speaker_attribute=False``); ``language`` -> ISO code when it is a known
name (``English`` -> ``en``) or already a code; ``custom`` fields -> attributes with capitalised
names (``emotion`` -> ``Emotion``), except ``caption``, which becomes the record's caption. Relative
``source`` paths are tried as given, then relative to the manifest's folder. Only ``file`` sources
without transforms can be read; ``url``/``command``/``memory`` sources, perturbed recordings and
``MixedCut`` rows are rejects. :func:`write_lhotse_cuts` writes records as a lhotse CutSet.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from desta.data.records import AudioRecord, read_jsonl
from desta.data.sources._common import check_root, gender_word, layout_error, reject
from desta.errors import DeSTAError

LANGUAGES = {
    "english": "en",
    "mandarin": "zh",
    "chinese": "zh",
    "french": "fr",
    "german": "de",
    "spanish": "es",
    "italian": "it",
    "japanese": "ja",
    "korean": "ko",
    "russian": "ru",
    "portuguese": "pt",
    "dutch": "nl",
    "arabic": "ar",
}


def _lhotse() -> Any:
    """The ``lhotse`` module (imported late: it pulls in torch), or a DeSTAError saying how to get it."""
    try:
        import lhotse
    except ImportError as err:
        raise DeSTAError(
            f"the lhotse source needs the lhotse package ({err}); install it with "
            "`pip install 'desta[data]'` (or `pip install 'lhotse>=1.24,<1.34'`)"
        ) from None
    return lhotse


def _language(value: Any) -> str | None:
    if not value:
        return None
    text = str(value).strip()
    if text.lower() in LANGUAGES:
        return LANGUAGES[text.lower()]
    if 2 <= len(text) <= 3 and text.isalpha():
        return text.lower()
    return None


def _manifests(root: Path, kind: str) -> list[Path]:
    if root.is_file():
        return [root] if kind in root.name else []
    return sorted(p for p in root.iterdir() if kind in p.name and p.name.endswith((".jsonl", ".jsonl.gz")))


def _rows(path: Path, parse: Any, what: str, name: str, rejects: list[dict] | None) -> Iterator[Any]:
    """lhotse objects of each row of ``path``; a row lhotse cannot parse is a reject naming it."""
    for i, row in enumerate(read_jsonl(path), 1):
        row_id = row.get("id", f"line {i}")
        try:
            yield parse(dict(row))
        except (KeyError, TypeError, ValueError, AssertionError, AttributeError) as err:
            reject(
                rejects,
                name,
                path,
                f"{what} {row_id}: not a valid Lhotse {what} ({type(err).__name__}: {err})",
            )


def _audio_path(recording: Any, manifest: Path, channel: Any = None) -> tuple[str | None, str]:
    """The local file of a lhotse ``Recording`` (the source holding ``channel`` when there are several)."""
    sources = list(recording.sources)
    if not sources:
        return None, "recording has no sources"
    if recording.transforms:
        return (
            None,
            "recording has transforms (speed/volume perturbation, resampling) that are not applied here",
        )
    if len(sources) > 1:
        wanted = set(channel if isinstance(channel, (list, tuple)) else [channel]) - {None}
        sources = [s for s in sources if wanted and wanted <= set(s.channels)] if wanted else []
        if not sources:
            return None, "recording has one source per channel; no single file holds the channels asked for"
    src = sources[0]
    if src.type != "file":
        return None, f"source type {src.type!r} is not supported (only 'file')"
    path = Path(str(src.source))
    if not path.is_absolute() and not path.exists() and (manifest.parent / path).exists():
        path = manifest.parent / path
    if not path.is_file():
        return None, f"audio file not found: {path}"
    return str(path), ""


def _attributes(sup: Any, speaker_attribute: bool) -> dict[str, str]:
    attrs: dict[str, str] = {}
    if sup is None:
        return attrs
    gender = gender_word(sup.gender)
    if gender:
        attrs["Gender"] = gender
    if speaker_attribute and sup.speaker:
        attrs["Speaker"] = str(sup.speaker)
    for key, value in (sup.custom or {}).items():
        if key == "caption" or value in (None, "") or isinstance(value, (dict, list)):
            continue
        name = key.replace("_", " ")
        attrs[name[:1].upper() + name[1:]] = str(value)
    return attrs


def _caption(sup: Any) -> str:
    value = (sup.custom or {}).get("caption") if sup is not None else None
    return str(value) if isinstance(value, str) else ""


def read_lhotse(
    root: str | os.PathLike,
    *,
    rejects: list[dict] | None = None,
    speaker_attribute: bool = True,
    corpus: str | None = None,
    kind: str = "speech",
) -> Iterator[AudioRecord]:
    root = check_root(root, "lhotse")
    rec_files, sup_files, cut_files = (_manifests(root, k) for k in ("recordings", "supervisions", "cuts"))
    if not rec_files and not cut_files:
        raise layout_error(
            "Lhotse",
            "ROOT/*recordings*.jsonl[.gz] (+ *supervisions*.jsonl[.gz]) or ROOT/*cuts*.jsonl[.gz]",
            root,
        )
    lhotse = _lhotse()
    name = corpus or (root.name if root.is_dir() else root.name.split("_")[0].split(".")[0])
    recordings: dict[str, tuple[Any, Path]] = {}
    for f in rec_files:
        for rec in _rows(f, lhotse.Recording.from_dict, "recording", name, rejects):
            recordings[rec.id] = (rec, f)
    if sup_files:
        for f in sup_files:
            for sup in _rows(f, lhotse.SupervisionSegment.from_dict, "supervision", name, rejects):
                if sup.recording_id not in recordings:
                    reject(rejects, name, f, f"supervision {sup.id}: unknown recording {sup.recording_id!r}")
                    continue
                rec, manifest = recordings[sup.recording_id]
                audio, why = _audio_path(rec, manifest, sup.channel)
                if audio is None:
                    reject(rejects, name, manifest, f"recording {rec.id}: {why}")
                    continue
                yield AudioRecord(
                    id=str(sup.id),
                    audio=audio,
                    corpus=name,
                    start=float(sup.start),
                    duration=float(sup.duration),
                    transcript=" ".join(str(sup.text or "").split()),
                    caption=_caption(sup),
                    attributes=_attributes(sup, speaker_attribute),
                    language=_language(sup.language),
                    kind=kind,
                )
    elif rec_files:
        for rid, (rec, manifest) in recordings.items():
            audio, why = _audio_path(rec, manifest, 0 if len(rec.sources) > 1 else None)
            if audio is None:
                reject(rejects, name, manifest, f"recording {rid}: {why}")
                continue
            yield AudioRecord(id=rid, audio=audio, corpus=name, duration=float(rec.duration), kind=kind)
    for f in cut_files:
        yield from _cuts(f, name, kind, speaker_attribute, rejects)


def _cuts(
    path: Path, name: str, kind: str, speaker_attribute: bool, rejects: list[dict] | None
) -> Iterator[AudioRecord]:
    from lhotse.serialization import deserialize_item

    for cut in _rows(path, deserialize_item, "cut", name, rejects):
        rec = getattr(cut, "recording", None)
        if rec is None:
            what = type(cut).__name__
            reject(
                rejects, name, path, f"cut {cut.id}: a {what} has no single recording (only MonoCut/MultiCut)"
            )
            continue
        audio, why = _audio_path(rec, path, cut.channel)
        if audio is None:
            reject(rejects, name, path, f"cut {cut.id}: {why}")
            continue
        sups = sorted(cut.supervisions, key=lambda s: s.start)
        first = sups[0] if sups else None
        yield AudioRecord(
            id=str(cut.id),
            audio=audio,
            corpus=name,
            start=float(cut.start),
            duration=float(cut.duration),
            transcript=" ".join(" ".join(str(s.text or "") for s in sups).split()),
            caption=_caption(first),
            attributes=_attributes(first, speaker_attribute),
            language=_language(first.language if first else None),
            kind=kind,
        )


def _custom_key(attribute: str) -> str:
    """``"Speaking style"`` -> ``"speaking_style"`` (the reader's mapping, reversed)."""
    return (attribute[:1].lower() + attribute[1:]).replace(" ", "_")


def write_lhotse_cuts(records: Iterable[AudioRecord], path: str | os.PathLike) -> int:
    """Write records as a lhotse CutSet (``.jsonl`` or ``.jsonl.gz``) that :func:`read_lhotse` reads back.

    Each record becomes a cut over its file (a ``MonoCut``, or a ``MultiCut`` over all channels of a
    multi-channel file) with one supervision holding the transcript, language, speaker, gender,
    caption and the other attributes (as ``custom`` fields). Recordings are described from the audio
    headers by lhotse. Returns the number of cuts written.
    """
    lhotse = _lhotse()
    from lhotse import CutSet, MonoCut, MultiCut, SupervisionSegment

    by_audio: dict[str, Any] = {}
    used_ids: set[str] = set()
    cuts = []
    for record in records:
        rec = by_audio.get(record.audio)
        if rec is None:
            stem = Path(record.audio).stem or "recording"
            rid, n = stem, 1
            while rid in used_ids:
                n += 1
                rid = f"{stem}-{n}"
            try:
                rec = lhotse.Recording.from_file(record.audio, recording_id=rid)
            except Exception as err:  # noqa: BLE001 - lhotse's audio backends raise many types
                raise DeSTAError(f"{record.audio}: lhotse cannot describe this audio file ({err})") from None
            used_ids.add(rid)
            by_audio[record.audio] = rec
        start = float(record.start)
        duration = float(record.duration) if record.duration is not None else rec.duration - start
        if duration <= 0 or start < 0:
            raise DeSTAError(
                f"record {record.id}: start {start} s and duration {duration} s do not fit {record.audio}"
            )
        attrs = dict(record.attributes)
        gender = gender_word(attrs.pop("Gender", None))
        speaker = attrs.pop("Speaker", None)
        custom = {_custom_key(k): v for k, v in attrs.items()}
        if record.caption:
            custom["caption"] = record.caption
        channels = list(range(rec.num_channels))
        sup = SupervisionSegment(
            id=record.id,
            recording_id=rec.id,
            start=0.0,
            duration=duration,
            channel=channels[0] if len(channels) == 1 else channels,
            text=record.transcript or None,
            language=record.language,
            speaker=speaker,
            gender={"Female": "F", "Male": "M"}.get(gender or ""),
            custom=custom or None,
        )
        kw = {"id": record.id, "start": start, "duration": duration, "recording": rec, "supervisions": [sup]}
        cuts.append(MonoCut(channel=0, **kw) if len(channels) == 1 else MultiCut(channel=channels, **kw))
    CutSet.from_cuts(cuts).to_file(str(path))
    return len(cuts)

"""Sound-event corpora: ESC-50, AudioCaps, Clotho, VocalSound.

ESC-50::

    ROOT/meta/esc50.csv     filename,fold,target,category,esc10,src_file,take
    ROOT/audio/<fold>-<src>-<take>-<target>.wav
    seed: [00:00-00:05] (Audio category: door_wood_knock, Duration: 5.0)

AudioCaps (the audio is fetched by users from YouTube; file naming varies, so several are tried)::

    ROOT/{train,val,test}.csv   audiocap_id,youtube_id,start_time,caption
    ROOT/<audio_dir>/{<audiocap_id>,<youtube_id>,Y<youtube_id>,<youtube_id>_<start_time>}.{wav,flac,...}
      (<audio_dir> defaults to ROOT/audio/<split>, ROOT/audio, ROOT/<split>, ROOT)
    seed: [00:00-00:10] (Plastic crinkling... people talk)

Clotho (v2.1)::

    ROOT/clotho_captions_{development,validation,evaluation}.csv  file_name,caption_1,...,caption_5
    ROOT/{development,validation,evaluation}/<file_name>   (or clotho_audio_<split>/)
    seed: [00:00-00:26] (Someone opening and closing a door...)

VocalSound::

    ROOT/audio_16k/<speaker>_<n>_<label>.wav   e.g. f0003_0_cough.wav; labels laughter, sigh, cough,
    throatclearing, sneeze, sniff          seed: [00:00-00:11] (Sneeze)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from desta.data.describe import format_duration
from desta.data.records import AudioRecord
from desta.data.sources._common import (
    AUDIO_EXTENSIONS,
    audio_duration,
    check_root,
    find_audio,
    layout_error,
    read_delimited,
    reject,
)


def read_esc50(
    root: str | os.PathLike,
    *,
    rejects: list[dict] | None = None,
    probe: bool = True,
    corpus: str = "ESC50",
) -> Iterator[AudioRecord]:
    root = check_root(root, corpus)
    meta = root / "meta" / "esc50.csv"
    if not meta.is_file():
        raise layout_error(corpus, "ROOT/meta/esc50.csv + ROOT/audio/<file>.wav", root)
    for row in read_delimited(meta, ","):
        name, category = row.get("filename", ""), row.get("category", "")
        if not name or not category:
            reject(rejects, corpus, meta, f"row without filename/category: {row}")
            continue
        audio = root / "audio" / name
        ok, duration = audio_duration(audio, corpus, rejects, probe=probe)
        if not ok:
            continue
        attrs = {"Audio category": category}
        if duration is not None:
            attrs["Duration"] = format_duration(duration, "float")
        yield AudioRecord(
            id=Path(name).stem,
            audio=str(audio),
            corpus=corpus,
            duration=duration,
            attributes=attrs,
            kind="sound",
        )


def read_audiocaps(
    root: str | os.PathLike,
    *,
    rejects: list[dict] | None = None,
    probe: bool = True,
    splits: tuple[str, ...] = ("train", "val", "test"),
    audio_dir: str | os.PathLike | None = None,
    corpus: str = "AudioCaps",
) -> Iterator[AudioRecord]:
    """One record per caption row (test and val clips have five captions each)."""
    root = check_root(root, corpus)
    tables = [(s, root / f"{s}.csv") for s in splits if (root / f"{s}.csv").is_file()]
    if not tables:
        raise layout_error(
            corpus, "ROOT/{train,val,test}.csv (audiocap_id,youtube_id,start_time,caption)", root
        )
    for split, table in tables:
        if audio_dir is not None:
            dirs = [Path(audio_dir)]
        else:
            dirs = [d for d in (root / "audio" / split, root / "audio", root / split, root) if d.is_dir()]
        for row in read_delimited(table, ","):
            cap_id, yt, caption = (
                row.get("audiocap_id", ""),
                row.get("youtube_id", ""),
                row.get("caption", ""),
            )
            if not yt or not caption:
                reject(rejects, corpus, table, f"row without youtube_id/caption: {row}")
                continue
            start = row.get("start_time", "")
            names = [n for n in (cap_id, yt, f"Y{yt}", f"{yt}_{start}", f"Y{yt}_{start}") if n]
            audio = None
            for d in dirs:
                for n in names:
                    audio = find_audio(d / n, AUDIO_EXTENSIONS)
                    if audio:
                        break
                if audio:
                    break
            if audio is None:
                reject(rejects, corpus, (dirs[0] if dirs else root) / yt, "audio file not found")
                continue
            ok, duration = audio_duration(audio, corpus, rejects, probe=probe)
            if not ok:
                continue
            yield AudioRecord(
                id=cap_id or yt,
                audio=str(audio),
                corpus=corpus,
                duration=duration,
                caption=caption,
                kind="sound",
            )


_CLOTHO_SPLITS = ("development", "validation", "evaluation")


def read_clotho(
    root: str | os.PathLike,
    *,
    rejects: list[dict] | None = None,
    probe: bool = True,
    all_captions: bool = False,
    corpus: str = "Clotho",
) -> Iterator[AudioRecord]:
    """One record per file with its first caption, or one per caption (ids ``<file>#<k>``)."""
    root = check_root(root, corpus)
    tables = [(s, root / f"clotho_captions_{s}.csv") for s in _CLOTHO_SPLITS]
    tables = [(s, t) for s, t in tables if t.is_file()]
    if not tables:
        raise layout_error(corpus, "ROOT/clotho_captions_<split>.csv + ROOT/<split>/<file_name>", root)
    for split, table in tables:
        folder = next((d for d in (root / split, root / f"clotho_audio_{split}") if d.is_dir()), root / split)
        for row in read_delimited(table, ","):
            name = row.get("file_name", "")
            captions = [row.get(f"caption_{k}", "") for k in range(1, 6)]
            captions = [c for c in captions if c]
            if not name or not captions:
                reject(rejects, corpus, table, f"row without file_name/captions: {row}")
                continue
            audio = folder / name
            ok, duration = audio_duration(audio, corpus, rejects, probe=probe)
            if not ok:
                continue
            chosen = list(enumerate(captions, 1)) if all_captions else [(1, captions[0])]
            for k, caption in chosen:
                yield AudioRecord(
                    id=f"{split}/{name}#{k}" if all_captions else f"{split}/{name}",
                    audio=str(audio),
                    corpus=corpus,
                    duration=duration,
                    caption=caption,
                    kind="sound",
                )


VOCALSOUND_LABELS = {
    "laughter": "Laughter",
    "sigh": "Sigh",
    "cough": "Cough",
    "throatclearing": "Throat clearing",
    "sneeze": "Sneeze",
    "sniff": "Sniff",
}


def read_vocalsound(
    root: str | os.PathLike,
    *,
    rejects: list[dict] | None = None,
    probe: bool = True,
    corpus: str = "VocalSound",
) -> Iterator[AudioRecord]:
    root = check_root(root, corpus)
    folder = next(
        (d for d in (root / "audio_16k", root / "audio", root) if d.is_dir() and any(d.glob("*_*.wav"))), None
    )
    if folder is None:
        raise layout_error(corpus, "ROOT/audio_16k/<speaker>_<n>_<label>.wav", root)
    for audio in sorted(folder.glob("*_*.wav")):
        label = VOCALSOUND_LABELS.get(audio.stem.rsplit("_", 1)[-1].lower())
        if label is None:
            reject(rejects, corpus, audio, "file name does not end in a VocalSound label")
            continue
        ok, duration = audio_duration(audio, corpus, rejects, probe=probe)
        if not ok:
            continue
        yield AudioRecord(
            id=audio.stem,
            audio=str(audio),
            corpus=corpus,
            duration=duration,
            caption=label,
            kind="sound",
        )

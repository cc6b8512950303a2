"""Seed descriptions: the text that stands in for the audio when the backbone LLM writes targets.

The official format (reference §11.3) is::

    [MM:SS-MM:SS] <spoken content> (<Attr>: <value>, <Attr>: <value>, ...)

- Speech: ``[00:00-00:02] Excuse me? (Emotion: Neutral, Gender: Female, Duration: 2s)``.
- Sound/music with a caption or labels: ``[00:00-00:10] (Plastic crinkling... people talk)``.
- Label-only clips: ``[00:00-00:05] (Audio category: door_wood_knock, Duration: 5.0)``.
- Caption and attributes together: ``[00:00-00:03] (4 speakers talking) (Noise Level: Noisy)``.

Timestamps are whole seconds, rounded half up; an end time is at least one second after its start
when the clip is not empty, so a 0.4 s clip reads ``[00:00-00:01]``. Past an hour both stamps of a
line use ``HH:MM:SS``. A single record is described as the clip the model hears, so its stamps start
at ``00:00`` even when the record is a segment of a longer file (``start`` > 0); several segments of
one long clip are described with :func:`describe_segments`, whose stamps are offsets into that clip.

The official data is not perfectly uniform (``Pitch:low`` without a space, ``HH:MM:SS`` for short
clips, ...); this module writes the dominant form only. Attribute names and values are written as the
record holds them: readers choose the corpus's spelling.

Everything here is pure string work (no audio is read), so describing is cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from desta.data.records import AudioRecord
from desta.errors import DeSTAError


def _whole_seconds(seconds: float) -> int:
    return int(math.floor(seconds + 0.5))


def format_timestamp(seconds: float, *, hours: bool | None = None) -> str:
    """Whole-second timestamp: ``"MM:SS"``, or ``"HH:MM:SS"`` from one hour on (or when ``hours``).

    >>> format_timestamp(2.4), format_timestamp(65), format_timestamp(3725)
    ('00:02', '01:05', '01:02:05')
    """
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        raise DeSTAError(f"a timestamp needs a finite number of seconds >= 0, got {seconds!r}")
    total = _whole_seconds(seconds)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    if hours is None:
        hours = h > 0
    if hours:
        return f"{h:02d}:{m:02d}:{s:02d}"
    return f"{m:02d}:{s:02d}"


def format_span(start: float, end: float) -> str:
    """``"[MM:SS-MM:SS]"`` for a span in seconds; the end is at least one second past a non-empty start."""
    if end < start:
        raise DeSTAError(f"a time span must not end before it starts: [{start}, {end}]")
    a, b = _whole_seconds(start), _whole_seconds(end)
    if end > start and b <= a:
        b = a + 1
    hours = b >= 3600
    return f"[{format_timestamp(a, hours=hours)}-{format_timestamp(b, hours=hours)}]"


def format_duration(seconds: float, style: str = "s") -> str:
    """A ``Duration`` attribute value: ``"2s"`` (style ``"s"``) or ``"5.0"`` (style ``"float"``, ESC-50)."""
    if style == "s":
        return f"{max(1, _whole_seconds(seconds)) if seconds > 0 else 0}s"
    if style == "float":
        return f"{seconds:.1f}"
    raise DeSTAError(f"unknown duration style {style!r}; use 's' or 'float'")


def _clean(text: str) -> str:
    return " ".join(text.split())


def format_attributes(attributes: dict[str, str]) -> str:
    """``"(Attr: value, Attr: value)"``; empty values are left out; ``""`` when nothing is left."""
    items = [f"{k}: {_clean(str(v))}" for k, v in attributes.items() if str(v).strip()]
    return f"({', '.join(items)})" if items else ""


def _body(record: AudioRecord) -> str:
    parts = []
    transcript = _clean(record.transcript)
    if transcript:
        parts.append(transcript)
    caption = _clean(record.caption)
    if caption:
        parts.append(f"({caption})")
    attrs = format_attributes(record.attributes)
    if attrs:
        parts.append(attrs)
    return " ".join(parts)


def _require_duration(record: AudioRecord) -> float:
    if record.duration is None:
        raise DeSTAError(
            f"record {record.id!r} ({record.corpus}) has no duration; read it with the source's "
            "duration probing on, or run desta.data.attributes.enrich first"
        )
    return float(record.duration)


def seed_description(record: AudioRecord) -> str:
    """The seed description of one clip, e.g. ``"[00:00-00:02] Take it. (Emotion: Neutral, Gender: Female)"``.

    Raises :class:`DeSTAError` when the record has no duration.
    """
    span = format_span(0.0, _require_duration(record))
    body = _body(record)
    return f"{span} {body}" if body else span


def describe_segments(segments: Sequence[AudioRecord], *, origin: float = 0.0) -> str:
    """Several timed segments of one long clip, one line each, in time order.

    Stamps are ``segment.start - origin`` (``origin`` = where the clip the model hears starts in the
    file), e.g. ``"[00:00-00:04] Hello there. (Gender: Male)\\n[00:04-00:09] Hi! (Gender: Female)"``.
    """
    lines = []
    for seg in sorted(segments, key=lambda r: (r.start, r.id)):
        start = seg.start - origin
        if start < -1e-6:
            raise DeSTAError(f"segment {seg.id!r} starts at {seg.start}s, before the clip origin {origin}s")
        start = max(0.0, start)
        span = format_span(start, start + _require_duration(seg))
        body = _body(seg)
        lines.append(f"{span} {body}" if body else span)
    return "\n".join(lines)

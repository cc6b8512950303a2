"""Seed descriptions against the verbatim examples of the reference (§11.4) and format edge cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from desta.data.describe import (
    describe_segments,
    format_attributes,
    format_duration,
    format_span,
    format_timestamp,
    seed_description,
)
from desta.data.records import AudioRecord
from desta.errors import DeSTAError

GOLDEN = [json.loads(line) for line in (Path(__file__).parent / "golden" / "official_seeds.jsonl").open()]


def test_golden_file_covers_the_official_table():
    assert len(GOLDEN) == 50
    assert {g["n"] for g in GOLDEN} == set(range(1, 52)) - {27}  # AliMeeting has no example
    # only the three non-uniform official spellings are normalised
    assert sorted(g["n"] for g in GOLDEN if g["official"] != g["expected"]) == [4, 5, 38]


@pytest.mark.parametrize("golden", GOLDEN, ids=[f"{g['n']}-{g['dataset']}" for g in GOLDEN])
def test_official_examples(golden):
    record = AudioRecord.from_dict(golden["record"])
    assert seed_description(record) == golden["expected"]


def test_examples_spelled_out():
    iemocap = AudioRecord(
        id="Ses01F_impro01_F000",
        audio="x.wav",
        corpus="IEMOCAP",
        duration=1.9456,
        transcript="Excuse me?",
        attributes={
            "Emotion": "Neutral",
            "Gender": "Female",
            "Pitch": "Very high",
            "Volume": "Low",
            "Speaking speed": "Very slow",
            "Duration": "2s",
        },
    )
    assert seed_description(iemocap) == (
        "[00:00-00:02] Excuse me? (Emotion: Neutral, Gender: Female, Pitch: Very high, Volume: Low, "
        "Speaking speed: Very slow, Duration: 2s)"
    )
    audiocaps = AudioRecord(
        id="1",
        audio="y.wav",
        corpus="AudioCaps",
        duration=10.0,
        caption="Plastic crinkling... people talk",
        kind="sound",
    )
    assert seed_description(audiocaps) == "[00:00-00:10] (Plastic crinkling... people talk)"
    musan = AudioRecord(
        id="2",
        audio="z.wav",
        corpus="VCTK+MUSAN",
        duration=3.2,
        caption="4 speakers talking",
        attributes={"Noise Level": "Noisy", "Signal-to-Noise Ratio": "10db"},
    )
    assert (
        seed_description(musan)
        == "[00:00-00:03] (4 speakers talking) (Noise Level: Noisy, Signal-to-Noise Ratio: 10db)"
    )


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "00:00"),
        (2.4, "00:02"),
        (2.5, "00:03"),
        (59.6, "01:00"),
        (65, "01:05"),
        (3599.4, "59:59"),
        (3599.5, "01:00:00"),
        (3725, "01:02:05"),
        (36000, "10:00:00"),
    ],
)
def test_format_timestamp(seconds, text):
    assert format_timestamp(seconds) == text


def test_format_timestamp_rejects_bad_values():
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(DeSTAError):
            format_timestamp(bad)


def test_span_rules():
    assert format_span(0, 0.4) == "[00:00-00:01]"  # a non-empty clip never reads 00:00-00:00
    assert format_span(0, 0) == "[00:00-00:00]"
    assert format_span(3590, 3610) == "[00:59:50-01:00:10]"  # both stamps in HH:MM:SS past an hour
    with pytest.raises(DeSTAError):
        format_span(5, 4)


def test_format_duration_styles():
    assert format_duration(1.9456) == "2s"
    assert format_duration(0.3) == "1s"
    assert format_duration(5.0, "float") == "5.0"
    with pytest.raises(DeSTAError):
        format_duration(1.0, "ms")


def test_whitespace_and_empty_values():
    rec = AudioRecord(
        id="a",
        audio="a.wav",
        corpus="c",
        duration=2,
        transcript="  hello\n  world ",
        attributes={"A": "x", "B": " "},
    )
    assert seed_description(rec) == "[00:00-00:02] hello world (A: x)"
    assert seed_description(rec.with_(transcript="", attributes={})) == "[00:00-00:02]"
    assert format_attributes({}) == ""


def test_segment_record_starts_at_zero_and_missing_duration_is_an_error():
    seg = AudioRecord(id="s", audio="a.wav", corpus="c", start=12.0, duration=3.0, transcript="hi")
    assert seed_description(seg) == "[00:00-00:03] hi"
    with pytest.raises(DeSTAError, match="no duration"):
        seed_description(seg.with_(duration=None))


def test_describe_segments_orders_and_offsets():
    a = AudioRecord(
        id="a",
        audio="m.wav",
        corpus="AMI",
        start=10.2,
        duration=3.9,
        transcript="Hello there.",
        attributes={"Speaker": "A", "Gender": "Male"},
    )
    b = AudioRecord(
        id="b",
        audio="m.wav",
        corpus="AMI",
        start=14.4,
        duration=4.7,
        transcript="Hi!",
        attributes={"Speaker": "B", "Gender": "Female"},
    )
    noise = AudioRecord(
        id="n", audio="m.wav", corpus="AMI", start=19.0, duration=2.0, caption="door slams", kind="sound"
    )
    assert describe_segments([b, noise, a], origin=10.0) == (
        "[00:00-00:04] Hello there. (Speaker: A, Gender: Male)\n"
        "[00:04-00:09] Hi! (Speaker: B, Gender: Female)\n"
        "[00:09-00:11] (door slams)"
    )
    assert describe_segments([a]).startswith("[00:10-00:14] Hello there.")
    assert describe_segments([]) == ""
    with pytest.raises(DeSTAError, match="before the clip origin"):
        describe_segments([a], origin=11.0)

"""Computed attributes on synthetic signals whose pitch, level and speaking rate are known."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from desta.data.attributes import (
    active_level_dbfs,
    active_span_seconds,
    bin_value,
    compute_attributes,
    count_words,
    enrich,
    median_f0,
)
from desta.data.records import AudioRecord


def voice(f0: float, seconds: float, sr: int = 16000, amp: float = 0.3, pad: float = 0.0) -> np.ndarray:
    """A harmonic tone (5 partials, falling amplitude) with optional leading/trailing silence."""
    t = np.arange(int(seconds * sr)) / sr
    x = sum(amp / k * np.sin(2 * np.pi * f0 * k * t) for k in range(1, 6))
    z = np.zeros(int(pad * sr))
    return np.concatenate([z, x, z]).astype(np.float32)


@pytest.mark.parametrize("sr", [8000, 16000, 44100])
@pytest.mark.parametrize("f0", [75.0, 118.0, 220.0, 440.0])
def test_median_f0_accuracy(f0, sr):
    assert median_f0(voice(f0, 1.0, sr), sr) == pytest.approx(f0, rel=0.01)


def test_no_pitch_for_noise_or_silence():
    rng = np.random.default_rng(0)
    assert median_f0(rng.standard_normal(16000).astype(np.float32) * 0.1, 16000) is None
    assert median_f0(np.zeros(16000, np.float32), 16000) is None
    assert "Pitch" not in compute_attributes(np.zeros(16000, np.float32), 16000)
    assert "Volume" not in compute_attributes(np.zeros(16000, np.float32), 16000)


def test_gender_aware_pitch_bins():
    x = voice(120.0, 1.0)
    assert compute_attributes(x, 16000, gender="Male")["Pitch"] == "Normal"
    assert compute_attributes(x, 16000, gender="female_feminine")["Pitch"] == "Very low"
    assert compute_attributes(x, 16000)["Pitch"] == "Low"
    y = voice(300.0, 1.0)
    assert compute_attributes(y, 16000, gender="F")["Pitch"] == "Very high"
    assert compute_attributes(voice(150.0, 1.0), 16000, gender="m")["Pitch"] == "High"


def test_volume_is_active_level_in_dbfs():
    sr = 16000
    sine = np.sin(2 * np.pi * 1000 * np.arange(sr) / sr).astype(np.float32)
    assert active_level_dbfs(sine, sr) == pytest.approx(-3.01, abs=0.02)
    padded = np.concatenate([np.zeros(3 * sr, np.float32), sine * 0.05, np.zeros(3 * sr, np.float32)])
    assert active_level_dbfs(padded, sr) == pytest.approx(-3.01 + 20 * np.log10(0.05), abs=0.05)  # -29.0
    assert compute_attributes(sine, sr)["Volume"] == "Very high"
    assert compute_attributes(padded, sr)["Volume"] == "Normal"
    assert compute_attributes(sine * 0.1, sr)["Volume"] == "Normal"  # -23 dBFS
    assert compute_attributes(sine * 0.025, sr)["Volume"] == "Low"  # -35.0 dBFS
    assert compute_attributes(sine * 0.015, sr)["Volume"] == "Very low"  # -39.5 dBFS


def test_speaking_speed_uses_active_span():
    x = voice(200.0, 4.0, pad=1.0)  # 6 s clip, 4 s of sound
    assert active_span_seconds(x, 16000) == pytest.approx(4.0, abs=0.03)
    ten = " ".join(["word"] * 10)  # 2.5 words/s
    assert compute_attributes(x, 16000, ten)["Speaking speed"] == "Normal"
    assert compute_attributes(x, 16000, " ".join(["w"] * 6))["Speaking speed"] == "Very slow"  # 1.5
    assert compute_attributes(x, 16000, " ".join(["w"] * 14))["Speaking speed"] == "Fast"  # 3.5
    assert compute_attributes(x, 16000, " ".join(["w"] * 20))["Speaking speed"] == "Very fast"
    assert "Speaking speed" not in compute_attributes(x, 16000, "")
    assert compute_attributes(x, 16000, ten)["Duration"] == "6s"


def test_count_words():
    assert count_words("Hello, world -- it's me.") == 4
    assert count_words("我每个月打一次电话。") == pytest.approx(0.6 * 9)
    assert count_words("OK 好的") == pytest.approx(1 + 1.2)


def test_bin_edges_fall_in_upper_bin():
    edges = (1.0, 2.0, 3.0, 4.0)
    assert [bin_value(v, edges) for v in (0.5, 1.0, 2.5, 3.0, 4.0, 9.0)] == [
        "Very low",
        "Low",
        "Normal",
        "High",
        "Very high",
        "Very high",
    ]


def test_enrich_adds_missing_only_and_keeps_duration_last(tmp_path):
    sr = 16000
    path = tmp_path / "a.wav"
    full = np.concatenate([voice(300.0, 2.0, sr), voice(110.0, 2.0, sr)])
    sf.write(path, full, sr)
    rec = AudioRecord(
        id="a",
        audio=str(path),
        corpus="IEMOCAP",
        start=2.0,
        duration=2.0,
        transcript="one two three four five",
        attributes={"Emotion": "Neutral", "Gender": "Male", "Volume": "Low", "Duration": "2s"},
    )
    out = enrich(rec)  # reads only the [2 s, 4 s] span: the 110 Hz part
    assert list(out.attributes) == ["Emotion", "Gender", "Volume", "Pitch", "Speaking speed", "Duration"]
    assert out.attributes["Pitch"] == "Normal" and out.attributes["Volume"] == "Low"
    assert out.attributes["Speaking speed"] == "Normal"  # 5 words / 2 s
    assert rec.attributes == {"Emotion": "Neutral", "Gender": "Male", "Volume": "Low", "Duration": "2s"}
    assert enrich(out) is out  # nothing missing: no audio read


def test_enrich_with_wave_fills_duration_and_skips_sound():
    wave = voice(220.0, 3.0)
    speech = AudioRecord(id="s", audio="unused.wav", corpus="x")
    out = enrich(speech, wave)
    assert out.duration == pytest.approx(3.0) and out.attributes["Pitch"] == "High"
    assert "Speaking speed" not in out.attributes
    sound = AudioRecord(id="d", audio="unused.wav", corpus="x", kind="sound")
    out = enrich(sound, wave)
    assert out.attributes == {} and out.duration == pytest.approx(3.0)
    out = enrich(sound, wave, names=["Duration"])
    assert out.attributes == {"Duration": "3s"}

"""desta.audio.io: every input kind loads as float32 mono 16 kHz; bad input raises a clear AudioError."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from desta.audio import N_SAMPLES, SAMPLE_RATE, decode_audio_bytes, load_audio, split_windows
from desta.errors import AudioError, DeSTAError
from helpers import SR, encode_bytes, peak_frequency, sine


def test_constants():
    assert SAMPLE_RATE == 16000
    assert N_SAMPLES == 480000


@pytest.mark.parametrize(
    ("suffix", "fmt", "subtype", "atol"),
    [
        (".wav", "WAV", "PCM_16", 1.0 / 32768),
        (".wav", "WAV", "FLOAT", 0.0),
        (".flac", "FLAC", "PCM_16", 1.0 / 32768),
        (".ogg", "OGG", "VORBIS", None),  # lossy: checked by frequency only
    ],
)
def test_load_file_formats(tmp_path, suffix, fmt, subtype, atol):
    wave = sine(1.0, 440.0)
    path = tmp_path / f"clip{suffix}"
    sf.write(path, wave, SR, format=fmt, subtype=subtype)
    out = load_audio(path)
    assert out.dtype == np.float32 and out.ndim == 1
    if atol is not None:
        assert out.shape == wave.shape
        np.testing.assert_allclose(out, wave, atol=atol + 1e-7)
    else:
        assert abs(out.size - wave.size) < 2000
        assert abs(peak_frequency(out) - 440.0) <= 2.0
    # str paths work too, and bytes of the same file decode identically
    np.testing.assert_array_equal(load_audio(str(path)), out)
    np.testing.assert_array_equal(load_audio(path.read_bytes()), out)


@pytest.mark.system
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg binary")
def test_load_mp3_made_with_ffmpeg(tmp_path):
    wav = tmp_path / "src.wav"
    sf.write(wav, sine(2.0, 1000.0), SR, subtype="PCM_16")
    mp3 = tmp_path / "clip.mp3"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(wav), "-b:a", "64k", str(mp3)], check=True)
    out = load_audio(mp3)
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(out.size - 2 * SR) < 0.1 * SR  # mp3 adds encoder delay / padding only
    assert abs(peak_frequency(out) - 1000.0) <= 2.0
    assert abs(peak_frequency(decode_audio_bytes(mp3.read_bytes(), name="x.mp3")) - 1000.0) <= 2.0


def test_int16_array_is_scaled():
    ints = np.array([0, 16384, -32768, 32767], dtype=np.int16)
    out = load_audio(ints)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.0, 0.5, -1.0, 32767 / 32768], atol=1e-7)


def test_uint8_array_is_centred_and_full_scale():
    # unsigned 8-bit PCM (wav's 8-bit format): 128 is zero, 0 is -1.0, 255 is 127/128
    out = load_audio(np.array([128, 0, 255], dtype=np.uint8))
    np.testing.assert_allclose(out, [0.0, -1.0, 127 / 128], atol=1e-6)


def test_float64_array_becomes_float32():
    wave = np.linspace(-0.5, 0.5, 1000)
    out = load_audio(wave)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, wave, atol=1e-7)


def test_stereo_channels_last_is_averaged():
    left, right = sine(0.5, 440.0), sine(0.5, 880.0)
    out = load_audio(np.stack([left, right], axis=1))  # (n, 2), soundfile layout
    np.testing.assert_allclose(out, (left + right) / 2, atol=1e-7)


def test_stereo_channels_first_is_averaged():
    left, right = sine(0.5, 440.0), 0.1 * np.ones(SR // 2, dtype=np.float32)
    out = load_audio(np.stack([left, right], axis=0))  # (2, n), torchaudio layout
    assert out.shape == (SR // 2,)
    np.testing.assert_allclose(out, (left + right) / 2, atol=1e-7)


def test_stereo_file(tmp_path):
    left, right = sine(0.5, 440.0), -sine(0.5, 440.0) * 0.5
    path = tmp_path / "st.wav"
    sf.write(path, np.stack([left, right], axis=1), SR, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path), (left + right) / 2, atol=1e-7)


def test_bytes_and_tuple_inputs():
    wave = sine(0.5, 440.0)
    data = encode_bytes(wave, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(data), wave)
    np.testing.assert_array_equal(load_audio(bytearray(data)), wave)
    np.testing.assert_array_equal(decode_audio_bytes(data), wave)
    np.testing.assert_array_equal(load_audio((wave, SR)), wave)
    # a tuple at another rate is resampled: 0.5 s at 8 kHz -> 8000 samples at 16 kHz
    assert load_audio((sine(0.5, 440.0, sr=8000), 8000)).shape == (8000,)


def test_torch_tensor_input():
    torch = pytest.importorskip("torch")
    wave = sine(0.25)
    np.testing.assert_array_equal(load_audio(torch.from_numpy(wave)), wave)


@pytest.mark.parametrize(("sr", "freq"), [(44100, 1000.0), (8000, 440.0), (48000, 3000.0), (22050, 250.0)])
def test_resampling_keeps_frequency(sr, freq):
    wave = sine(1.0, freq, sr=sr)
    out = load_audio(wave, sr=sr)
    assert out.dtype == np.float32
    assert abs(out.size - SR) <= 1
    assert abs(peak_frequency(out) - freq) <= 1.0
    # amplitude kept (VHQ resampler, no gain change) away from the edges
    assert abs(np.abs(out[1000:-1000]).max() - 0.3) < 0.01


def test_resampling_from_file_8k(tmp_path):
    path = tmp_path / "phone.wav"
    sf.write(path, sine(1.0, 440.0, sr=8000), 8000, subtype="PCM_16")
    out = load_audio(path)
    assert abs(out.size - SR) <= 1
    assert abs(peak_frequency(out) - 440.0) <= 1.0


def test_raw_pcm_file(tmp_path):
    ints = (sine(0.5) * 32767).astype("<i2")
    path = tmp_path / "x.raw"
    ints.tofile(path)
    np.testing.assert_allclose(load_audio(path), ints / 32768.0, atol=1e-6)


def test_silence_is_accepted():
    out = load_audio(np.zeros(SR, dtype=np.float32))
    assert out.shape == (SR,) and not out.any()


# ---------------------------------------------------------------- errors


def _raises(source, *words, **kw) -> str:
    with pytest.raises(AudioError) as info:
        load_audio(source, **kw)
    msg = str(info.value)
    for w in words:
        assert w in msg, f"{w!r} not in {msg!r}"
    assert isinstance(info.value, DeSTAError) and isinstance(info.value, ValueError)
    return msg


def test_missing_file(tmp_path):
    path = tmp_path / "nope.wav"
    _raises(path, str(path), "no such file")


def test_directory(tmp_path):
    _raises(tmp_path, str(tmp_path), "directory")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    _raises(path, str(path), "empty")


def test_garbage_with_wav_suffix(tmp_path):
    path = tmp_path / "garbage.wav"
    path.write_bytes(b"this is not audio at all " * 40)
    _raises(path, str(path), "unreadable")


def test_garbage_bytes_named():
    with pytest.raises(AudioError, match=r"upload\.wav: unreadable"):
        decode_audio_bytes(b"\x00\x01garbage" * 50, name="upload.wav")


def test_empty_bytes():
    _raises(b"", "empty")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_samples(bad):
    wave = sine(0.1)
    wave[10] = bad
    _raises(wave, "<array>", "NaN or infinite", "1 samples")


def test_nan_in_file(tmp_path):
    wave = sine(0.1)
    wave[5] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, wave, SR, subtype="FLOAT")
    _raises(path, str(path), "NaN")


def test_zero_length_array():
    _raises(np.zeros(0, dtype=np.float32), "empty", "0 samples")


def test_too_long():
    msg = _raises(np.zeros(11 * SR, dtype=np.float32), "11 s", "cap of 10 s", "max_seconds", max_seconds=10)
    assert "<array>" in msg
    assert load_audio(np.zeros(11 * SR, dtype=np.float32), max_seconds=None).size == 11 * SR


def test_too_long_file_names_the_file(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, np.zeros(3 * SR, dtype=np.float32), SR)
    _raises(path, str(path), "cap of 2 s", max_seconds=2)


def test_bad_shapes_and_types():
    _raises(np.zeros((2, 2, 2), dtype=np.float32), "shape")
    _raises(np.array(["a", "b"]), "dtype")
    _raises(12345, "unsupported audio input")
    _raises((np.zeros(10),), "(array, sample_rate)")


def test_name_is_used_in_messages():
    _raises(np.zeros(0, dtype=np.float32), "my-clip", name="my-clip")


# ---------------------------------------------------------------- windows


def test_split_windows_65s():
    wave = np.arange(65 * SR, dtype=np.float32)
    windows = split_windows(wave)
    assert [w.size / SR for w in windows] == [30.0, 30.0, 5.0]
    np.testing.assert_array_equal(np.concatenate(windows), wave)


def test_split_windows_short_and_exact():
    assert [w.size for w in split_windows(np.zeros(5 * SR))] == [5 * SR]
    assert [w.size for w in split_windows(np.zeros(30 * SR))] == [30 * SR]
    assert [w.size for w in split_windows(np.zeros(60 * SR))] == [30 * SR, 30 * SR]


def test_split_windows_drops_tiny_tail():
    # 30.02 s: the 0.02 s tail is dropped; 30.5 s keeps a 0.5 s window
    assert [w.size for w in split_windows(np.zeros(30 * SR + 320))] == [30 * SR]
    assert [w.size for w in split_windows(np.zeros(30 * SR + 8000))] == [30 * SR, 8000]

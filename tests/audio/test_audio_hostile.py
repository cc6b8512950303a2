"""Hostile audio: lying headers, huge silence, bad sample rates and values, URL-like names.

Memory bounds are checked with tracemalloc (numpy reports its buffers to it): the old decoder
allocated what a header declared, so these tests fail on it without needing the memory to exist.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import desta.audio.ffmpeg as ffmpeg_mod
from desta.audio import SAMPLE_RATE, decode_audio_bytes, load_audio
from desta.audio.rates import check_sample_rate
from desta.errors import AudioError
from helpers import SR, encode_bytes, sine

_spec = importlib.util.spec_from_file_location(
    "audio_fuzz", Path(__file__).parents[2] / "bench" / "audio_fuzz.py"
)
fuzz = sys.modules.setdefault("audio_fuzz", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(fuzz)  # registered first: its dataclasses look their module up

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg binary")
MiB = 1 << 20


def _peak_bytes(fn, *args, **kw):
    """(result or raised AudioError, peak bytes traced while running ``fn``)."""
    tracemalloc.start()
    try:
        try:
            result = fn(*args, **kw)
        except AudioError as err:
            result = err
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _flac(seconds: float = 1.0) -> bytes:
    return encode_bytes(sine(seconds), fmt="FLAC", subtype="PCM_16")


def _mp3() -> bytes:
    return encode_bytes(sine(1.0), fmt="MP3", subtype="MPEG_LAYER_III")


# ---------------------------------------------------------------- lying headers


@pytest.mark.parametrize("as_file", [False, True])
def test_flac_declaring_10_hours_is_refused_before_decoding(tmp_path, as_file):
    data = fuzz.flac_with_streaminfo(_flac(), total=10 * 3600 * SR)
    path = tmp_path / "lie.flac"
    path.write_bytes(data)
    source = path if as_file else data
    err, peak = _peak_bytes(load_audio, source, name="lie.flac")
    assert isinstance(err, AudioError)
    assert "lie.flac" in str(err) and "header declares 36000 s" in str(err) and "cap of 3600 s" in str(err)
    assert peak < 8 * MiB  # the old decoder asked for 10 h of float32 (2.3 GB) up front


def test_mp3_with_lying_xing_frame_count(tmp_path):
    data = fuzz.mp3_with_xing_frames(_mp3(), 2**31 - 1)
    err, peak = _peak_bytes(decode_audio_bytes, data, name="xing.mp3")
    assert isinstance(err, AudioError) and "xing.mp3" in str(err) and "header declares" in str(err)
    assert peak < 8 * MiB
    # without a cap the real second of audio decodes, in memory that follows the real length
    out, peak = _peak_bytes(decode_audio_bytes, data, name="xing.mp3", max_seconds=None)
    assert isinstance(out, np.ndarray) and abs(out.size - SR) < 0.05 * SR
    assert peak < 32 * MiB  # the old decoder allocated the declared 2^31 frames (over 30 GiB)


@pytest.mark.parametrize("size", [0xFFFFFFF0, 2**31])
def test_wav_with_lying_data_size_decodes_its_real_samples(size):
    wave = sine(0.5)
    good = encode_bytes(wave, subtype="PCM_16")
    out, peak = _peak_bytes(decode_audio_bytes, fuzz.wav_with_data_size(good, size), name="lie.wav")
    np.testing.assert_array_equal(out, decode_audio_bytes(good))
    assert peak < 8 * MiB


def test_flac_with_unknown_length_stops_at_the_cap():
    data = fuzz.flac_with_streaminfo(_flac(3.0), total=0)  # 0 = "unknown" in FLAC
    with pytest.raises(AudioError, match=r"nolen\.flac: audio runs past the cap of 2 s"):
        decode_audio_bytes(data, name="nolen.flac", max_seconds=2)
    np.testing.assert_array_equal(decode_audio_bytes(data, max_seconds=10), decode_audio_bytes(_flac(3.0)))


@pytest.mark.parametrize("rate", [0, 1, 999, 2**20 - 1])
def test_flac_header_with_a_bad_sample_rate(rate):
    data = fuzz.flac_with_streaminfo(_flac(), rate=rate)
    with pytest.raises(AudioError, match=r"rate\.flac: "):
        decode_audio_bytes(data, name="rate.flac")


# ---------------------------------------------------------------- huge silence


def test_silent_flac_longer_than_the_cap_fails_before_decoding(tmp_path, monkeypatch):
    path = fuzz.silence_flac(tmp_path / "silence.flac", 600, sr=16000)  # 10 min in about 30 KB
    assert path.stat().st_size < 100_000
    reads = []
    original = sf.SoundFile.read
    monkeypatch.setattr(
        sf.SoundFile, "read", lambda self, *a, **k: reads.append(a) or original(self, *a, **k)
    )
    err, peak = _peak_bytes(load_audio, path, max_seconds=60)
    assert isinstance(err, AudioError) and str(path) in str(err) and "declares 600 s" in str(err)
    assert reads == []  # not one sample decoded
    assert peak < 4 * MiB  # the old decoder held all 10 min (38 MB) before checking the cap


def test_raw_file_over_the_cap_is_refused_from_its_size(tmp_path):
    path = tmp_path / "long.raw"
    np.zeros(120 * SR, dtype="<i2").tofile(path)  # 2 min, 3.8 MB
    err, peak = _peak_bytes(load_audio, path, max_seconds=60)
    assert isinstance(err, AudioError) and "120 s long, over the cap of 60 s" in str(err)
    assert peak < 1 * MiB


# ---------------------------------------------------------------- sample rates


@pytest.mark.parametrize(
    "rate",
    [
        0,
        -16000,
        1,
        999,
        384_001,
        2**53,
        2**63,
        float("nan"),
        float("inf"),
        -float("inf"),
        16000.5,
        "16000",
        (16000,),
        [16000],
        True,
        np.array([8000, 8000]),
    ],
)
def test_bad_sample_rates_are_refused(rate):
    with pytest.raises(AudioError, match=r"<array>: .*(sample rate|one number)"):
        load_audio(sine(0.1), sr=rate)
    with pytest.raises(AudioError, match=r"<array>: "):
        load_audio((sine(0.1), rate))


def test_sample_rate_zero_is_not_16k():
    with pytest.raises(AudioError, match="0 Hz is outside"):
        load_audio(sine(0.1), sr=0)


def test_sample_rate_forms_that_mean_a_number():
    torch = pytest.importorskip("torch")
    wave = sine(0.5, sr=8000)
    want = load_audio(wave, sr=8000)
    assert want.shape == (8000,)
    for rate in (
        8000.0,
        np.int64(8000),
        np.float32(8000),
        np.array(8000),
        np.array([8000]),
        torch.tensor(8000),
    ):
        np.testing.assert_array_equal(load_audio(wave, sr=rate), want)
    np.testing.assert_array_equal(load_audio((wave, torch.tensor(8000))), want)
    np.testing.assert_array_equal(load_audio({"array": wave, "sampling_rate": 8000, "path": None}), want)
    np.testing.assert_array_equal(load_audio((wave, 8000), sr=8000), want)
    with pytest.raises(AudioError, match="tuple says 8000 Hz but sr=16000"):
        load_audio((wave, 8000), sr=16000)
    assert check_sample_rate(384_000, "x") == 384_000 and check_sample_rate(1000, "x") == 1000


def test_input_shorter_than_one_output_sample_is_an_error_not_empty():
    with pytest.raises(AudioError, match="shorter than one sample at 16000 Hz"):
        load_audio(np.ones(1, dtype=np.float32) * 0.1, sr=48000)


def test_audio_dicts():
    wave = sine(0.25)
    np.testing.assert_array_equal(
        load_audio({"bytes": encode_bytes(wave, subtype="FLOAT"), "path": "a.wav"}), wave
    )
    with pytest.raises(AudioError, match="a.wav: an audio dict with 'array' needs 'sampling_rate'"):
        load_audio({"array": wave, "path": "a.wav"})
    with pytest.raises(AudioError, match="needs 'array' and 'sampling_rate', 'bytes' or 'path'"):
        load_audio({"audio": wave})


# ---------------------------------------------------------------- sample values


@pytest.mark.parametrize("value", [1e20, 1e30, 1e300, 1000.5, -32768.0])
def test_absurd_sample_values_are_refused(value):
    wave = sine(0.1).astype(np.float64)
    wave[7] = value
    with pytest.raises(AudioError, match=r"<array>: samples reach .* beyond the accepted magnitude of 1000"):
        load_audio(wave)


def test_zero_channels_is_an_error_not_nan():
    with pytest.raises(AudioError, match="<array>: the audio has 0 channels"):
        load_audio(np.zeros((100, 0), dtype=np.float32))


def test_loud_but_plausible_samples_pass_unchanged():
    wave = sine(0.1) * 3.0  # clipped mixes exceed full scale; kept as they are
    wave[3] = 1000.0
    np.testing.assert_array_equal(load_audio(wave), wave)


def test_float_file_with_huge_samples(tmp_path):
    wave = sine(0.1)
    wave[100] = 1e25
    path = tmp_path / "loud.wav"
    sf.write(path, wave, SR, subtype="FLOAT")
    with pytest.raises(AudioError, match="samples reach 1e\\+25"):
        load_audio(path)


# ---------------------------------------------------------------- tensors, paths, memory


def test_tensor_dtypes():
    torch = pytest.importorskip("torch")
    wave = torch.from_numpy(sine(0.1))
    for t in (wave.to(torch.bfloat16), wave.to(torch.float16), wave.requires_grad_(True), wave.to_sparse()):
        out = load_audio(t)
        np.testing.assert_allclose(out, t.detach().to_dense().float().numpy(), atol=0)
    with pytest.raises(AudioError, match="<tensor>: audio samples must be real numbers"):
        load_audio(wave.detach().to(torch.complex64))
    with pytest.raises(AudioError, match="<tensor>: audio samples must be numbers, got dtype bool"):
        load_audio(torch.ones(10, dtype=torch.bool))


def test_file_name_over_255_bytes(tmp_path):
    path = tmp_path / ("x" * 300 + ".wav")
    with pytest.raises(AudioError, match="cannot open the file .*File name too long"):
        load_audio(path)


def test_symlink_loop_and_nul_byte(tmp_path):
    loop = tmp_path / "loop.wav"
    os.symlink(loop, loop)
    with pytest.raises(AudioError, match="loop.wav: cannot open the file"):
        load_audio(loop)
    with pytest.raises(AudioError, match="cannot open the file .*null byte"):
        load_audio(str(tmp_path / "a\0b.wav"))


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    with pytest.raises(AudioError, match="pipe.wav: is not a regular file"):
        load_audio(fifo)


def test_memory_errors_become_audio_errors(monkeypatch):
    import soxr

    def boom(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(soxr, "resample", boom)
    with pytest.raises(AudioError, match="<array>: out of memory while resampling"):
        load_audio(sine(0.1, sr=8000), sr=8000)
    monkeypatch.setattr(sf.SoundFile, "read", boom)
    with pytest.raises(AudioError, match="mem.wav: out of memory while decoding"):
        decode_audio_bytes(encode_bytes(sine(0.1)), name="mem.wav")


# ---------------------------------------------------------------- ffmpeg: files are files


def _m4a(tmp_path: Path, seconds: float = 1.0) -> bytes:
    wav = tmp_path / "src.wav"
    sf.write(wav, sine(seconds, 1000.0), SR, subtype="PCM_16")
    out = tmp_path / "src.m4a"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(wav), str(out)], check=True)
    return out.read_bytes()


@pytest.mark.system
@needs_ffmpeg
@pytest.mark.parametrize("name", ["pipe:0", "file:x.m4a", "http:x.m4a", "concat:a|b.m4a", "-i"])
def test_url_like_file_names_decode_their_own_file(tmp_path, monkeypatch, name):
    data = _m4a(tmp_path)
    want = decode_audio_bytes(data, name="src.m4a")
    (tmp_path / name).write_bytes(data)
    monkeypatch.chdir(tmp_path)  # a relative name is what ffmpeg would read as a URL
    np.testing.assert_array_equal(load_audio(name), want)
    np.testing.assert_array_equal(load_audio(Path(name)), want)


@pytest.mark.system
@needs_ffmpeg
@pytest.mark.parametrize(
    "script",
    ["ffconcat version 1.0\nfile 'target.wav'\n", "#EXTM3U\n#EXTINF:1.0,\ntarget.wav\n#EXT-X-ENDLIST\n"],
)
@pytest.mark.parametrize("name", ["script.m4a", "list.m3u8"])
def test_playlists_and_concat_scripts_open_nothing_else(tmp_path, monkeypatch, script, name):
    sf.write(tmp_path / "target.wav", sine(1.0), SR)
    path = tmp_path / name
    path.write_text(script)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AudioError, match=f"{name}: unreadable audio"):
        load_audio(name)
    with pytest.raises(AudioError, match=f"{name}: unreadable audio"):
        decode_audio_bytes(path.read_bytes(), name=name)


@pytest.mark.system
@needs_ffmpeg
def test_m4a_bytes_with_the_index_at_the_end_decode(tmp_path):
    data = _m4a(tmp_path, seconds=20.0)  # ffmpeg writes moov after the audio; over a pipe this gave 0 samples
    path = tmp_path / "twenty.m4a"
    path.write_bytes(data)
    out = decode_audio_bytes(data, name="upload.m4a")
    assert abs(out.size - 20 * SR) < 0.05 * SR
    np.testing.assert_array_equal(out, load_audio(path))


@pytest.mark.system
@needs_ffmpeg
def test_ffmpeg_input_over_the_cap_is_refused_from_its_duration(tmp_path, monkeypatch):
    data = _m4a(tmp_path, seconds=5.0)
    calls: list[str] = []
    original = subprocess.run
    monkeypatch.setattr(
        ffmpeg_mod.subprocess, "run", lambda cmd, **k: calls.append(Path(cmd[0]).name) or original(cmd, **k)
    )
    with pytest.raises(AudioError, match=r"m4a: its header declares 5 s long, over the cap of 2 s"):
        decode_audio_bytes(data, name="five.m4a", max_seconds=2)
    assert calls == ["ffprobe"]  # refused before ffmpeg decoded anything
    # without a duration to go on, ffmpeg itself stops one second past the cap
    monkeypatch.setattr(ffmpeg_mod, "probe_seconds", lambda *a: None)
    with pytest.raises(AudioError, match=r"five.m4a: audio runs past the cap of 2 s"):
        decode_audio_bytes(data, name="five.m4a", max_seconds=2)
    assert len(decode_audio_bytes(data, name="five.m4a", max_seconds=10)) > 4.9 * SAMPLE_RATE


# ---------------------------------------------------------------- bit flips of real clips


def test_bit_flips_of_clips_give_audio_or_a_clean_error(tmp_path):
    rng = np.random.default_rng(0)
    import random

    clips = [_flac(), encode_bytes(sine(1.0), subtype="PCM_16"), _mp3()]
    flips = 0
    for k in range(60):
        data = fuzz.flip_bits(clips[k % 3], random.Random(k), int(rng.integers(1, 4)))
        try:
            out = decode_audio_bytes(data, name=f"flip{k}")
        except AudioError as err:
            assert f"flip{k}" in str(err)
            flips += 1
            continue
        assert out.dtype == np.float32 and out.ndim == 1 and out.size > 0 and np.isfinite(out).all()
    assert flips < 60  # most flips leave a decodable file

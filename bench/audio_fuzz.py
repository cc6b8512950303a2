"""Fuzz ``desta.audio.load_audio`` with generated hostile inputs; every one must end in a clean answer.

Inputs (deterministic from ``--seed``): bit flips and truncations of real clips (wav/flac/ogg/mp3/m4a,
the LibriVox sentences when installed), headers that lie (WAV data/RIFF size, FLAC total samples,
sample rate and channels, MP3 Xing frame count), a FLAC of 10 h of silence, random bytes, text files
holding an ffconcat script or an HLS playlist, URL-like file names (``pipe:0``, ``file:x.m4a``, ...),
names over 255 bytes, arrays with NaN/inf/huge samples or odd dtypes and shapes, and bad sample rates.

Each input runs in a worker process that reports per input; a worker silent for ``--timeout`` seconds
is killed and the input counted as a hang. Outcomes: ``clean_error`` (an AudioError naming the input),
``success`` (a non-empty finite float32 (n,) array), and the failures ``crash`` (any other exception),
``unnamed_error`` (an AudioError that does not name the input), ``bad_success`` (empty or non-finite
output), ``wrong`` (an input with a known answer got another: a URL-like name did not decode its own
file, a playlist decoded, a lying header over the cap was not refused) and ``hang``.
Writes ``bench/results/audio_fuzz.json``.

    python bench/audio_fuzz.py            # 10,000 inputs
    python bench/audio_fuzz.py -n 2000 --seed 1 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
CAP = 600.0  # max_seconds for the fuzzed calls: long enough for every real clip, short next to the lies
FAILURES = ("crash", "unnamed_error", "bad_success", "wrong", "hang")

# ------------------------------------------------------------------------- hostile builders


def wav_with_data_size(data: bytes, size: int) -> bytes:
    """A WAV file whose ``data`` chunk claims ``size`` bytes."""
    out = bytearray(data)
    i = out.find(b"data")
    out[i + 4 : i + 8] = struct.pack("<I", size & 0xFFFFFFFF)
    return bytes(out)


def flac_with_streaminfo(
    data: bytes, total: int | None = None, rate: int | None = None, channels: int | None = None
) -> bytes:
    """A FLAC file whose STREAMINFO claims ``total`` samples, ``rate`` Hz or ``channels`` (1..8)."""
    out = bytearray(data)
    assert out[:4] == b"fLaC" and out[4] & 0x7F == 0, "STREAMINFO must be the first block"
    field_ = int.from_bytes(out[18:26], "big")  # rate:20 channels-1:3 bps-1:5 total:36
    if total is not None:
        field_ = (field_ & ~((1 << 36) - 1)) | (total & ((1 << 36) - 1))
    if rate is not None:
        field_ = (field_ & ((1 << 44) - 1)) | ((rate & 0xFFFFF) << 44)
    if channels is not None:
        field_ = (field_ & ~(7 << 41)) | (((channels - 1) & 7) << 41)
    out[18:26] = field_.to_bytes(8, "big")
    return bytes(out)


def mp3_with_xing_frames(data: bytes, frames: int) -> bytes:
    """An MP3 file whose Xing (or Info) header claims ``frames`` frames."""
    out = bytearray(data)
    i = max(out.find(b"Xing"), out.find(b"Info"))
    assert i >= 0 and struct.unpack(">I", out[i + 4 : i + 8])[0] & 1, "no Xing frame count"
    out[i + 8 : i + 12] = struct.pack(">I", frames & 0xFFFFFFFF)
    return bytes(out)


def silence_flac(path: Path, seconds: float, sr: int = 8000) -> Path:
    """Write a real FLAC of ``seconds`` of digital silence (10 h at 8 kHz is about 1 MB)."""
    import soundfile as sf

    block = np.zeros(sr * 60, dtype=np.float32)
    with sf.SoundFile(path, "w", sr, 1, format="FLAC", subtype="PCM_16") as f:
        left = int(seconds * sr)
        while left > 0:
            f.write(block[: min(left, block.size)])
            left -= block.size
    return path


def flip_bits(data: bytes, rng: random.Random, flips: int, bits: int = 2) -> bytes:
    """``flips`` times, flip ``bits`` random bits of one random byte."""
    out = bytearray(data)
    for _ in range(flips):
        i = rng.randrange(len(out))
        for b in rng.sample(range(8), bits):
            out[i] ^= 1 << b
    return bytes(out)


def base_clips(work: Path) -> dict[str, bytes]:
    """Encoded clips to mutate: a 1 s sine in several formats, plus real speech when installed."""
    import soundfile as sf

    t = np.arange(16000) / 16000
    sine = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    stereo = np.stack([sine, -0.5 * sine], axis=1)
    clips: dict[str, bytes] = {}
    for name, wave, sr, fmt, subtype in [
        ("sine16.wav", sine, 16000, "WAV", "PCM_16"),
        ("sinefloat.wav", sine, 16000, "WAV", "FLOAT"),
        ("stereo44.wav", stereo, 44100, "WAV", "PCM_24"),
        ("sine.flac", sine, 16000, "FLAC", "PCM_16"),
        ("sine.ogg", sine, 16000, "OGG", "VORBIS"),
        ("sine.mp3", sine, 16000, "MP3", "MPEG_LAYER_III"),
    ]:
        path = work / name
        sf.write(path, wave, sr, format=fmt, subtype=subtype)
        clips[name] = path.read_bytes()
    for wav in sorted(LIBRIVOX.glob("*.wav"))[:2]:
        clips["real-" + wav.name] = wav.read_bytes()
        flac = work / ("real-" + wav.stem + ".flac")
        sf.write(flac, sf.read(wav)[0], 16000, format="FLAC")
        clips[flac.name] = flac.read_bytes()
    if shutil.which("ffmpeg"):
        m4a = work / "sine.m4a"
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(work / "sine16.wav"), str(m4a)], check=True
        )
        clips["sine.m4a"] = m4a.read_bytes()
    return clips


# ------------------------------------------------------------------------- cases


@dataclass
class Case:
    """One input: ``source`` (bytes, path, array, ...) and keyword arguments for ``load_audio``."""

    kind: str
    source: Any
    kwargs: dict[str, Any] = field(default_factory=dict)
    label: str | None = None  # what the error must name
    expect: str | None = None  # "error", or "same:<clip>": must decode to what that clip decodes to


BAD_RATES: list[Any] = [
    0,
    -16000,
    1,
    999,
    384001,
    2**31,
    2**53,
    2**63,
    10**30,
    float("nan"),
    float("inf"),
    -float("inf"),
    16000.5,
    1e-300,
    "16000",
    (16000,),
    [16000],
    True,
    b"x",
]
NAMES = [
    "pipe:0",
    "pipe:1",
    "file:x.m4a",
    "http:x.wav",
    "concat:a.wav|b.wav",
    "-i",
    "tcp:127.0.0.1:9",
    "data:audio,wav;base64,AAAA",
    "subfile,,start,0,end,10,,:x.wav",
    "x" * 300 + ".wav",
]


class CaseMaker:
    """Builds case ``i`` deterministically from the seed, writing files into ``work``."""

    def __init__(self, work: Path, seed: int, long_seconds: float) -> None:
        self.work = work
        self.seed = seed
        self.clips = base_clips(work)
        self.long_seconds = long_seconds
        self.long_flac = silence_flac(work / "silence-10h.flac", long_seconds).read_bytes()

    def _file(self, i: int, name: str, data: bytes) -> str:
        folder = self.work / f"case{i}"
        folder.mkdir(exist_ok=True)
        path = folder / name
        path.write_bytes(data)
        return str(path)

    def make(self, i: int) -> Case:
        rng = random.Random(self.seed * 1_000_003 + i)
        clip = rng.choice(sorted(self.clips))
        data = self.clips[clip]
        ext = Path(clip).suffix
        as_file = rng.random() < 0.5
        r = rng.random()
        if r < 0.30:
            kind, data = "bitflip", flip_bits(data, rng, rng.choice([1, 2, 3, 8, 32]))
        elif r < 0.38:
            kind, data = "truncate", data[: rng.randrange(1, len(data))]
        elif r < 0.43:
            kind, data = "random_bytes", rng.randbytes(rng.choice([1, 10, 100, 1000, 20000]))
        elif r < 0.52:
            return self._lying_header(i, rng)
        elif r < 0.55:
            flac = self._file(i, "silence.flac", self.long_flac)
            expect = "error" if self.long_seconds > CAP else None
            return Case("silence_long_flac", flac, {"max_seconds": CAP}, expect=expect)
        elif r < 0.62:
            return self._name(i, rng)
        elif r < 0.66:
            return self._playlist(i, rng)
        elif r < 0.88:
            return self._array(rng)
        else:
            kind = "bad_rate_raw" if rng.random() < 0.5 else "bad_rate_file"
            rate = rng.choice(BAD_RATES)
            if kind == "bad_rate_raw":
                path = self._file(i, "x.raw", (np.zeros(1600, "<i2") + 100).tobytes())
            else:
                path = self._file(i, "clip" + ext, data)
            return Case(
                kind, path, {"sr": rate, "max_seconds": CAP}, expect="error" if kind.endswith("raw") else None
            )
        kw = {"max_seconds": CAP}
        if as_file:
            return Case(kind, self._file(i, "clip" + ext, data), kw)
        return Case(kind, data, {**kw, "name": f"fuzz{i}{ext}"}, label=f"fuzz{i}{ext}")

    def _lying_header(self, i: int, rng: random.Random) -> Case:
        huge = rng.choice([CAP * 16000 * 2, 2**31, 2**35, 2**36 - 1])
        choice = rng.randrange(6)
        if choice == 0:
            kind, data, expect = (
                "lie_wav_data_size",
                wav_with_data_size(self.clips["sine16.wav"], rng.choice([0, 1, 2**31, 2**32 - 1])),
                None,
            )
        elif choice == 1:
            kind, data, expect = (
                "lie_flac_total",
                flac_with_streaminfo(self.clips["sine.flac"], total=int(huge)),
                "error",
            )
        elif choice == 2:
            kind, data, expect = (
                "lie_flac_rate",
                flac_with_streaminfo(
                    self.clips["sine.flac"], rate=rng.choice([0, 1, 999, 655350, 2**20 - 1])
                ),
                "error",
            )
        elif choice == 3:
            kind, data, expect = (
                "lie_flac_channels",
                flac_with_streaminfo(self.clips["sine.flac"], channels=rng.randint(2, 8)),
                None,
            )
        elif choice == 4:
            kind, data, expect = (
                "lie_mp3_xing",
                mp3_with_xing_frames(self.clips["sine.mp3"], rng.choice([2**31 - 1, 2**32 - 1, 10**9])),
                "error",
            )
        else:
            kind, data, expect = (
                "lie_flac_total_zero",
                flac_with_streaminfo(self.clips["sine.flac"], total=0),
                None,
            )
        ext = ".wav" if "wav" in kind else ".mp3" if "mp3" in kind else ".flac"
        if rng.random() < 0.5:
            return Case(kind, self._file(i, "lie" + ext, data), {"max_seconds": CAP}, expect=expect)
        return Case(
            kind, data, {"max_seconds": CAP, "name": f"lie{i}{ext}"}, label=f"lie{i}{ext}", expect=expect
        )

    def _name(self, i: int, rng: random.Random) -> Case:
        clip = rng.choice([c for c in ("sine.m4a", "sine16.wav", "sine.mp3") if c in self.clips])
        name = rng.choice(NAMES)
        if len(name) > 255:  # the file system refuses the name: a clean error naming it
            folder = self.work / f"case{i}"
            folder.mkdir(exist_ok=True)
            return Case("name_too_long", str(folder / name), {"max_seconds": CAP}, expect="error")
        return Case(
            "url_like_name",
            self._file(i, name, self.clips[clip]),
            {"max_seconds": CAP},
            expect="same:" + clip,
        )

    def _playlist(self, i: int, rng: random.Random) -> Case:
        target = self._file(i, "target.wav", self.clips["sine16.wav"])
        text = rng.choice(
            [
                f"ffconcat version 1.0\nfile '{target}'\n",
                f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nfile:{target}\n#EXT-X-ENDLIST\n",
                f"file:{target}\n",
            ]
        )
        name = rng.choice(["script.m4a", "list.m3u8", "x.ffconcat", "clip.wav"])
        if rng.random() < 0.5:
            return Case(
                "playlist_text", self._file(i, name, text.encode()), {"max_seconds": CAP}, expect="error"
            )
        return Case(
            "playlist_text", text.encode(), {"max_seconds": CAP, "name": name}, label=name, expect="error"
        )

    def _array(self, rng: random.Random) -> Case:
        n = rng.choice([0, 1, 2, 100, 16000])
        dtype = rng.choice(
            [
                "float32",
                "float64",
                "float16",
                "int16",
                "int32",
                "int64",
                "uint8",
                "bool",
                "complex64",
                "object",
            ]
        )
        base = np.random.default_rng(rng.randrange(2**32)).standard_normal(n) * 0.1
        value = rng.choice([None, np.nan, np.inf, -np.inf, 1e3, 1e4, 1e20, 1e30, 1e300])
        arr: Any
        try:
            arr = (
                base.astype(dtype)
                if dtype not in ("int16", "int32", "int64", "uint8")
                else (base * 100).astype(dtype)
            )
        except (TypeError, ValueError):
            arr = base
        if value is not None and n and arr.dtype.kind == "f":
            arr = arr.astype("float64")
            arr[rng.randrange(n)] = value
        shape = rng.choice(["flat", "nc", "cn", "3d"])
        if shape == "nc" and n:
            arr = np.stack([arr, arr], axis=1)
        elif shape == "cn" and n:
            arr = np.stack([arr, arr], axis=0)
        elif shape == "3d":
            arr = arr.reshape(1, 1, -1)
        rate = rng.choice([16000, 8000, 44100, 48000, 44100.0, np.int64(22050)] + BAD_RATES)
        form = rng.choice(["kw", "tuple", "dict", "tensor"])
        if form == "tensor":
            try:
                import torch

                src: Any = torch.from_numpy(np.ascontiguousarray(arr))
            except (ImportError, TypeError):  # no torch, or a dtype torch has no tensor for
                return Case("array_kw", arr, {"sr": rate, "max_seconds": CAP}, label="<array>")
            return Case("array_tensor", src, {"sr": rate, "max_seconds": CAP}, label="<tensor>")
        if form == "tuple":
            return Case("array_tuple", (arr, rate), {"max_seconds": CAP}, label="<array>")
        if form == "dict":
            return Case(
                "array_dict", {"array": arr, "sampling_rate": rate}, {"max_seconds": CAP}, label="<dict>"
            )
        return Case("array_kw", arr, {"sr": rate, "max_seconds": CAP}, label="<array>")


# ------------------------------------------------------------------------- worker and driver


def _outcome(case: Case, reference: dict[str, np.ndarray]) -> tuple[str, str]:
    from desta.audio import load_audio
    from desta.errors import AudioError

    label = case.label if case.label is not None else str(case.source)
    try:
        out = load_audio(case.source, **case.kwargs)
    except AudioError as err:
        if label not in str(err):
            return "unnamed_error", str(err)[:300]
        if case.expect is not None and case.expect.startswith("same:"):
            return "wrong", f"expected to decode like {case.expect[5:]}: {str(err)[:200]}"
        return "clean_error", ""
    except Exception as err:  # noqa: BLE001 - any other exception is what the fuzz is looking for
        return "crash", f"{type(err).__name__}: {str(err)[:300]}"
    if not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.ndim != 1 or out.size == 0:
        return "bad_success", f"{type(out).__name__} {getattr(out, 'shape', '')} {getattr(out, 'dtype', '')}"
    if not np.isfinite(out).all():
        return "bad_success", "non-finite output"
    if case.expect == "error":
        return "wrong", "expected an error, got audio"
    if case.expect is not None and case.expect.startswith("same:"):
        ref = reference[case.expect[5:]]
        if out.shape != ref.shape or not np.array_equal(out, ref):
            return "wrong", f"decoded {out.shape}, its own file gives {ref.shape}"
    return "success", ""


def worker(work: Path, seed: int, start: int, stop: int, long_seconds: float) -> None:
    """Run cases ``start..stop-1``, one JSON line per case on stdout (the driver watches the time)."""
    import resource

    from desta.audio import decode_audio_bytes

    maker = CaseMaker(work, seed, long_seconds)
    reference = {name: decode_audio_bytes(data, name=name) for name, data in maker.clips.items()}
    print(json.dumps({"ready": True}), flush=True)
    for i in range(start, stop):
        case = maker.make(i)
        print(json.dumps({"start": i, "kind": case.kind}), flush=True)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        outcome, detail = _outcome(case, reference)
        seconds = time.perf_counter() - t0
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        shutil.rmtree(work / f"case{i}", ignore_errors=True)
        print(
            json.dumps(
                {
                    "i": i,
                    "kind": case.kind,
                    "outcome": outcome,
                    "detail": detail,
                    "seconds": seconds,
                    "peak_rss_kb": rss1,
                    "rss_growth_kb": rss1 - rss0,
                }
            ),
            flush=True,
        )


class _Tally:
    """Outcomes of the inputs run so far (shared by the driver threads, guarded by ``lock``)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.by_kind: dict[str, Counter[str]] = {}
        self.failures: list[dict[str, Any]] = []
        self.max_seconds, self.max_kind, self.peak_rss, self.max_growth = 0.0, "", 0, 0

    def add(self, i: int, kind: str, outcome: str, detail: str = "", **figures: Any) -> None:
        with self.lock:
            self.counts[outcome] += 1
            self.by_kind.setdefault(kind, Counter())[outcome] += 1
            if outcome in FAILURES:
                self.failures.append({"i": i, "kind": kind, "outcome": outcome, "detail": detail})
            if figures.get("seconds", 0.0) > self.max_seconds:
                self.max_seconds, self.max_kind = figures["seconds"], kind
            self.peak_rss = max(self.peak_rss, figures.get("peak_rss_kb", 0))
            self.max_growth = max(self.max_growth, figures.get("rss_growth_kb", 0))
            done = sum(self.counts.values())
            if done % 250 == 0:
                print(f"{done}/{self.n} inputs, {dict(self.counts)}", file=sys.stderr, flush=True)


def _drive(
    work: str, seed: int, start: int, stop: int, timeout: float, long_seconds: float, tally: _Tally
) -> None:
    """Run inputs ``start..stop-1`` in a worker; restart it after the input it hung or died on."""
    next_i = start
    while next_i < stop:
        cmd = [sys.executable, __file__, "--worker", work, "--seed", str(seed), "--start", str(next_i)]
        cmd += ["-n", str(stop), "--long-seconds", str(long_seconds)]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None
        current: dict[str, Any] | None = None
        started = False
        while True:
            ready, _, _ = select.select([proc.stdout], [], [], timeout if current is not None else 600.0)
            if not ready:  # the current input hangs: count it, kill the worker, go on after it
                proc.kill()
                proc.wait()
                if current is None:
                    raise RuntimeError("fuzz worker did not start within 600 s")
                tally.add(current["start"], current["kind"], "hang", f"> {timeout} s")
                next_i = current["start"] + 1
                break
            line = proc.stdout.readline()
            if not line:  # the worker ended: done, or died (segfault, os kill) on the input it was on
                proc.wait()
                if current is None and proc.returncode == 0 and next_i >= stop:
                    break
                if current is None:  # a bug of this script (building a case), not of the decoder
                    where = "after starting" if started else "before starting"
                    raise RuntimeError(f"fuzz worker died {where}, outside an input (exit {proc.returncode})")
                tally.add(
                    current["start"],
                    current["kind"],
                    "crash",
                    f"worker died with exit code {proc.returncode}",
                )
                next_i = current["start"] + 1
                break
            msg = json.loads(line)
            if "ready" in msg:
                started = True
            elif "start" in msg:
                current = msg
            else:
                current = None
                next_i = msg["i"] + 1
                tally.add(**msg)


def run(
    n: int, seed: int = 0, timeout: float = 60.0, long_seconds: float = 36000.0, jobs: int = 1
) -> dict[str, Any]:
    """Fuzz ``n`` inputs in ``jobs`` worker processes -> figures (counts by outcome and kind, times, RSS)."""
    tally = _Tally(n)
    t_start = time.perf_counter()
    jobs = max(1, min(jobs, n))
    bounds = [n * k // jobs for k in range(jobs + 1)]
    errors: list[BaseException] = []

    def drive(k: int, tmp: str) -> None:
        work = Path(tmp) / f"job{k}"
        work.mkdir()
        try:
            _drive(str(work), seed, bounds[k], bounds[k + 1], timeout, long_seconds, tally)
        except BaseException as err:  # noqa: BLE001 - re-raised in the main thread below
            errors.append(err)

    with tempfile.TemporaryDirectory(prefix="audio-fuzz-") as tmp:
        threads = [threading.Thread(target=drive, args=(k, tmp)) for k in range(jobs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    return {
        "n": n,
        "seed": seed,
        "jobs": jobs,
        "cap_seconds": CAP,
        "counts": {k: tally.counts.get(k, 0) for k in ("clean_error", "success", *FAILURES)},
        "by_kind": {k: dict(v) for k, v in sorted(tally.by_kind.items())},
        "max_seconds_per_input": round(tally.max_seconds, 3),
        "slowest_kind": tally.max_kind,
        "peak_rss_mb": round(tally.peak_rss / 1024, 1),
        "max_rss_growth_mb": round(tally.max_growth / 1024, 1),
        "wall_seconds": round(time.perf_counter() - t_start, 1),
        "failures": sorted(tally.failures, key=lambda f: f["i"])[:50],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=10_000, help="number of inputs (default: %(default)s)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the generated inputs (default: %(default)s)"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds before an input counts as a hang"
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="worker processes in parallel (default: %(default)s)"
    )
    parser.add_argument("--long-seconds", type=float, default=36000.0, help="length of the silent FLAC")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(Path(args.worker), args.seed, args.start, args.n, args.long_seconds)
        return
    figures = run(args.n, args.seed, args.timeout, args.long_seconds, args.jobs)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _machine import write_result

    path = write_result("audio_fuzz", figures)
    print(json.dumps({k: v for k, v in figures.items() if k != "failures"}, indent=2))
    print(f"wrote {path}")
    if any(figures["counts"][k] for k in FAILURES):
        sys.exit(1)


if __name__ == "__main__":
    main()

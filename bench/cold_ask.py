"""First five minutes: wall time of a cold `desta ask` on the bundled clip, side by side in one run with
the plain cascade a user might write instead (bench/peer_cascade.py), optionally with the code of an
earlier commit (``--before-ref``: a temporary git worktree run through ``PYTHONPATH``), and with
``desta ask --keep-alive 10m``: its first ask (which starts a background ``desta serve``) and a
follow-up ask that reuses that server. Each ask is a fresh process with one thread; the runs are
interleaved round by round so that machine noise hits all of them alike; ``desta stop`` ends every
round (so each round's first keep-alive ask starts a server) and the run. Medians of wall time with the
ratio to the cascade, and of each asking process's CPU time (steadier when other jobs share the cores),
go to bench/results/cold_ask.json.

The keep-alive servers are recorded in a temporary ``$DESTA_CACHE`` (its vendored packages and
backbones linked to the real cache), so ``desta stop`` here stops only the servers this run started.

    python bench/cold_ask.py [--repeats 3] [--before-ref REF]
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"  # before torch is imported (the machine record reports its threads)

import argparse  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import write_result  # noqa: E402

QUESTION = "What is said, and is the speaker a man or a woman?"
ROOT = Path(__file__).resolve().parents[1]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the process, its stdout); CPU time is less sensitive to other load."""
    c, t = _cpu(), time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    elapsed, cpu = time.perf_counter() - t, _cpu() - c
    if done.returncode != 0:
        raise SystemExit(f"{cmd[:6]} failed: {done.stderr[-2000:]}")
    return elapsed, cpu, done.stdout.strip()


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def _cache(tmp: Path) -> Path:
    """A desta cache of its own for the keep-alive records, sharing the real cache's downloaded assets."""
    from desta.model.vendored import cache_dir

    real, cache = cache_dir(), tmp / "cache"
    cache.mkdir()
    for entry in real.iterdir() if real.is_dir() else []:
        if entry.name != "keepalive":
            (cache / entry.name).symlink_to(entry.resolve())
    return cache


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--before-ref", default=None, help="also time `desta ask` as this git commit had it")
    ap.add_argument("--note", default=None, help="a remark stored with the result (e.g. other load on the machine)")
    args = ap.parse_args()
    import desta

    clip = str(Path(desta.__file__).parent / "assets" / "examples" / "example.wav")
    py, here, n = sys.executable, Path(__file__).resolve().parent, str(args.max_new_tokens)
    tmp = Path(tempfile.mkdtemp(prefix="cold_ask_"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DESTA_CACHE": str(_cache(tmp))}
    ask = ["-m", "desta", "ask", "--no-stream", "--max-new-tokens", n]
    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        "desta_ask_cold": ([py, *ask, clip, QUESTION], env),
        "peer_cascade": ([py, str(here / "peer_cascade.py"), clip, QUESTION, "--max-new-tokens", n], env),
    }
    before = None
    if args.before_ref:
        before = {"ref": args.before_ref, "commit": _git("rev-parse", args.before_ref)}
        worktree = tmp / "before"
        _git("worktree", "add", "--detach", str(worktree), before["commit"])
        before_env = {**env, "PYTHONPATH": str(worktree / "src")}
        commands["desta_ask_cold_before"] = ([py, *ask, clip, QUESTION], before_env)
    keep = [py, *ask, "--keep-alive", "10m", clip, QUESTION]
    commands["desta_ask_keep_alive_first"] = (keep, env)
    commands["desta_ask_keep_alive_followup"] = (keep, env)
    stop = [py, "-m", "desta", "stop"]
    times: dict[str, list[float]] = {k: [] for k in commands}
    cpu: dict[str, list[float]] = {k: [] for k in commands}
    answers: dict[str, str] = {}
    load = [os.getloadavg()[0]]
    try:
        for _ in range(args.repeats):
            for name, (cmd, cmd_env) in commands.items():
                t, c, out = _timed(cmd, cmd_env)
                times[name].append(t)
                cpu[name].append(c)
                answers[name] = out
            subprocess.run(stop, env=env, capture_output=True, timeout=120)  # untimed: the next round starts cold
            load.append(os.getloadavg()[0])
    finally:
        stopped = subprocess.run(stop, env=env, capture_output=True, text=True, timeout=120).stdout.strip()
        if before is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(tmp / "before")], cwd=ROOT, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "clip": "bundled example (5.3 s LibriVox)",
        "question": QUESTION,
        "max_new_tokens": args.max_new_tokens,
        "repeats": args.repeats,
        "commit": _git("rev-parse", "HEAD"),
        "working_tree_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "before": before,
        "seconds": times,
        "median_s": med,
        "ratio_to_cascade": {k: med[k] / med["peer_cascade"] for k in med},
        # user + system CPU of the asking process; the keep-alive server's own CPU is not in it (not our child)
        "cpu_seconds": cpu,
        "cpu_median_s": {k: statistics.median(v) for k, v in cpu.items()},
        "goals": {"desta_ask_cold": "at most 0.8x the cascade", "desta_ask_keep_alive_followup": "at most 0.3x the cascade"},
        "load_average_1min_per_round": load,
        "note": args.note,
        "desta_stop_at_end": stopped or "no keep-alive server was running",
        "answers": answers,
    }
    path = write_result("cold_ask", result)
    print({k: round(v, 2) for k, v in med.items()}, "->", path)


if __name__ == "__main__":
    main()

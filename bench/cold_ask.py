"""First five minutes: wall time of a cold `desta ask` on the bundled clip, side by side with the plain
cascade a user might write instead (bench/peer_cascade.py) and with `desta ask --server` against a
running `desta serve` (model loaded once). Each is a fresh process; runs are interleaved so that
machine noise hits all three alike; medians are reported with the ratio to the cascade.

    python bench/cold_ask.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import write_result  # noqa: E402
from _server import free_port, wait_ready  # noqa: E402

QUESTION = "What is said, and is the speaker a man or a woman?"


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    elapsed = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed: {done.stderr[-2000:]}")
    return elapsed, done.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    args = ap.parse_args()
    from desta.model.load import example_clip

    clip = example_clip()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    py = sys.executable
    here = Path(__file__).resolve().parent
    n = str(args.max_new_tokens)
    port = free_port()
    server = subprocess.Popen([py, "-m", "desta", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_ready(f"http://127.0.0.1:{port}", server, 600)
        commands = {
            "desta_ask_cold": [py, "-m", "desta", "ask", "--no-stream", "--max-new-tokens", n, clip, QUESTION],
            "peer_cascade": [py, str(here / "peer_cascade.py"), clip, QUESTION, "--max-new-tokens", n],
            "desta_ask_server": [py, "-m", "desta", "ask", "--server", f"http://127.0.0.1:{port}/v1",
                                 "--max-new-tokens", n, clip, QUESTION],  # fmt: skip
        }
        times: dict[str, list[float]] = {k: [] for k in commands}
        answers: dict[str, str] = {}
        for _ in range(args.repeats):
            for name, cmd in commands.items():
                t, out = _timed(cmd, env)
                times[name].append(t)
                answers[name] = out
    finally:
        server.terminate()
        server.wait(timeout=60)
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "clip": "bundled example (5.3 s LibriVox)",
        "question": QUESTION,
        "max_new_tokens": args.max_new_tokens,
        "repeats": args.repeats,
        "seconds": times,
        "median_s": med,
        "ratio_to_cascade": {k: med[k] / med["peer_cascade"] for k in med},
        "goal": "desta ask (cold) at most 0.5x the cascade's wall time",
        "answers": answers,
    }
    path = write_result("cold_ask", result)
    print({k: round(v, 2) for k, v in med.items()}, "->", path)


if __name__ == "__main__":
    main()

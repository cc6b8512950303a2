"""Kill a training subprocess at random moments, resume it, and compare with an uninterrupted run.

Shared by ``tests/train/test_train_kill.py`` (a few kills in CI) and ``bench/train_kill_resume.py``
(many, on demand). Linux only: it reads ``/proc`` to find the trainer's DataLoader workers.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from safetensors.torch import load_file
from train_helpers import overrides, save_backbones, write_corpus

STEPS = 12  # 3 epochs of 4 steps on the 16-row corpus
WORKER_EXIT_S = 10.0


@dataclass
class KillReport:
    kills: int = 0
    kill_steps: list[int] = field(default_factory=list)  # last logged step before each kill
    restarts: int = 0
    orphaned_workers: list[int] = field(default_factory=list)
    worker_exit_s: list[float] = field(default_factory=list)
    identical: bool = False
    differing: list[str] = field(default_factory=list)
    wall_s: float = 0.0


def write_recipe(root: Path, out: Path, num_workers: int = 1) -> Path:
    """A tiny run with the recipe's dropout, LoRA with dropout, a checkpoint every step, and one worker."""
    backbones = save_backbones(root / "backbones")
    corpus = root / "data" / "train.jsonl"
    if not corpus.exists():
        corpus = write_corpus(root / "data", n=16)
    cfg = overrides(
        *backbones, corpus, out, optim__epochs=3, run__save_every=1, run__threads=1,
        model__qformer_dropout=0.1, model__use_lora=True, model__lora_dropout=0.1,
    )  # fmt: skip
    cfg["data"]["num_workers"] = num_workers
    recipe = root / f"recipe-{out.name}.yaml"
    recipe.write_text(yaml.safe_dump(cfg))
    return recipe


def start_training(recipe: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with open(log, "ab") as f:
        return subprocess.Popen(
            [sys.executable, "-m", "desta", "train", str(recipe)], stdout=f, stderr=subprocess.STDOUT, env=env
        )


def run_to_end(recipe: Path, log: Path, timeout: float = 600) -> None:
    proc = start_training(recipe, log)
    if proc.wait(timeout=timeout) != 0:
        raise AssertionError(f"training exited with {proc.returncode}:\n{log.read_text()[-3000:]}")


def logged_step(out: Path) -> int:
    try:
        lines = (out / "log.jsonl").read_text().splitlines()
    except OSError:
        return 0
    return len(lines)


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (its DataLoader workers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its parent (now init) must reap it


def kill_at_random(recipe: Path, out: Path, log: Path, rng: random.Random, report: KillReport) -> bool:
    """Start (or resume) the run and SIGKILL it at a random moment while it trains; False if it
    finished first. Checks that its DataLoader workers exit with it."""
    # a step at or after the last logged one (logged: the resumed position), so kills spread over the run;
    # past the last step the kill lands in start-up, the final save or the export
    target = rng.randint(min(logged_step(out), STEPS - 1), STEPS - 1)
    proc = start_training(recipe, log)
    deadline = time.time() + 600
    while logged_step(out) < target and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 0.4))  # anywhere inside a step, its checkpoint write included
    workers = children(proc.pid)
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    report.kills += 1
    report.kill_steps.append(logged_step(out))
    t0 = time.time()
    while any(alive(w) for w in workers) and time.time() - t0 < WORKER_EXIT_S:
        time.sleep(0.05)
    report.orphaned_workers += [w for w in workers if alive(w)]
    if workers:
        report.worker_exit_s.append(round(time.time() - t0, 3))
    return True


def compare(a_dir: Path, b_dir: Path) -> list[str]:
    """Names of the exported tensors that differ (bitwise) between two runs."""
    import torch

    a = load_file(str(a_dir / "model" / "model.safetensors"))
    b = load_file(str(b_dir / "model" / "model.safetensors"))
    if a.keys() != b.keys():
        return sorted(set(a) ^ set(b))
    return [k for k in a if not torch.equal(a[k], b[k])]


def kill_and_resume(root: Path, kills: int, seed: int, reference: Path | None = None) -> KillReport:
    """Kill a run ``kills`` times at random moments, resume it to the end, and compare its export
    with an uninterrupted run's (``reference``: a finished run folder, else one is made)."""
    t0 = time.time()
    rng = random.Random(seed)
    if reference is None:
        reference = root / "straight"
        run_to_end(write_recipe(root, reference), root / "straight.log")
    out = root / f"killed-{seed}"
    recipe, log = write_recipe(root, out), root / f"killed-{seed}.log"
    report = KillReport()
    while report.kills < kills and kill_at_random(recipe, out, log, rng, report):
        report.restarts += 1
    run_to_end(recipe, log)
    report.differing = compare(reference, out)
    report.identical = not report.differing
    report.wall_s = round(time.time() - t0, 1)
    return report

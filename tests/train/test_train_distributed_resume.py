"""torchrun, 2 CPU processes (DDP, gloo), Q-Former dropout on: a run SIGKILLed mid-way (launcher and
ranks at once) and resumed ends bit-identical to an uninterrupted run.

Each rank's RNG state is saved and restored. This tiny CPU setup cannot tell that from restoring rank
0's state on every rank (it passes with that bug, checked by making it): both ranks start from the same
seed and their RNG streams happen to stay equal here. It covers the DDP path of save, recovery and load.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from kill_harness import compare, logged_step
from train_helpers import overrides, save_backbones, write_corpus

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX kill")]


def torchrun(recipe: Path, cwd: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "desta", "train", str(recipe)]  # fmt: skip
    with open(log, "ab") as f:
        return subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True
        )


def test_ddp_run_killed_and_resumed_is_bit_identical(tmp_path):
    backbones = save_backbones(tmp_path / "bb")
    corpus = write_corpus(tmp_path / "data", n=16)
    outs = {}
    for name in ("straight", "killed"):
        cfg = overrides(
            *backbones, corpus, tmp_path / name, optim__epochs=2, run__save_every=1, run__threads=1,
            model__qformer_dropout=0.1,
        )  # fmt: skip
        cfg["data"]["batch_size"] = 2  # per rank: 4 rows per step, 4 steps per epoch
        recipe = tmp_path / f"{name}.yaml"
        recipe.write_text(yaml.safe_dump(cfg))
        outs[name] = (recipe, tmp_path / name, tmp_path / f"{name}.log")

    recipe, out, log = outs["straight"]
    assert torchrun(recipe, tmp_path, log).wait(timeout=600) == 0, log.read_text()[-3000:]

    recipe, out, log = outs["killed"]
    proc = torchrun(recipe, tmp_path, log)
    deadline = time.time() + 600
    while logged_step(out) < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed:\n" + log.read_text()[-3000:]
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both ranks at once
    proc.wait()
    assert 3 <= logged_step(out) < 8
    assert torchrun(recipe, tmp_path, log).wait(timeout=600) == 0, log.read_text()[-3000:]
    assert "resumed from" in log.read_text()
    assert compare(tmp_path / "straight", out) == []

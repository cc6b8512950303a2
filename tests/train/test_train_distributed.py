"""torchrun: two CPU processes (gloo) with DDP train the same adapter as one process on the doubled batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from train_helpers import overrides, save_backbones, write_corpus

pytestmark = pytest.mark.slow


def _torchrun(nproc: int, recipe: Path, cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "desta",
        "train",
        str(recipe),
        *extra,
    ]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("mode", ["ddp", "fsdp"])
def test_two_processes_equal_one_process_on_the_doubled_batch(tmp_path, mode):
    backbones = save_backbones(tmp_path / "bb")
    # equal label counts per row: the mean of two per-rank mean losses equals the 4-row mean loss
    corpus = write_corpus(tmp_path / "data", n=16, response="It is a steady tone.")
    results = {}
    for nproc, per_rank in ((1, 4), (2, 2)):
        cfg = overrides(*backbones, corpus, tmp_path / f"out{nproc}", optim__max_steps=3, run__threads=1)
        cfg["data"]["batch_size"] = per_rank
        cfg["run"]["distributed"] = "fsdp" if mode == "fsdp" else "auto"
        recipe = tmp_path / f"recipe{nproc}.yaml"
        recipe.write_text(yaml.safe_dump(cfg))
        proc = _torchrun(nproc, recipe, tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "trained 3 steps" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
        results[nproc] = load_file(str(tmp_path / f"out{nproc}" / "model" / "model.safetensors"))
    one, two = results[1], results[2]
    assert one.keys() == two.keys()
    for k in one:
        if k.endswith("key.bias"):
            # its true gradient is zero (softmax ignores a constant added to every key); Adam scales
            # the float noise left there up to full-size steps, so it differs run to run by design
            continue
        torch.testing.assert_close(
            two[k], one[k], rtol=1e-4, atol=1e-5, msg=f"{k} differs between {mode} and 1 process"
        )


def test_fsdp_checkpoint_resumes(tmp_path):
    backbones = save_backbones(tmp_path / "bb")
    corpus = write_corpus(tmp_path / "data", n=16)
    cfg = overrides(
        *backbones, corpus, tmp_path / "out", optim__max_steps=2, run__threads=1, run__distributed="fsdp"
    )
    cfg["data"]["batch_size"] = 2
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(cfg))
    first = _torchrun(2, recipe, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    again = _torchrun(2, recipe, tmp_path, "optim.max_steps=4")
    assert again.returncode == 0, again.stderr[-3000:]
    log = f"stdout:\n{again.stdout[-2000:]}\nstderr:\n{again.stderr[-2000:]}"
    assert "resumed from" in again.stdout and "at step 2" in again.stdout, log
    assert "trained 4 steps" in again.stdout, log


def test_ranks_draw_their_own_dropout_masks(tmp_path):
    backbones = save_backbones(tmp_path / "bb")
    corpus = write_corpus(tmp_path / "data", n=16)
    cfg = overrides(*backbones, corpus, tmp_path / "out", optim__max_steps=1, run__threads=1)
    cfg["model"]["qformer_dropout"] = 0.1
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(cfg))
    proc = _torchrun(2, recipe, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = torch.load(tmp_path / "out" / "checkpoint" / "state.pt", weights_only=False)
    rank0, rank1 = (r["torch"] for r in state["rng"])
    assert not torch.equal(rank0, rank1)  # equal states: both ranks drew the same masks

"""Checkpoint writes survive a kill at every point of a save, recovery finishes or rolls back the
interrupted save, and damaged checkpoints are refused with the file named (never a silent restart)."""

from __future__ import annotations

import shutil
from collections import Counter

import pytest
import torch
from train_helpers import overrides, save_backbones, write_corpus

from desta.errors import CheckpointError, DeSTAError
from desta.train import checkpoint as ck_module
from desta.train.checkpoint import Position, load_checkpoint, recover, verify
from desta.train.config import load_config
from desta.train.loop import save
from desta.train.train import setup


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    """A set-up (not trained) tiny run; its checkpoints are written directly with ``save``."""
    root = tmp_path_factory.mktemp("ck")
    backbones = save_backbones(root / "bb")
    corpus = write_corpus(root / "data", n=8)
    cfg = load_config(None, overrides(*backbones, corpus, root / "run", model__qformer_dropout=0.1))
    t, _ = setup(cfg)
    yield t
    t.logger.close()


@pytest.fixture()
def out(trainer):
    """The run folder, emptied of checkpoints, with a first checkpoint at step 3."""
    for name in ("checkpoint", "checkpoint.tmp", "checkpoint.old"):
        shutil.rmtree(trainer.out / name, ignore_errors=True)
    save(trainer, Position(step=3, epoch=0, batch_in_epoch=3))
    return trainer.out


def saved_step(out) -> int:
    return int(torch.load(out / "checkpoint" / "state.pt", weights_only=True)["step"])


class Killed(Exception):
    pass


def die_at(monkeypatch, name: str, call: int = 1) -> None:
    """Make ``checkpoint.<name>`` raise on its ``call``-th use, as a kill at that moment would stop the save."""
    real = getattr(ck_module, name) if hasattr(ck_module, name) else getattr(ck_module.os, name)
    calls = {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise Killed(name)
        return real(*args, **kwargs)

    if hasattr(ck_module, name):
        monkeypatch.setattr(ck_module, name, dying)
    else:
        monkeypatch.setattr(ck_module.os, name, dying)


# (what dies, which call) -> the step recovery must come back with (3: the old checkpoint, 4: the new).
# os.replace runs twice inside save_model (weights, config), then moves checkpoint -> .old, .tmp -> checkpoint;
# _fsync_dir runs once in the manifest writer, then after each of the two moves.
KILL_POINTS = {
    "while-writing-weights": ("save_model", 1, 3),
    "before-the-manifest": ("_write_manifest", 1, 3),
    "before-moving-the-old-one-aside": ("replace", 3, 4),
    "between-the-two-renames": ("replace", 4, 4),
    "after-the-renames-before-deleting-the-old-one": ("_fsync_dir", 3, 4),
}


@pytest.mark.parametrize("point", list(KILL_POINTS), ids=list(KILL_POINTS))
def test_a_save_killed_anywhere_recovers_to_a_complete_checkpoint(trainer, out, monkeypatch, point):
    name, call, expected = KILL_POINTS[point]
    with monkeypatch.context() as m:
        die_at(m, name, call)
        with pytest.raises(Killed):
            save(trainer, Position(step=4, epoch=1, batch_in_epoch=0))
    ck = recover(out)
    assert ck == out / "checkpoint"
    assert saved_step(out) == expected
    assert not (out / "checkpoint.tmp").exists() and not (out / "checkpoint.old").exists()
    position = load_checkpoint(ck, trainer.model, trainer.optimizer)
    assert position.step == expected


def test_kill_between_renames_used_to_restart_silently_now_resumes(trainer, out, tmp_path, capsys):
    """The state a kill between the two renames leaves: no checkpoint/, the new one complete in .tmp,
    the previous one in .old. The old code saw no checkpoint and started again at step 1."""
    shutil.copytree(out / "checkpoint", tmp_path / "step3")
    save(trainer, Position(step=4, epoch=1, batch_in_epoch=0))
    (out / "checkpoint").rename(out / "checkpoint.tmp")
    shutil.move(tmp_path / "step3", out / "checkpoint.old")
    assert recover(out) == out / "checkpoint" and saved_step(out) == 4
    assert not (out / "checkpoint.old").exists()
    assert "finished the checkpoint save that was interrupted" in capsys.readouterr().out
    trainer2, position = setup(trainer.cfg, resume=True)
    assert position.step == 4 and (position.epoch, position.batch_in_epoch) == (1, 0)
    trainer2.logger.close()


def test_only_the_old_checkpoint_left_is_restored(out, capsys):
    (out / "checkpoint").rename(out / "checkpoint.old")
    assert recover(out) == out / "checkpoint" and saved_step(out) == 3
    assert "restored the previous checkpoint" in capsys.readouterr().out


def test_an_incomplete_first_save_is_removed_and_said(out, capsys):
    (out / "checkpoint").rename(out / "checkpoint.tmp")
    (out / "checkpoint.tmp" / "manifest.json").unlink()  # the mark of a complete folder never came
    assert recover(out) is None
    assert not (out / "checkpoint.tmp").exists()
    assert "interrupted while writing" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["state.pt", "model.safetensors", "config.json"])
def test_missing_file_is_named(trainer, out, name):
    (out / "checkpoint" / name).unlink()
    with pytest.raises(CheckpointError, match=rf"checkpoint/{name} is missing.*--no-resume"):
        recover(out)
    with pytest.raises(CheckpointError, match=rf"checkpoint/{name} is missing"):
        setup(trainer.cfg, resume=True)  # never a silent restart at step 0


@pytest.mark.parametrize("name", ["state.pt", "model.safetensors"])
def test_truncated_file_is_named(out, name):
    path = out / "checkpoint" / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=rf"checkpoint/{name} is truncated"):
        verify(out / "checkpoint")


@pytest.mark.parametrize("name", ["state.pt", "model.safetensors"])
def test_truncated_file_without_manifest_is_named_on_load(trainer, out, name):
    """Folders written before manifests existed: the reader names the damaged file."""
    (out / "checkpoint" / "manifest.json").unlink()
    path = out / "checkpoint" / name
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DeSTAError, match=rf"checkpoint/{name}"):
        load_checkpoint(out / "checkpoint", trainer.model, trainer.optimizer)


def test_flipped_byte_is_caught(out):
    path = out / "checkpoint" / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="model.safetensors is corrupt"):
        verify(out / "checkpoint")


def test_position_and_rng_round_trip(trainer, out):
    torch.manual_seed(7)
    save(trainer, Position(step=5, epoch=1, batch_in_epoch=1, skipped=Counter({"missing audio file": 2})))
    expected = torch.rand(3)  # what the next dropout mask would draw from
    torch.manual_seed(99)
    position = load_checkpoint(out / "checkpoint", trainer.model, trainer.optimizer)
    assert (position.step, position.epoch, position.batch_in_epoch) == (5, 1, 1)
    assert position.skipped == Counter({"missing audio file": 2})
    assert torch.equal(torch.rand(3), expected)


def test_resume_point_after_an_epochs_last_batch_is_the_next_epoch():
    assert Position(4, 0, 4).resume_point(4) == Position(4, 1, 0)
    assert Position(3, 0, 3).resume_point(4) == Position(3, 0, 3)

"""Training checkpoints that survive a kill at any moment and resume a run exactly.

``checkpoint/`` in the run folder holds the trainable weights (``config.json`` + ``model.safetensors``),
``state.pt`` (optimizer, data position, skip counts, and the RNG states of every rank, which drive
dropout), ``train_config.json``, and ``manifest.json`` (size and SHA-256 of each of those, written last).

A save writes ``checkpoint.tmp/`` completely and fsyncs it, moves ``checkpoint`` to ``checkpoint.old``,
moves ``checkpoint.tmp`` to ``checkpoint`` and deletes ``checkpoint.old``. Whatever the moment of a
kill, :func:`recover` finds one of these states and either finishes that save (a complete ``.tmp``)
or rolls back to the last complete checkpoint; a damaged checkpoint is refused, naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from desta.errors import CheckpointError
from desta.model.config import read_weights
from desta.model.desta import DeSTAModel
from desta.model.load import ADAPTER_FILE, CONFIG_FILE, save_model

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.pt"
MANIFEST_FILE = "manifest.json"
REQUIRED = (CONFIG_FILE, ADAPTER_FILE, STATE_FILE)
FORMAT = 2  # 1: the layout before manifests and per-rank RNG states (still readable)


@dataclass
class Position:
    """Where training stands: optimizer steps taken, and the next batch to load."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    skipped: Counter = field(default_factory=Counter)

    def resume_point(self, batches_in_epoch: int) -> Position:
        """This position as a resumed run should start from it: after an epoch's last batch, the next
        epoch's first (the loop would otherwise find the epoch empty)."""
        if self.batch_in_epoch >= batches_in_epoch:
            return Position(self.step, self.epoch + 1, 0, Counter(self.skipped))
        return Position(self.step, self.epoch, self.batch_in_epoch, Counter(self.skipped))


def rng_state() -> dict[str, Any]:
    """This process's global RNG states (python, numpy, torch CPU and every CUDA device), as plain
    values and tensors (so ``torch.load(weights_only=True)`` can read them)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [name, keys.tolist(), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def gather_rng(world: int) -> list[dict[str, Any]]:
    """RNG states of all ranks, in rank order (a collective when ``world`` > 1: call it on every rank)."""
    if world == 1:
        return [rng_state()]
    import torch.distributed as dist

    states: list[Any] = [None] * world
    dist.all_gather_object(states, rng_state())
    return states


def gather_adapter(model: DeSTAModel) -> dict[str, torch.Tensor]:
    """Full (unsharded) trainable weights on CPU. Under FSDP this is a collective: call it on every rank."""
    out = {}
    for k, v in model.adapter_state_dict().items():
        if hasattr(v, "full_tensor"):  # a DTensor shard from FSDP
            v = v.full_tensor()
        out[k] = v.detach().cpu().contiguous()
    return out


def gather_optimizer(model: DeSTAModel, optimizer: torch.optim.Optimizer, sharded: bool) -> dict[str, Any]:
    """Optimizer state; under FSDP gathered to full tensors (a collective, as above)."""
    if not sharded:
        return optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return get_optimizer_state_dict(
        model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
    )


def save_checkpoint(
    out: Path,
    model: DeSTAModel,
    optimizer: torch.optim.Optimizer,
    position: Position,
    train_config: dict[str, Any],
    sharded: bool = False,
    world: int = 1,
    writer: bool = True,
) -> dict[str, torch.Tensor]:
    """Write ``out/checkpoint`` atomically (see the module docstring).

    With ``world`` > 1 every rank calls this (RNG states, and under FSDP the weights, are gathered
    collectively) and only the ``writer`` writes. Returns the gathered trainable weights (empty on a
    rank that neither writes nor shards).
    """
    rngs = gather_rng(world)
    if not (writer or sharded):
        return {}
    adapter = gather_adapter(model)
    optim_state = gather_optimizer(model, optimizer, sharded)
    if not writer:
        return adapter
    tmp, final, old = _paths(out)
    if tmp.exists():  # left by a save that a crash interrupted (recover() ran at start)
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_model(model, tmp, state=adapter)
    state = {
        "format": FORMAT,
        "optimizer": optim_state,
        "step": position.step,
        "epoch": position.epoch,
        "batch_in_epoch": position.batch_in_epoch,
        "skipped": dict(position.skipped),
        "rng": rngs,
    }
    torch.save(state, tmp / STATE_FILE)
    (tmp / "train_config.json").write_text(json.dumps(train_config, indent=2, default=str))
    _write_manifest(tmp, position.step)
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
        _fsync_dir(out)
    os.replace(tmp, final)
    _fsync_dir(out)
    shutil.rmtree(old, ignore_errors=True)
    return adapter


def recover(out: Path) -> Path | None:
    """Bring ``out`` back to one complete checkpoint after a kill; returns its folder, or None if the
    run has none yet. Call it on one process, before any rank reads the checkpoint.

    Raises :class:`CheckpointError` naming the file when the checkpoint is damaged (a missing or
    truncated file): resuming from it is impossible and starting over would silently lose the run.
    """
    tmp, final, old = _paths(out)
    if tmp.exists():
        if _is_complete(tmp):  # killed between writing it and its renames: finish that save
            if final.exists():
                if old.exists():
                    shutil.rmtree(old)
                os.replace(final, old)
            os.replace(tmp, final)
            _fsync_dir(out)
            print(f"desta: finished the checkpoint save that was interrupted ({tmp.name} -> {final.name})")
        else:
            shutil.rmtree(tmp)
            print(f"desta: removed {tmp}, a checkpoint save interrupted while writing")
    if old.exists():
        if final.exists():
            shutil.rmtree(old)
        else:  # the new checkpoint is gone: the previous one is the latest complete state
            verify(old)
            os.replace(old, final)
            _fsync_dir(out)
            print(f"desta: restored the previous checkpoint from {old.name}")
    if not final.exists():
        return None
    verify(final)
    return final


def verify(ck: Path) -> None:
    """Raise :class:`CheckpointError` naming the first missing, truncated or altered file of ``ck``."""
    fix = f"delete {ck} (or pass --no-resume) to start over"
    if not ck.is_dir():
        raise CheckpointError(f"{ck} is not a folder; {fix}")
    for name in REQUIRED:
        if not (ck / name).is_file():
            raise CheckpointError(f"{ck / name} is missing: the checkpoint is incomplete; {fix}")
    manifest = ck / MANIFEST_FILE
    if not manifest.exists():
        return  # format 1 wrote no manifest; load_checkpoint still reports unreadable files by name
    try:
        files = json.loads(manifest.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{manifest}: unreadable manifest ({err}); {fix}") from None
    for name, meta in files.items():
        path = ck / name
        if not path.is_file():
            raise CheckpointError(f"{path} is missing: the checkpoint is incomplete; {fix}")
        size = path.stat().st_size
        if size != meta["bytes"]:
            raise CheckpointError(
                f"{path} is truncated or altered ({size} bytes, expected {meta['bytes']}); {fix}"
            )
        if _sha256(path) != meta["sha256"]:
            raise CheckpointError(f"{path} is corrupt (its SHA-256 differs from the manifest's); {fix}")


def load_checkpoint(
    ck: Path,
    model: DeSTAModel,
    optimizer: torch.optim.Optimizer,
    sharded: bool = False,
    rank: int = 0,
    world: int = 1,
) -> Position:
    """Restore weights, optimizer and this rank's RNG from ``ck``; returns the position to resume at."""
    from desta.model.convert import load_adapter_strict

    verify(ck)
    adapter = read_weights(ck / ADAPTER_FILE)
    path = ck / STATE_FILE
    try:
        # format 1 pickled numpy RNG arrays, which weights_only refuses; it is this run's own file
        state = torch.load(path, map_location="cpu", weights_only=(_format(ck) >= 2))
        position = Position(
            int(state["step"]),
            int(state["epoch"]),
            int(state["batch_in_epoch"]),
            Counter(state.get("skipped", {})),
        )
    except Exception as err:  # torch.load raises many kinds on a damaged file; all mean the same here
        raise CheckpointError(
            f"{path}: cannot read the training state ({err.__class__.__name__}: {err})"
        ) from None
    try:
        if sharded:
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                set_model_state_dict,
                set_optimizer_state_dict,
            )

            opts = StateDictOptions(full_state_dict=True, strict=False)
            set_model_state_dict(model, adapter, options=opts)
            set_optimizer_state_dict(model, optimizer, state["optimizer"], options=opts)
        else:
            load_adapter_strict(model, adapter)
            optimizer.load_state_dict(state["optimizer"])
    except (ValueError, KeyError, RuntimeError) as err:
        raise CheckpointError(f"{ck}: does not fit this model and recipe ({err})") from None
    rngs = state["rng"] if isinstance(state["rng"], list) else [state["rng"]]
    if len(rngs) != world:
        print(f"desta: {ck} was written by {len(rngs)} processes, not {world}: the resumed run is not exact")
    set_rng_state(rngs[rank % len(rngs)])
    return position


def _paths(out: Path) -> tuple[Path, Path, Path]:
    return out / (CHECKPOINT_DIR + ".tmp"), out / CHECKPOINT_DIR, out / (CHECKPOINT_DIR + ".old")


def _format(ck: Path) -> int:
    return FORMAT if (ck / MANIFEST_FILE).exists() else 1


def _is_complete(ck: Path) -> bool:
    if not (ck / MANIFEST_FILE).exists():
        return False
    try:
        verify(ck)
    except CheckpointError:
        return False
    return True


def _write_manifest(ck: Path, step: int) -> None:
    """Fsync every file, then write the manifest (the mark of a complete folder) and fsync it too."""
    files = {}
    for path in sorted(p for p in ck.iterdir() if p.is_file()):
        _fsync_file(path)
        files[path.name] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
    manifest = ck / MANIFEST_FILE
    manifest.write_text(json.dumps({"format": FORMAT, "step": step, "files": files}, indent=2))
    _fsync_file(manifest)
    _fsync_dir(ck)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":  # directories cannot be opened for fsync elsewhere; renames are still atomic
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

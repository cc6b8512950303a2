"""One epoch's DataLoader, made so that a resumed run is exact and a killed trainer leaves nothing behind.

* Its random generator is private and derived from (seed, epoch): building a DataLoader iterator draws
  a base seed, and drawn from the global RNG (torch's default) that draw shifted every dropout mask
  after a resume, because a resumed run builds its loader at a different point of the RNG stream.
* Its worker processes die with the trainer: Linux delivers SIGKILL to them when the trainer dies
  (``PR_SET_PDEATHSIG``), and a watchdog thread in each worker exits when its parent changes, which
  covers other systems and the moment before ``prctl`` took effect. Without this, a SIGKILLed trainer
  left a worker blocked on a full pipe, holding its memory, for minutes.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import torch

from desta.train.data import TrainDataset, collate

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PARENT_POLL_S = 1.0


def loader_seed(seed: int, epoch: int) -> int:
    """The loader generator's seed for one epoch (a pure function, so a checkpoint needs no state for it)."""
    return (seed * 1_000_003 + epoch) % 2**63


def epoch_batches(
    dataset: TrainDataset, batches: list[list[int]], start: int, num_workers: int, seed: int, epoch: int
) -> Iterator[dict[str, Any]]:
    """Collated batches ``batches[start:]`` (each a list of row indices), loaded in ``num_workers``
    processes (0: in this one)."""
    todo = batches[start:]
    if not todo:
        return iter(())
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=todo,
        num_workers=num_workers,
        collate_fn=functools.partial(collate, processor=dataset.processor),
        generator=torch.Generator().manual_seed(loader_seed(seed, epoch)),
        worker_init_fn=functools.partial(die_with_parent, os.getpid()) if num_workers else None,
        persistent_workers=False,
    )
    return iter(loader)


def die_with_parent(parent_pid: int, worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: make this worker exit as soon as the trainer ``parent_pid`` dies."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl (an unusual libc): the watchdog below still applies
    if os.getppid() != parent_pid:  # the trainer died before prctl took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="desta-parent-watch").start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_S)
    os._exit(1)

"""The training loop: epochs of micro-batches; every ``grad_accum`` of them an optimizer step, then
logging, validation and checkpoints. :class:`Trainer` holds what ``desta.train.train.setup`` built."""

from __future__ import annotations

import math
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from desta.errors import DeSTAError
from desta.model.desta import DeSTAModel
from desta.train.checkpoint import Position, save_checkpoint
from desta.train.config import TrainConfig
from desta.train.data import TrainDataset, batch_order
from desta.train.forward import EncoderCache, audio_features, distill_loss
from desta.train.loader import epoch_batches
from desta.train.logs import Logger, validate

MODEL_INPUTS = ("input_ids", "attention_mask", "audio_mask", "labels", "position_ids")


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


@dataclass
class Trainer:
    """Everything one run trains with. ``wrapped`` is the model under DDP (else the model itself)."""

    cfg: TrainConfig
    out: Path
    device: torch.device
    dist: DistInfo
    model: DeSTAModel
    wrapped: torch.nn.Module
    trainable: list[torch.nn.Parameter]
    sharded: bool  # FSDP: gathering weights and optimizer state is a collective
    optimizer: torch.optim.Optimizer
    autocast: AbstractContextManager
    dataset: TrainDataset
    val_rows: list[dict[str, Any]]
    total_steps: int
    logger: Logger
    cache: EncoderCache | None = None
    history: list[float] = field(default_factory=list)  # loss of every step this process ran


def cosine_with_warmup(step: int, warmup: int, total: int) -> float:
    """LR multiplier: linear warmup, then cosine to zero (transformers' get_cosine_schedule_with_warmup)."""
    if step < warmup:
        return step / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))


@dataclass
class _Meter:
    """Tokens per second between two logged steps."""

    tokens: int = 0
    since: float = field(default_factory=time.time)

    def rate(self, world: int) -> float:
        now = time.time()
        value = self.tokens * world / max(1e-9, now - self.since)
        self.tokens, self.since = 0, now
        return value


def run_epochs(t: Trainer, pos: Position) -> None:
    """Train from ``pos`` until ``total_steps``; ``pos`` advances in place, losses go to ``t.history``."""
    cfg = t.cfg
    pbar = None
    if t.dist.main and cfg.run.progress:
        from tqdm import tqdm

        pbar = tqdm(total=t.total_steps, initial=pos.step, desc="train", unit="step", dynamic_ncols=True)
    meter = _Meter()
    try:
        while pos.step < t.total_steps:
            batches = rank_batches(t.dataset, t.cfg, t.dist, pos.epoch)
            started_at, step_at_start = pos.batch_in_epoch, pos.step
            usable = run_epoch(t, pos, batches, meter, pbar)
            if pos.batch_in_epoch < len(batches):  # stopped inside the epoch at total_steps
                break
            if started_at == 0 and pos.step == step_at_start and pos.step < t.total_steps:
                reasons = ", ".join(f"{n} {r}" for r, n in pos.skipped.most_common()) or "none"
                if usable:
                    raise DeSTAError(
                        f"{usable} usable batches per epoch in {cfg.data.train} are fewer than "
                        f"optim.grad_accum={cfg.optim.grad_accum} (skipped: {reasons})"
                    )
                raise DeSTAError(f"no usable training rows in {cfg.data.train} (skipped: {reasons})")
            pos.epoch, pos.batch_in_epoch = pos.epoch + 1, 0
    finally:
        if pbar:
            pbar.close()


def rank_batches(dataset: TrainDataset, cfg: TrainConfig, dist: DistInfo, epoch: int) -> list[list[int]]:
    """This rank's slice of every global batch of ``epoch`` (lists of row indices)."""
    size = cfg.data.batch_size
    batches = batch_order(dataset, size * dist.world, cfg.run.seed, epoch, cfg.data.length_bucketing)
    return [b[dist.rank * size : (dist.rank + 1) * size] for b in batches]


def run_epoch(t: Trainer, pos: Position, batches: list[list[int]], meter: _Meter, pbar: Any) -> int:
    """One epoch from ``pos.batch_in_epoch``; returns how many batches had a usable row."""
    cfg = t.cfg
    usable = micro = 0
    loader = epoch_batches(
        t.dataset, batches, pos.batch_in_epoch, cfg.data.num_workers, cfg.run.seed, pos.epoch
    )
    for batch in loader:
        pos.batch_in_epoch += 1
        pos.skipped.update(batch["skipped"])
        if not batch["items"]:
            continue
        usable += 1
        loss = forward_backward(t, batch, meter)
        micro += 1
        if micro % cfg.optim.grad_accum:
            continue
        lr, grad_norm = optimizer_step(t, pos.step)
        pos.step += 1
        t.history.append(float(loss.detach()))
        if pbar:
            pbar.update(1)
            pbar.set_postfix(loss=f"{t.history[-1]:.3f}", lr=f"{lr:.2e}")
        after_step(t, pos.resume_point(len(batches)), lr, grad_norm, meter)
        if pos.step >= t.total_steps:
            break
    if micro % cfg.optim.grad_accum:
        # the epoch's last, incomplete accumulation is dropped (total_steps does not count it either):
        # its gradients must not leak into the next epoch's first step
        t.optimizer.zero_grad(set_to_none=True)
    return usable


def forward_backward(t: Trainer, batch: dict[str, Any], meter: _Meter) -> torch.Tensor:
    """Loss of one micro-batch (cross entropy, mixed with distillation when on), back-propagated
    scaled by 1 / grad_accum; returns the unscaled loss."""
    cfg = t.cfg
    inputs = {k: batch[k].to(t.device) for k in MODEL_INPUTS}
    with t.autocast:
        feats = audio_features(t.model, batch, t.cache)
        loss = t.wrapped(**inputs, audio_features=feats)["loss"]
        if cfg.distill.alpha > 0:
            unlabelled = {k: v for k, v in inputs.items() if k != "labels"}
            hidden = t.model(**unlabelled, audio_features=feats)["hidden"]
            kl = distill_loss(t.model, {**batch, **inputs}, hidden, cfg.distill.temperature)
            loss = (1 - cfg.distill.alpha) * loss + cfg.distill.alpha * kl
    (loss / cfg.optim.grad_accum).backward()
    meter.tokens += int(inputs["attention_mask"].sum())
    return loss


def optimizer_step(t: Trainer, step: int) -> tuple[float, torch.Tensor]:
    """Scheduled LR, clipped gradients, one AdamW step; returns (lr, grad norm before clipping)."""
    optim = t.cfg.optim
    lr = optim.lr * cosine_with_warmup(step, optim.warmup_steps, t.total_steps)
    for group in t.optimizer.param_groups:
        group["lr"] = lr
    grad_norm = torch.nn.utils.clip_grad_norm_(t.trainable, optim.grad_clip)
    t.optimizer.step()
    t.optimizer.zero_grad(set_to_none=True)
    return lr, grad_norm  # a tensor: reading it waits for the device, so only when logged


def after_step(t: Trainer, pos: Position, lr: float, grad_norm: torch.Tensor, meter: _Meter) -> None:
    """Log, validate and checkpoint as the recipe asks, after step ``pos.step``."""
    run, step = t.cfg.run, pos.step
    if step % run.log_every == 0 or step == t.total_steps:
        t.logger.scalars(
            step,
            {
                "train/loss": t.history[-1],
                "train/lr": lr,
                "train/grad_norm": float(grad_norm),
                "train/tokens_per_s": meter.rate(t.dist.world),
                "train/skipped_rows": float(sum(pos.skipped.values())),
            },
        )
    if t.val_rows and run.validate_every and step % run.validate_every == 0 and t.dist.main:
        t.logger.samples(step, validate(t.model, t.val_rows, t.cfg.data.data_root))
    if step % run.save_every == 0:
        save(t, pos)


def save(t: Trainer, pos: Position) -> dict[str, torch.Tensor]:
    """Checkpoint at ``pos`` (every rank calls this); returns the gathered trainable weights."""
    return save_checkpoint(
        t.out, t.model, t.optimizer, pos, t.cfg.to_dict(), t.sharded, t.dist.world, t.dist.main
    )

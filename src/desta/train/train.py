"""The DeSTA2.5 adapter recipe, top to bottom: :func:`setup` builds and freezes the model, reads the
data and resumes from the last checkpoint; :func:`desta.train.loop.run_epochs` trains; :func:`finish`
writes the final checkpoint, the export and the summary.

Only the connector (and LoRA weights, if enabled) train; Whisper and the LLM stay frozen. Under
``torchrun`` the model is wrapped in DDP (or the LLM is sharded with FSDP); on one process nothing
distributed happens. Checkpoints hold the trainable weights plus optimizer, RNG states and data
position, so a resumed run reproduces the uninterrupted one bit for bit, dropout included.
"""

from __future__ import annotations

import json
import os
import random
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from desta.errors import ConfigError, DeSTAError
from desta.model.desta import DeSTAModel
from desta.model.hub import save_pretrained
from desta.model.load import build_model
from desta.model.precision import resolve_dtype
from desta.train.checkpoint import CHECKPOINT_DIR, Position, load_checkpoint, recover
from desta.train.config import TrainConfig
from desta.train.data import TrainDataset, read_rows, resolve_audio
from desta.train.forward import EncoderCache, distill_loss  # noqa: F401  (distill_loss: public here)
from desta.train.logs import Logger, validate
from desta.train.loop import DistInfo, Trainer, cosine_with_warmup, rank_batches, run_epochs, save

__all__ = ["train", "setup", "finish", "cosine_with_warmup", "distill_loss", "CHECKPOINT_DIR"]


def train(cfg: TrainConfig, resume: bool = True) -> dict[str, Any]:
    """Run (or resume) training; returns a summary with the loss history and the export folder."""
    trainer, position = setup(cfg, resume)
    run_epochs(trainer, position)
    return finish(trainer, position)


def setup(cfg: TrainConfig, resume: bool = True) -> tuple[Trainer, Position]:
    """Everything before the first step: device, processes, seeded model, data, optimizer, resume."""
    if not cfg.data.train:
        raise ConfigError("data.train is empty: point it at a JSONL made by `desta data generate`")
    set_threads(cfg)
    device = pick_device(cfg)
    dist = setup_distributed(cfg, device)
    # the data is read and checked before the model loads: a wrong path fails in a second, not after it
    rows = read_rows(cfg.data.train, cfg.data.max_rows)
    check_rows(rows, cfg, dist.world, main=dist.main)
    val_rows = read_rows(cfg.data.validation)[: cfg.run.validation_samples] if cfg.data.validation else []
    out = Path(cfg.run.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.run.seed)
    random.seed(cfg.run.seed)
    np.random.seed(cfg.run.seed)

    use_bf16 = resolve_dtype(cfg.run.precision, device) == torch.bfloat16
    model = build_for_training(cfg, device, use_bf16)
    wrapped, trainable, sharded = wrap_distributed(model, cfg, dist, device)
    if dist.world > 1:
        # the model is built from one seed on every rank; from here each rank draws its own dropout
        # masks (one shared seed gave every rank the same masks on different rows)
        torch.manual_seed(cfg.run.seed + 1_000_003 * dist.rank)
    dataset = TrainDataset(rows, model.processor, cfg.data.data_root, cfg.data.max_seq_length)
    if sharded and val_rows:  # generation on rank 0 alone cannot unshard FSDP layers
        if dist.main:
            print("desta: validation generation is off under FSDP; evaluate the exported model instead")
        val_rows = []
    steps = total_steps(cfg, dataset, dist)
    optimizer = torch.optim.AdamW(
        trainable,
        lr=cfg.optim.lr,
        betas=cfg.optim.betas,
        weight_decay=cfg.optim.weight_decay,
        eps=cfg.optim.eps,
        fused=device.type == "cuda",
    )
    position = resume_position(out, model, optimizer, sharded, dist) if resume else None
    trainer = Trainer(
        cfg=cfg,
        out=out,
        device=device,
        dist=dist,
        model=model,
        wrapped=wrapped,
        trainable=trainable,
        sharded=sharded,
        optimizer=optimizer,
        autocast=autocast_for(device, use_bf16),
        dataset=dataset,
        val_rows=val_rows,
        total_steps=steps,
        logger=Logger(cfg, out, dist.main, starts_at=position.step if position else 0),
        cache=EncoderCache() if cfg.data.cache_encoder_outputs else None,
    )
    if dist.main:
        (out / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=2, default=str))
        n_trainable = sum(p.numel() for p in trainable)
        print(
            f"desta: {n_trainable / 1e6:.2f}M trainable parameters, {len(rows)} rows, {steps} steps on {device}"
        )
    return trainer, position or Position()


def set_threads(cfg: TrainConfig) -> None:
    """``run.threads`` torch threads, unless ``OMP_NUM_THREADS`` is set: the user's variable wins (and
    the log says so when the two differ)."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env:
        if cfg.run.threads and env != str(cfg.run.threads):
            print(f"desta: OMP_NUM_THREADS={env} is set: it wins over the recipe's run.threads={cfg.run.threads}")
        return  # torch read it at start
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)


def batch_too_big(rows: int, cfg: TrainConfig, world: int) -> ConfigError:
    """"N rows are fewer than one global batch" with the key to change."""
    ga = cfg.optim.grad_accum
    global_batch = cfg.data.batch_size * world * ga
    parts = [f"data.batch_size={cfg.data.batch_size}"]
    if world > 1:
        parts.append(f"{world} processes")
    if ga > 1:
        parts.append(f"optim.grad_accum={ga}")
    fits = rows // (world * ga)
    fix = (
        f"set data.batch_size={fits} (or lower) or give more rows"
        if fits
        else "give more rows" + (" or lower optim.grad_accum" if ga > 1 else "")
    )
    return ConfigError(
        f"{rows} rows are fewer than one global batch of {global_batch} ({' x '.join(parts)}): {fix}, "
        f"e.g. `desta train RECIPE data.batch_size={max(fits, 1)}`"
    )


def _missing_audio(row: dict[str, Any], data_root: str) -> str | None:
    """The first audio path of ``row`` that does not exist (as training resolves it), or None."""
    for m in row["messages"]:
        for a in (m.get("audios") or []) if isinstance(m, dict) else []:
            path = str(a.get("audio", "")) if isinstance(a, dict) else ""
            if not resolve_audio(path, data_root).exists():
                return path
    return None


def check_rows(rows: list[dict[str, Any]], cfg: TrainConfig, world: int = 1, *, main: bool = True) -> None:
    """Before the model loads: enough rows for one global batch, and their audio files exist (a row
    whose audio is missing is skipped in training; when too few are left, this stops the run naming
    the first missing file and ``data.data_root``)."""
    missing = [p for p in (_missing_audio(row, cfg.data.data_root) for row in rows) if p is not None]
    usable = len(rows) - len(missing)
    global_batch = cfg.data.batch_size * world * cfg.optim.grad_accum
    if missing and usable < global_batch:
        root = f"data.data_root={cfg.data.data_root!r}" if cfg.data.data_root else "data.data_root (unset)"
        raise ConfigError(
            f"{cfg.data.train}: {len(missing)} of {len(rows)} rows name audio that does not exist "
            f"(first: {missing[0]!r}, relative to {root}); {usable} usable rows are fewer than one global "
            f"batch of {global_batch}: point data.data_root at the folder the audio paths are relative to"
        )
    if len(rows) < global_batch:
        raise batch_too_big(len(rows), cfg, world)
    if missing and main:
        print(
            f"desta: {len(missing)} of {len(rows)} training rows name audio that does not exist "
            f"(first: {missing[0]!r}); they are skipped"
        )


def pick_device(cfg: TrainConfig) -> torch.device:
    if cfg.run.device != "auto":
        return torch.device(cfg.run.device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def setup_distributed(cfg: TrainConfig, device: torch.device) -> DistInfo:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1 or cfg.run.distributed == "none":
        return DistInfo()
    import torch.distributed as dist

    if device.type == "cuda":  # collectives of Python objects (RNG states) run on the current device
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def build_for_training(cfg: TrainConfig, device: torch.device, use_bf16: bool) -> DeSTAModel:
    """The recipe's model with a fresh connector, in training mode, without the unused Whisper decoder."""
    model_cfg = cfg.model.replace(max_transcript_tokens=cfg.data.max_transcript_tokens, untrained=True)
    llm_dtype = torch.bfloat16 if use_bf16 else torch.float32
    model = build_model(model_cfg, device=device, llm_dtype=llm_dtype, seed=cfg.run.seed)
    if cfg.run.init_from:
        init_from_adapter(model, cfg.run.init_from)
    del model.perception.whisper.model.decoder  # official: the decoder is not needed in training
    model.perception.whisper.proj_out = None
    return model.train()


#: config fields that decide which weights an adapter holds and what they mean
ARCHITECTURE_FIELDS = (
    "encoder_model_id", "llm_model_id", "prompt_size", "qformer_num_hidden_layers", "qformer_intermediate_size",
    "target_layer_ids", "use_lora", "lora_r", "lora_target_modules",
)  # fmt: skip


def init_from_adapter(model: DeSTAModel, name: str) -> None:
    """Copy a trained model's adapter into ``model`` (``run.init_from``): same architecture or an error."""
    from desta.model.convert import load_adapter_strict
    from desta.model.load import read_adapter

    try:
        source, state = read_adapter(name)
    except DeSTAError as err:
        raise ConfigError(f"run.init_from={name!r}: {err}") from None
    here = model.config

    def value(cfg, f: str):  # taps: the resolved layer list (None means the encoder's default)
        if f == "target_layer_ids":
            return cfg.replace(encoder_layers=cfg.encoder_layers or here.encoder_layers).taps
        return getattr(cfg, f)

    differ = [f for f in ARCHITECTURE_FIELDS if value(source, f) != value(here, f)]
    if differ:
        pairs = ", ".join(f"{f}: {value(source, f)!r} there, {value(here, f)!r} here" for f in differ)
        raise ConfigError(f"run.init_from={name!r} has another architecture than the recipe's model ({pairs})")
    load_adapter_strict(model, state)


def wrap_distributed(
    model: DeSTAModel, cfg: TrainConfig, dist: DistInfo, device: torch.device
) -> tuple[torch.nn.Module, list[torch.nn.Parameter], bool]:
    """(module to call, trainable parameters, sharded?) for one process, DDP or FSDP."""
    if dist.world == 1:
        return model, [p for p in model.parameters() if p.requires_grad], False
    if cfg.run.distributed == "fsdp":
        from torch.distributed.fsdp import fully_shard

        # shard the LLM's decoder layers (nearly all of its weights) and the connector, whose
        # gradients FSDP then averages across ranks; embeddings and the head stay replicated,
        # because the model calls them directly (and they may be tied)
        for layer in model.llm_model.model.layers:
            fully_shard(layer)
        fully_shard(model.perception.connector)
        return model, [p for p in model.parameters() if p.requires_grad], True
    trainable = [p for p in model.parameters() if p.requires_grad]
    wrapped = torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=False
    )
    return wrapped, trainable, False


def resume_position(
    out: Path, model: DeSTAModel, optimizer: torch.optim.Optimizer, sharded: bool, dist: DistInfo
) -> Position | None:
    """Load the run's checkpoint, if any, after repairing a save that a kill interrupted (on rank 0,
    before the others read it); None when there is nothing to resume."""
    ck = recover(out) if dist.main else None
    if dist.world > 1:
        import torch.distributed

        torch.distributed.barrier()
        ck = out / CHECKPOINT_DIR if (out / CHECKPOINT_DIR).is_dir() else None
    if ck is None:
        return None
    position = load_checkpoint(ck, model, optimizer, sharded, dist.rank, dist.world)
    if dist.main:
        print(f"desta: resumed from {ck} at step {position.step}")
    return position


def autocast_for(device: torch.device, use_bf16: bool) -> AbstractContextManager:
    if use_bf16 and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()  # on CPU the LLM itself is held in bf16 when asked


def total_steps(cfg: TrainConfig, dataset: TrainDataset, dist: DistInfo) -> int:
    """optim.max_steps when set, else the optimizer steps of optim.epochs full epochs."""
    optim = cfg.optim
    per_epoch = len(rank_batches(dataset, cfg, dist, 0)) // optim.grad_accum
    if per_epoch == 0:
        raise batch_too_big(len(dataset), cfg, dist.world)
    return optim.max_steps if optim.max_steps > 0 else per_epoch * optim.epochs


def finish(t: Trainer, pos: Position) -> dict[str, Any]:
    """Final checkpoint, export to ``out/model``, validation answers and ``summary.json``."""
    summary: dict[str, Any] = {
        "steps": pos.step,
        "losses": t.history,
        "skipped": dict(pos.skipped),
        "trainable_parameters": sum(p.numel() for p in t.trainable),
    }
    adapter = save(t, pos)
    if t.dist.main:
        model = t.model
        # a trained model is named after its run folder (runs/mine -> "mine"), not after its recipe's base
        model.config = model.config.replace(
            name=t.out.resolve().name,
            untrained=False,
            max_transcript_tokens=None,
            info={**model.config.info, "trained_steps": pos.step, "recipe_name": model.config.name},
        )
        summary["export"] = str(save_pretrained(model, t.out / "model", state=adapter))
        if t.val_rows:
            summary["validation"] = validate(model, t.val_rows, t.cfg.data.data_root)
            t.logger.samples(pos.step, summary["validation"])
        if pos.skipped:
            print("desta: skipped rows: " + ", ".join(f"{n} {r}" for r, n in pos.skipped.most_common()))
        (t.out / "summary.json").write_text(
            json.dumps({k: v for k, v in summary.items() if k != "losses"}, indent=2)
        )
    t.logger.close()
    return summary

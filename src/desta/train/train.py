"""The DeSTA2.5 adapter recipe as one readable loop: build, freeze, data, optimizer, schedule, loop, save.

Only the connector (and LoRA weights, if enabled) train; Whisper and the LLM stay frozen. Under
``torchrun`` the model is wrapped in DDP (or the LLM is sharded with FSDP); on one process nothing
distributed happens. Checkpoints hold only trainable weights plus optimizer, scheduler, RNG and data
position, so a resumed run reproduces the uninterrupted one.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from desta.errors import ConfigError, DeSTAError
from desta.model.desta import DeSTAModel
from desta.model.load import build_model, save_model
from desta.model.precision import resolve_dtype
from desta.train.config import TrainConfig
from desta.train.data import BatchLoader, TrainDataset, batch_order, read_rows, resolve_audio

CHECKPOINT_DIR = "checkpoint"


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(cfg: TrainConfig, device: torch.device) -> DistInfo:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1 or cfg.run.distributed == "none":
        return DistInfo()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def pick_device(cfg: TrainConfig) -> torch.device:
    if cfg.run.device != "auto":
        return torch.device(cfg.run.device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def cosine_with_warmup(step: int, warmup: int, total: int) -> float:
    """LR multiplier: linear warmup, then cosine to zero (transformers' get_cosine_schedule_with_warmup)."""
    if step < warmup:
        return step / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))


class EncoderCache:
    """Frozen Whisper taps per audio window, kept in memory (for small data and several epochs)."""

    def __init__(self) -> None:
        self.store: dict[str, list[torch.Tensor]] = {}

    def taps(self, model: DeSTAModel, keys: list[str], windows: list[np.ndarray]) -> list[torch.Tensor]:
        """Returns L x (W, F, D) for these windows (all the same F when padded to 30 s)."""
        missing = [i for i, k in enumerate(keys) if k not in self.store]
        if missing:
            per_window = encode_windows(model, [windows[i] for i in missing])
            for j, i in enumerate(missing):
                self.store[keys[i]] = [t[j : j + 1] for t in per_window]
        return [torch.cat([self.store[k][t] for k in keys]) for t in range(len(model.config.taps))]


@torch.no_grad()
def encode_windows(model: DeSTAModel, windows: list[np.ndarray]) -> list[torch.Tensor]:
    """Whisper taps for windows: L x (W, F, D). Unpadded windows must share a length to batch."""
    perception = model.perception
    if model.config.pad_audio_to_30s:
        return perception.encode(perception.features(windows)).taps
    outs = [perception.encode(perception.features([w])).taps for w in windows]
    lengths = {o[0].shape[1] for o in outs}
    if len(lengths) == 1:
        return [torch.cat([o[t] for o in outs]) for t in range(len(outs[0]))]
    raise ValueError("unpadded windows of different lengths cannot share a batch; use the per-window path")


def audio_features(
    model: DeSTAModel, batch: dict[str, Any], cache: EncoderCache | None
) -> torch.Tensor | None:
    """Connector output (W, Q, H) for all windows of the batch, in slot order."""
    windows = [w for it in batch["items"] for w in it.windows]
    keys = [k for it in batch["items"] for k in it.keys]
    if not windows:
        return None
    connector = model.connector
    if model.config.pad_audio_to_30s:
        taps = cache.taps(model, keys, windows) if cache else encode_windows(model, windows)
        return connector([t.to(connector.layer_weights.dtype) for t in taps])
    feats = []  # real-length windows differ in frame count: run the connector per window
    for k, w in zip(keys, windows):
        taps = cache.taps(model, [k], [w]) if cache else encode_windows(model, [w])
        feats.append(connector([t.to(connector.layer_weights.dtype) for t in taps]))
    return torch.cat(feats)


def distill_loss(
    model: DeSTAModel, batch: dict[str, Any], hidden: torch.Tensor, temperature: float
) -> torch.Tensor:
    """KL(frozen LLM on the text prompt || model on the audio prompt) over response tokens.

    The text prompt puts each row's ``seed_description`` in place of its audio, which is what the
    backbone saw when it wrote the response itself.
    """
    proc = model.processor
    lm_head = model.llm_model.get_output_embeddings()
    losses = []
    for r, item in enumerate(batch["items"]):
        seed = item.row.get("seed_description") or ""
        if not seed:
            continue
        msgs = []
        for m in item.row["messages"]:
            content = proc.normalize([m])[0]["content"].replace(
                proc.audio_locator, proc.start_audio + seed + proc.end_audio
            )
            msgs.append({"role": m["role"], "content": content})
        teacher = proc.encode(msgs, [], item.row["response"], None)
        n_target = sum(1 for x in teacher.labels if x != -100)
        with torch.no_grad():
            ids = torch.tensor([teacher.input_ids], device=hidden.device)
            t_logits = model.llm_model(input_ids=ids).logits[0, -n_target - 1 : -1]
        labels = batch["labels"][r]
        pos = (labels[1:] != -100).nonzero().squeeze(-1)
        n = min(len(pos), n_target)  # student targets may be truncated by max_seq_length
        if n == 0:
            continue
        s_logits = lm_head(hidden[r, pos[:n]])
        t = temperature
        losses.append(
            torch.nn.functional.kl_div(
                torch.log_softmax(s_logits.float() / t, -1),
                torch.log_softmax(t_logits[:n].float() / t, -1),
                log_target=True,
                reduction="batchmean",
            )
            * t
            * t
        )
    if not losses:
        return hidden.new_zeros(())
    return torch.stack(losses).mean()


def _rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def gather_adapter(model: DeSTAModel) -> dict[str, torch.Tensor]:
    """Full (unsharded) trainable weights on CPU. Under FSDP this is a collective: call it on every rank."""
    out = {}
    for k, v in model.adapter_state_dict().items():
        if hasattr(v, "full_tensor"):  # a DTensor shard from FSDP
            v = v.full_tensor()
        out[k] = v.detach().cpu().contiguous()
    return out


def gather_optimizer(model: DeSTAModel, optimizer, sharded: bool) -> dict[str, Any]:
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
    optimizer,
    step: int,
    epoch: int,
    batch_in_epoch: int,
    cfg: TrainConfig,
    sharded: bool = False,
    writer: bool = True,
) -> dict[str, torch.Tensor]:
    """Atomic: write to a temp folder, then rename over the previous checkpoint.

    Under FSDP every rank calls this (gathering is collective) and only the ``writer`` writes.
    Returns the gathered trainable weights.
    """
    adapter = gather_adapter(model)
    optim_state = gather_optimizer(model, optimizer, sharded)
    if not writer:
        return adapter
    tmp = out / (CHECKPOINT_DIR + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    save_model(model, tmp, state=adapter)
    torch.save(
        {
            "optimizer": optim_state,
            "step": step,
            "epoch": epoch,
            "batch_in_epoch": batch_in_epoch,
            "rng": _rng_state(),
        },
        tmp / "state.pt",
    )
    (tmp / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=2, default=str))
    final = out / CHECKPOINT_DIR
    old = out / (CHECKPOINT_DIR + ".old")
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        import shutil

        shutil.rmtree(old, ignore_errors=True)
    return adapter


def load_checkpoint(out: Path, model: DeSTAModel, optimizer, sharded: bool = False) -> tuple[int, int, int]:
    from safetensors.torch import load_file

    from desta.model.convert import load_adapter_strict

    ck = out / CHECKPOINT_DIR
    adapter = load_file(str(ck / "model.safetensors"))
    state = torch.load(ck / "state.pt", weights_only=False)
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
    _set_rng_state(state["rng"])
    return state["step"], state["epoch"], state["batch_in_epoch"]


class Logger:
    """Console + TensorBoard (+ optional W&B) scalars; text samples from validation."""

    def __init__(self, cfg: TrainConfig, out: Path, enabled: bool) -> None:
        self.enabled = enabled
        self.tb = self.wandb = None
        self.jsonl = open(out / "log.jsonl", "a") if enabled else None
        if enabled and cfg.run.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tensorboard"))
            except ImportError:
                print("desta: TensorBoard logging off (pip install tensorboard)")
        if enabled and cfg.run.wandb:
            import wandb

            self.wandb = wandb.init(project=cfg.run.wandb_project, config=cfg.to_dict(), dir=str(out))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        self.jsonl.write(json.dumps({"step": step, **values}) + "\n")
        self.jsonl.flush()
        if self.tb:
            for k, v in values.items():
                self.tb.add_scalar(k, v, step)
        if self.wandb:
            self.wandb.log(values, step=step)

    def text(self, step: int, tag: str, text: str) -> None:
        if self.enabled and self.tb:
            self.tb.add_text(tag, text, step)

    def close(self) -> None:
        if self.jsonl:
            self.jsonl.close()
        if self.tb:
            self.tb.close()
        if self.wandb:
            self.wandb.finish()


def validate(
    model: DeSTAModel, rows: list[dict[str, Any]], data_root: str, max_new_tokens: int = 48
) -> list[dict[str, str]]:
    """Greedy answers for a few fixed validation rows (logged, not scored)."""
    model.eval()
    out = []
    for row in rows:
        msgs = []
        for m in row["messages"]:
            audios = [
                {**a, "audio": str(resolve_audio(str(a["audio"]), data_root))} for a in m.get("audios") or []
            ]
            msgs.append({**m, "audios": audios})
        try:
            text = model.generate([msgs], max_new_tokens=max_new_tokens)[0].text
        except Exception as err:  # validation must never kill training
            text = f"<error: {err}>"
        out.append({"prompt": msgs[-1]["content"], "reference": row["response"], "prediction": text})
    model.train()
    return out


def train(cfg: TrainConfig, resume: bool = True) -> dict[str, Any]:
    """Run (or resume) training; returns a summary with the loss history and the export folder."""
    if not cfg.data.train:
        raise ConfigError("data.train is empty: point it at a JSONL made by `desta data generate`")
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    device = pick_device(cfg)
    dist_info = setup_distributed(cfg, device)
    out = Path(cfg.run.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.run.seed)
    random.seed(cfg.run.seed)
    np.random.seed(cfg.run.seed)

    use_bf16 = resolve_dtype(cfg.run.precision, device) == torch.bfloat16
    model_cfg = cfg.model.replace(max_transcript_tokens=cfg.data.max_transcript_tokens, untrained=True)
    model = build_model(
        model_cfg, device=device, llm_dtype=torch.bfloat16 if use_bf16 else torch.float32, seed=cfg.run.seed
    )
    del model.perception.whisper.model.decoder  # official: the decoder is not needed in training
    model.perception.whisper.proj_out = None
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)

    wrapped: torch.nn.Module = model
    sharded = dist_info.world > 1 and cfg.run.distributed == "fsdp"
    if dist_info.world > 1:
        if cfg.run.distributed == "fsdp":
            from torch.distributed.fsdp import fully_shard

            # shard the LLM's decoder layers (nearly all of its weights) and the connector, whose
            # gradients FSDP then averages across ranks; embeddings and the head stay replicated,
            # because the model calls them directly (and they may be tied)
            for layer in model.llm_model.model.layers:
                fully_shard(layer)
            fully_shard(model.perception.connector)
            trainable = [p for p in model.parameters() if p.requires_grad]
        else:
            wrapped = torch.nn.parallel.DistributedDataParallel(
                model,
                device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=False,
            )

    rows = read_rows(cfg.data.train, cfg.data.max_rows)
    dataset = TrainDataset(rows, model.processor, cfg.data.data_root, cfg.data.max_seq_length)
    val_rows = read_rows(cfg.data.validation)[: cfg.run.validation_samples] if cfg.data.validation else []
    if sharded and val_rows:  # generation on rank 0 alone cannot unshard FSDP layers
        if dist_info.main:
            print("desta: validation generation is off under FSDP; evaluate the exported model instead")
        val_rows = []
    global_batch = cfg.data.batch_size * dist_info.world
    steps_per_epoch = (
        len(batch_order(dataset, global_batch, cfg.run.seed, 0, cfg.data.length_bucketing))
        // cfg.optim.grad_accum
    )
    if steps_per_epoch == 0:
        raise ConfigError(f"{len(rows)} rows are fewer than one global batch of {global_batch}")
    total_steps = cfg.optim.max_steps if cfg.optim.max_steps > 0 else steps_per_epoch * cfg.optim.epochs

    optimizer = torch.optim.AdamW(
        trainable,
        lr=cfg.optim.lr,
        betas=cfg.optim.betas,
        weight_decay=cfg.optim.weight_decay,
        eps=cfg.optim.eps,
        fused=device.type == "cuda",
    )
    step, epoch, batch_in_epoch = 0, 0, 0
    if resume and (out / CHECKPOINT_DIR / "state.pt").exists():
        step, epoch, batch_in_epoch = load_checkpoint(out, model, optimizer, sharded)
        if dist_info.main:
            print(f"desta: resumed from {out / CHECKPOINT_DIR} at step {step}")
    logger = Logger(cfg, out, dist_info.main)
    if dist_info.main:
        (out / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=2, default=str))
        print(
            f"desta: {n_trainable / 1e6:.2f}M trainable parameters, {len(rows)} rows, {total_steps} steps on {device}"
        )
    cache = EncoderCache() if cfg.data.cache_encoder_outputs else None
    skipped: Counter = Counter()
    history: list[float] = []
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if use_bf16 and device.type == "cuda" else nullcontext()
    )
    pbar = None
    if dist_info.main and cfg.run.progress:
        from tqdm import tqdm

        pbar = tqdm(total=total_steps, initial=step, desc="train", unit="step", dynamic_ncols=True)
    t_last, tokens_since = time.time(), 0

    done = step >= total_steps
    while not done:
        batches = batch_order(dataset, global_batch, cfg.run.seed, epoch, cfg.data.length_bucketing)
        # each rank takes its slice of every global batch
        local = [
            b[dist_info.rank * cfg.data.batch_size : (dist_info.rank + 1) * cfg.data.batch_size]
            for b in batches
        ]
        loader = BatchLoader(dataset, local, cfg.data.num_workers)
        micro, step_at_epoch_start = 0, step
        for batch in loader.iterate(batch_in_epoch):
            batch_in_epoch += 1
            skipped.update(batch["skipped"])
            if not batch["items"]:
                continue
            inputs = {
                k: batch[k].to(device)
                for k in ("input_ids", "attention_mask", "audio_mask", "labels", "position_ids")
            }
            with autocast:
                feats = audio_features(model, batch, cache)
                res = (
                    wrapped(**inputs, audio_features=feats)
                    if wrapped is not model
                    else model(**inputs, audio_features=feats)
                )
                loss = res["loss"]
                if cfg.distill.alpha > 0:
                    hidden = model(
                        **{k: v for k, v in inputs.items() if k != "labels"}, audio_features=feats
                    )["hidden"]
                    kl = distill_loss(model, {**batch, **inputs}, hidden, cfg.distill.temperature)
                    loss = (1 - cfg.distill.alpha) * loss + cfg.distill.alpha * kl
            (loss / cfg.optim.grad_accum).backward()
            tokens_since += int(inputs["attention_mask"].sum())
            micro += 1
            if micro % cfg.optim.grad_accum:
                continue
            lr = cfg.optim.lr * cosine_with_warmup(step, cfg.optim.warmup_steps, total_steps)
            for g in optimizer.param_groups:
                g["lr"] = lr
            grad_norm = torch.nn.utils.clip_grad_norm_(trainable, cfg.optim.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            history.append(float(loss.detach()))
            if pbar:
                pbar.update(1)
                pbar.set_postfix(loss=f"{history[-1]:.3f}", lr=f"{lr:.2e}")
            if step % cfg.run.log_every == 0 or step == total_steps:
                now = time.time()
                logger.scalars(
                    step,
                    {
                        "train/loss": history[-1],
                        "train/lr": lr,
                        "train/grad_norm": float(grad_norm),
                        "train/tokens_per_s": tokens_since * dist_info.world / max(1e-9, now - t_last),
                        "train/skipped_rows": float(sum(skipped.values())),
                    },
                )
                t_last, tokens_since = now, 0
            if val_rows and cfg.run.validate_every and step % cfg.run.validate_every == 0 and dist_info.main:
                for j, v in enumerate(validate(model, val_rows, cfg.data.data_root)):
                    logger.text(
                        step,
                        f"validation/{j}",
                        f"**Q:** {v['prompt']}\n\n**ref:** {v['reference']}\n\n**pred:** {v['prediction']}",
                    )
            if step % cfg.run.save_every == 0 and (dist_info.main or sharded):
                save_checkpoint(
                    out, model, optimizer, step, epoch, batch_in_epoch, cfg, sharded, dist_info.main
                )
            if step >= total_steps:
                done = True
                break
        if not done:
            if step == step_at_epoch_start:  # a whole epoch without one usable batch: stop, say why
                reasons = ", ".join(f"{n} {r}" for r, n in skipped.most_common()) or "none"
                raise DeSTAError(f"no usable training rows in {cfg.data.train} (skipped: {reasons})")
            epoch += 1
            batch_in_epoch = 0
    if pbar:
        pbar.close()
    summary: dict[str, Any] = {
        "steps": step,
        "losses": history,
        "skipped": dict(skipped),
        "trainable_parameters": n_trainable,
    }
    if dist_info.main or sharded:
        final_adapter = save_checkpoint(
            out, model, optimizer, step, epoch, batch_in_epoch, cfg, sharded, dist_info.main
        )
    if dist_info.main:
        model.config = model.config.replace(
            untrained=False, max_transcript_tokens=None, info={**model.config.info, "trained_steps": step}
        )
        export = save_model(model, out / "model", state=final_adapter)
        summary["export"] = str(export)
        if val_rows:
            samples = validate(model, val_rows, cfg.data.data_root)
            summary["validation"] = samples
            for j, v in enumerate(samples):
                logger.text(
                    step,
                    f"validation/{j}",
                    f"**Q:** {v['prompt']}\n\n**ref:** {v['reference']}\n\n**pred:** {v['prediction']}",
                )
        if skipped:
            print("desta: skipped rows: " + ", ".join(f"{n} {r}" for r, n in skipped.most_common()))
        (out / "summary.json").write_text(
            json.dumps({k: v for k, v in summary.items() if k != "losses"}, indent=2)
        )
    logger.close()
    return summary

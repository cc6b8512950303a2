"""What a training run reports: scalars to ``log.jsonl``, TensorBoard and W&B, and greedy answers to a
few fixed validation rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from desta.model.desta import DeSTAModel
from desta.train.config import TrainConfig
from desta.train.data import resolve_audio

LOG_FILE = "log.jsonl"


class Logger:
    """Console + TensorBoard (+ optional W&B) scalars; text samples from validation.

    ``starts_at``: the step this run starts from (0, or a checkpoint's); rows of ``log.jsonl`` after it
    (written by a killed run after its last checkpoint, about to be written again) are dropped, so each
    step appears once.
    """

    def __init__(self, cfg: TrainConfig, out: Path, enabled: bool, starts_at: int = 0) -> None:
        self.enabled = enabled
        self.tb = self.wandb = None
        self.jsonl = None
        if not enabled:
            return
        _drop_rows_after(out / LOG_FILE, starts_at)
        self.jsonl = open(out / LOG_FILE, "a")
        if cfg.run.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tensorboard"))
            except ImportError:
                print("desta: TensorBoard logging off (pip install tensorboard)")
        if cfg.run.wandb:
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

    def samples(self, step: int, samples: list[dict[str, str]]) -> None:
        """Validation answers as TensorBoard text, one tag per row."""
        if not (self.enabled and self.tb):
            return
        for j, v in enumerate(samples):
            text = f"**Q:** {v['prompt']}\n\n**ref:** {v['reference']}\n\n**pred:** {v['prediction']}"
            self.tb.add_text(f"validation/{j}", text, step)

    def close(self) -> None:
        if self.jsonl:
            self.jsonl.close()
        if self.tb:
            self.tb.close()
        if self.wandb:
            self.wandb.finish()


def _drop_rows_after(path: Path, step: int) -> None:
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
        except (json.JSONDecodeError, AttributeError):
            continue  # a line cut short by the kill
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in keep))
    tmp.replace(path)


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

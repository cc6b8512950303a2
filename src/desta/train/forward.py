"""What one training micro-batch computes: audio features through the frozen Whisper encoder (cached
in memory when asked) and the connector, and the optional distillation loss against the frozen LLM."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from desta.model.desta import DeSTAModel


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
    backbone saw when it wrote the response itself. ``hidden`` is (B, T, H), the model's last hidden
    states on the audio prompt; returns a scalar.
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

"""Which attributes of real speech do the Whisper taps desta-tiny's connector reads carry to unseen
speakers? A linear probe answers it without the LLM: per clip, the mean and standard deviation over time
of each tapped encoder layer (the clip at its real length, as desta-tiny encodes), a multinomial logistic
regression per attribute fit on ``train`` rows of the realdata collection and scored on its ``heldout``
rows (other speakers), per attribute: gender, emotion (8 classes), language (4), and speech vs cat.

    python bench/encoder_probe.py /path/to/realdata [--per-class 60]

writes ``bench/results/encoder_probe.json``. It chooses the encoder by measurement (issue 21): the
attribute's held-out accuracy bounds what a connector over these taps can learn from this data.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine  # noqa: E402


def labels(r) -> dict[str, str]:
    out = {"kind": "cat" if r.kind == "sound" else "speech"}
    for key in ("Gender", "Emotion", "Language"):
        if r.attributes.get(key):
            out[key.lower()] = r.attributes[key].lower()
    return out


@torch.no_grad()
def features(model, path: str) -> np.ndarray:
    from desta.audio import load_audio

    wave = load_audio(path, sr=16000)[: 16000 * 30]
    taps = model.perception.encode(model.perception.features([wave])).taps
    return torch.cat([torch.cat([t[0].mean(0), t[0].std(0)]) for t in taps]).numpy()


def balanced(records, per_class: int, seed: int):
    """Up to ``per_class`` clips per value of each attribute (the union over attributes)."""
    rng = random.Random(seed)
    picked: dict[str, object] = {}
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for r in rng.sample(records, len(records)):
        for k, v in labels(r).items():
            groups[(k, v)].append(r)
    for recs in groups.values():
        for r in recs[:per_class]:
            picked[r.id] = r
    return list(picked.values())


def fit_predict(x: np.ndarray, y: list[str], z: np.ndarray, l2: float = 1e-3) -> list[str]:
    classes = sorted(set(y))
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xt = torch.tensor((x - mu) / sd, dtype=torch.float32)
    yt = torch.tensor([classes.index(c) for c in y])
    w = torch.zeros(x.shape[1], len(classes), requires_grad=True)
    b = torch.zeros(len(classes), requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=300)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w + b, yt) + l2 * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    pred = (torch.tensor((z - mu) / sd, dtype=torch.float32) @ w + b).argmax(1)
    return [classes[i] for i in pred.tolist()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("realdata", type=Path)
    ap.add_argument("--model", default=None, help="a desta model whose encoder taps are probed (default desta-tiny)")
    ap.add_argument("--per-class", type=int, default=60, help="clips per attribute value and split")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "encoder_probe.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    import desta
    from desta.data.sources.realdata import read_realdata

    model = desta.load_model(args.model)
    t0 = time.time()
    data = {}
    for split in ("train", "heldout"):
        recs = balanced(list(read_realdata(args.realdata, split=split)), args.per_class, seed=0)
        data[split] = ([features(model, r.audio) for r in recs], [labels(r) for r in recs])
        print(f"{split}: {len(recs)} clips encoded ({time.time() - t0:.0f} s)", flush=True)
    results = {}
    for attr in ("gender", "emotion", "language", "kind"):
        tr = [(f, lab[attr]) for f, lab in zip(*data["train"], strict=True) if attr in lab]
        te = [(f, lab[attr]) for f, lab in zip(*data["heldout"], strict=True) if attr in lab]
        pred = fit_predict(np.stack([f for f, _ in tr]), [y for _, y in tr], np.stack([f for f, _ in te]))
        gold = [y for _, y in te]
        per = {c: round(100 * float(np.mean([p == g for p, g in zip(pred, gold, strict=True) if g == c])), 1)
               for c in sorted(set(gold))}  # fmt: skip
        results[attr] = {"accuracy": round(100 * float(np.mean([p == g for p, g in zip(pred, gold, strict=True)])), 1),
                         "per_class": per, "n_train": len(tr), "n_heldout": len(te),
                         "chance": round(100 / len(set(gold)), 1)}  # fmt: skip
        print(attr, results[attr], flush=True)
    report = {
        "what": "linear probe (mean+std over time of the 4 tapped Whisper layers) fit on realdata train rows,"
        " scored on heldout rows (unseen speakers)",
        "encoder": model.config.encoder_model_id,
        "taps": list(model.perception.taps),
        "results": results,
        "seconds": round(time.time() - t0, 1),
        "machine": machine(),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

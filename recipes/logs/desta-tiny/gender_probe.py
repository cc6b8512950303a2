"""Is speaker gender in the Whisper taps desta-tiny's connector reads, in a form that carries from the
training corpus (TTS + one real voice) to real unseen people? A linear probe answers it without the LLM:
mean and std over time of each tapped layer (Whisper base, real length as desta-tiny encodes), logistic
regression fit on the corpus's training split, scored on its synthetic test split and on the real
held-out suite (recipes/tiny/heldout.py). Also a per-layer probe and a pitch-only baseline (median F0).

    python recipes/logs/desta-tiny/gender_probe.py runs/tiny-v3/corpus > recipes/logs/desta-tiny/gender-probe.md
    python recipes/logs/desta-tiny/gender_probe.py runs/tiny-v3/corpus --crossed 240   # + pitch-crossed clips

``--crossed N`` adds N espeak-ng clips of the training voices at the other gender's pitch (male variants
at -p 85-99, female at -p 0-15; sentences of the corpus's training split) to the probe's training set:
does breaking the pitch shortcut carry to the real male voice?
"""

from __future__ import annotations

import random
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from desta.audio import load_audio
from desta.data.records import read_records
from desta.model.load import load_model
from desta.recipes.tiny.heldout import real_records


def gender_of(r) -> str | None:
    g = (r.attributes or {}).get("Gender", "")
    return g.lower() if g.lower() in ("male", "female") else None


@torch.no_grad()
def features(model, path: str) -> tuple[np.ndarray, float]:
    wave = load_audio(path, sr=16000)
    mel = model.perception.features([wave[: 16000 * 30]])
    taps = model.perception.encode(mel).taps
    f = [torch.cat([t[0].mean(0), t[0].std(0)]) for t in taps]
    return torch.stack(f).numpy(), median_f0(wave)


def median_f0(wave: np.ndarray, sr: int = 16000) -> float:
    """Median autocorrelation pitch (60-400 Hz) over voiced 40 ms frames."""
    n, hop = 640, 320
    f0 = []
    for s in range(0, len(wave) - n, hop):
        x = wave[s : s + n] - wave[s : s + n].mean()
        if np.sqrt((x**2).mean()) < 0.01:
            continue
        ac = np.correlate(x, x, "full")[n - 1 :]
        lo, hi = sr // 400, sr // 60
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.3 * ac[0]:
            f0.append(sr / lag)
    return float(np.median(f0)) if f0 else 0.0


def crossed_clips(corpus: Path, n: int, out: Path) -> list[tuple[str, int]]:
    """(wav path, 1 if male) for ``n`` pitch-crossed espeak-ng clips (cached under ``out``)."""
    import subprocess

    from desta.data.synth_voices import ESPEAK_VARIANTS, ESPEAK_VOICES

    rng = random.Random(1)
    sentences = [r.transcript for r in read_records(corpus / "train.jsonl") if r.corpus == "synth-espeak"]
    langs = {r.language for r in read_records(corpus / "train.jsonl") if r.corpus == "synth-espeak"}
    out.mkdir(parents=True, exist_ok=True)
    clips = []
    for i in range(n):
        variant, gender = ESPEAK_VARIANTS["train"][i % len(ESPEAK_VARIANTS["train"])]
        lang = rng.choice(sorted(langs))
        voice = rng.choice(ESPEAK_VOICES[lang])[0]
        pitch = rng.randint(85, 99) if gender == "Male" else rng.randint(0, 15)
        text = rng.choice(sentences)
        path = out / f"crossed-{i:04d}.wav"
        if not path.exists():
            subprocess.run(["espeak-ng", "-v", f"{voice}+{variant}", "-p", str(pitch), "-w", str(path), text],
                           check=True, capture_output=True)  # fmt: skip
        clips.append((str(path), int(gender == "Male")))
    return clips


def fit(x: np.ndarray, y: np.ndarray, steps: int = 500, l2: float = 1e-3):
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xt = torch.tensor((x - mu) / sd, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.float32)
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt) + l2 * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return lambda z: ((torch.tensor((z - mu) / sd, dtype=torch.float32) @ w + b) > 0).numpy().astype(int)


def main() -> None:
    torch.set_num_threads(1)
    corpus = Path(sys.argv[1])
    crossed = int(sys.argv[sys.argv.index("--crossed") + 1]) if "--crossed" in sys.argv else 0
    model = load_model()
    train = [r for r in read_records(corpus / "train.jsonl") if r.kind == "speech" and gender_of(r)]
    random.Random(0).shuffle(train)
    train = train[:600]
    test = [r for r in read_records(corpus / "test.jsonl") if r.kind == "speech" and gender_of(r)]
    real = [r for r in real_records() if r.kind == "speech" and gender_of(r)]
    sets = {}
    for name, recs, root in (
        ("train", train, corpus),
        ("synthetic test", test, corpus),
        ("real held-out", real, None),
    ):
        xs, f0s, ys, who = [], [], [], []
        for r in recs:
            path = r.audio if root is None or Path(r.audio).is_absolute() else str(root / r.audio)
            x, f0 = features(model, path)
            xs.append(x), f0s.append(f0), ys.append(int(gender_of(r) == "male"))
            who.append((r.attributes or {}).get("Set", r.corpus) + ":" + r.id.split("/")[0].split("-")[0])
        sets[name] = (np.stack(xs), np.array(f0s), np.array(ys), who)
    if crossed:
        extra = [
            (features(model, p), y) for p, y in crossed_clips(corpus, crossed, Path("runs/probe-crossed"))
        ]
        x, f0, y, who = sets["train"]
        sets["train"] = (
            np.concatenate([x, np.stack([e[0][0] for e in extra])]),
            np.concatenate([f0, [e[0][1] for e in extra]]),
            np.concatenate([y, [e[1] for e in extra]]),
            who + ["crossed"] * len(extra),
        )
    xtr, f0tr, ytr, _ = sets["train"]
    n_taps = xtr.shape[1]
    print("# Gender probe: Whisper taps -> linear classifier (fit on the training split)\n")
    print(f"train: {len(ytr)} clips ({int(ytr.sum())} male, {crossed} of them pitch-crossed espeak-ng clips); "
          f"taps {n_taps}; features mean+std per tap\n")  # fmt: skip
    print("| probe | synthetic test | real held-out | real male | real female |\n|---|---|---|---|---|")
    probes = {"all taps": slice(None)} | {f"tap {i}": slice(i, i + 1) for i in range(n_taps)}
    for label, sl in probes.items():
        pred = fit(xtr[:, sl].reshape(len(ytr), -1), ytr)
        row = [label]
        for name in ("synthetic test", "real held-out"):
            x, _, y, _ = sets[name]
            p = pred(x[:, sl].reshape(len(y), -1))
            row.append(f"{(p == y).mean():.0%} (n={len(y)})")
        x, _, y, _ = sets["real held-out"]
        p = pred(x[:, sl].reshape(len(y), -1))
        row += [
            f"{(p[y == 1] == 1).mean():.0%} (n={(y == 1).sum()})",
            f"{(p[y == 0] == 0).mean():.0%} (n={(y == 0).sum()})",
        ]
        print("| " + " | ".join(row) + " |")
    # pitch baseline: threshold chosen on the training split
    best = max(np.arange(80, 300, 5), key=lambda t: ((f0tr < t) == (ytr == 1)).mean())
    row = [f"median F0 < {best} Hz"]
    for name in ("synthetic test", "real held-out"):
        _, f0, y, _ = sets[name]
        row.append(f"{((f0 < best) == (y == 1)).mean():.0%}")
    _, f0, y, who = sets["real held-out"]
    row += [f"{((f0 < best)[y == 1]).mean():.0%}", f"{((f0 >= best)[y == 0]).mean():.0%}"]
    print("| " + " | ".join(row) + " |")
    print(
        "\nMedian F0 per real voice:",
        {k: round(float(np.median([f for f, w in zip(f0, who) if w == k])), 1) for k in Counter(who)},
    )


if __name__ == "__main__":
    main()

"""The desta-tiny model card (Markdown) and results plot, written from a run's ``results.json`` and its
files; nothing in them is typed in by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from desta.data.records import read_jsonl


def plot_results(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = [v for v in results if v != "text_backbone"]
    probes = sorted({p for v in variants for p in results[v]["perception"]})
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / max(1, len(variants))
    labels = probes + ["instruction following"]
    for i, v in enumerate(variants):
        vals = [results[v]["perception"].get(p, {}).get("accuracy", 0) for p in probes] + [
            results[v]["instruction_following"]["rate"]
        ]
        ax.bar([x + i * width for x in range(len(labels))], vals, width, label=f"adapter on {v} targets")
    if "text_backbone" in results:
        ax.axhline(
            results["text_backbone"]["instruction_following"]["rate"],
            color="gray",
            ls="--",
            label="SmolLM2 + transcript text (IF)",
        )
    ax.set_xticks([x + width * (len(variants) - 1) / 2 for x in range(len(labels))], labels, rotation=15)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy / rate")
    ax.set_title("desta-tiny on held-out clips (other sentences, other voices)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _count_rows(path: Path) -> int:
    return sum(1 for _ in read_jsonl(path)) if path.exists() else 0


def targets_lines(opts: dict[str, Any], out: Path) -> list[str]:
    """The model card's account of the self-generated targets, from the run's own files."""
    rows = list(read_jsonl(out / "self" / "train.jsonl")) if (out / "self" / "train.jsonl").exists() else []
    rejects = out / "generated" / "rejects.jsonl"
    n_rejected = _count_rows(rejects)
    compound = sum(1 for r in rows if r.get("meta", {}).get("category") == "compound")
    lines = [
        f"- Targets: SmolLM2-135M-Instruct answered a sampled instruction about {opts['max_records']} training clips from",
        f"  their seed descriptions (temperature {opts['temperature']}, {opts['max_new_tokens']} new tokens).",
    ]
    if opts.get("resample"):
        weights = ", ".join(f"{c} x{w:g}" for c, w in opts.get("category_weights", ()))
        lines += [
            f'  Task mix: categories sampled equally except {weights}. Compound questions ("What is said, and is',
            '  the speaker a man or a woman?") were answered one part at a time and the answers joined; an',
            "  answer that missed or contradicted a fact its question asks for (transcript, gender, language),",
            f"  leaked the description or had no full sentence was sampled again up to {opts['resample']} times",
            f"  (temperature {opts.get('resample_temperature')}). {len(rows)} training rows remain ({compound} compound);",
            f"  {n_rejected} requests were rejected after every try.",
        ]
    else:
        lines.append(f"  After the leak filter and trimming, {len(rows)} training rows remain.")
    return lines


def _examples(examples: list[dict[str, Any]], n: int = 6) -> list[dict[str, Any]]:
    """Up to ``n`` examples, one probe after another, so the card shows every ability."""
    by_probe: dict[str, list[dict[str, Any]]] = {}
    for ex in examples:
        by_probe.setdefault(ex["probe"], []).append(ex)
    out: list[dict[str, Any]] = []
    while len(out) < n and any(by_probe.values()):
        for probe in list(by_probe):
            if by_probe[probe] and len(out) < n:
                out.append(by_probe[probe].pop(0))
    return out


def _table_row(label: str, entries: list[dict[str, Any] | None], key: str) -> str:
    """A Markdown row of ``entries[i][key]`` as percentages with their counts ("-" where missing)."""
    cells = [f"{r[key]:.0%} (n={r['n']})" if r else "-" for r in entries]
    return f"| {label} | " + " | ".join(cells) + " |"


def if_check_lines(res: dict[str, Any]) -> list[str]:
    """Instruction following per format check (and answer length), for runs that recorded it."""
    cols = [k for k in res if "per_check" in res[k].get("instruction_following", {})]
    if not cols:
        return []
    checks = sorted({c for k in cols for c in res[k]["instruction_following"]["per_check"]})
    lines = [
        "",
        "Instruction following per format check (short answers pass `under_15_words` and `no_commas` by",
        "themselves, so read the rate next to the answers' mean length):",
        "",
        "| check | " + " | ".join(cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for c in checks:
        lines.append(
            _table_row(c, [res[k]["instruction_following"]["per_check"].get(c) for k in cols], "rate")
        )
    lines.append(
        "| mean answer length (words) | "
        + " | ".join(f"{res[k]['instruction_following']['mean_words']:.1f}" for k in cols)
        + " |"
    )
    return lines


def _trained_parts(out: Path, variant: str) -> str:
    """What the run trained, from its saved config (the recipe's model section before training)."""
    from desta.model.config import DeSTAConfig
    from desta.recipes.tiny import tiny_model_config

    saved = out / f"train-{variant}" / "model" / "config.json"
    cfg = (
        DeSTAConfig.from_dict(json.loads(saved.read_text()), source=saved)
        if saved.exists()
        else tiny_model_config()
    )
    trained = "a 2-layer Q-Former connector with 64 queries"
    if cfg.use_lora:
        trained += (
            f", plus LoRA (r={cfg.lora_r}) on SmolLM2's {'/'.join(m.split('_')[0] for m in cfg.lora_target_modules)}"
            " projections (the official code's option, off in the 8B release)"
        )
    return trained


def _epochs_text(opts: dict[str, Any]) -> str:
    """How the rows were passed over: the packaged recipe's 3 epochs, or (the v3 run, epochs 1) one pass
    over the rows and their copies."""
    if not opts.get("augment_copies") and opts.get("voices_per_text", 1) <= 1:
        return "3 epochs"
    return (
        f"one epoch over the rows, a copy for each voice sibling and {opts['augment_copies']} augmented"
        " copies of each"
    )


def _how_made_lines(opts: dict[str, Any], tim: dict[str, float], variants: list[str], out: Path) -> list[str]:
    return [
        "## How it was made (`desta recipe tiny`)",
        "",
        f"- Corpus: `desta data synth`, {_count_rows(out / 'corpus' / 'train.jsonl')} training and "
        f"{_count_rows(out / 'corpus' / 'test.jsonl')} held-out clips (TTS voices in several languages,",
        "  real recordings, sound effects, noisy mixtures); the held-out split has other sentences and other voices.",
        *targets_lines(opts, out),
        "- Training: `recipes/desta-tiny.yaml` (AdamW (0.9, 0.98), wd 0.01, lr 1e-3, warmup then cosine, batch 8,",
        f"  {_epochs_text(opts)}, loss on the response and its end-of-turn token only; backbones in {opts.get('precision', 'fp32')} precision:",
        "  `fast` is bfloat16 on CPUs that compute it natively).",
        f"- Time on this machine (2 CPU cores): data {tim.get('data', 0) / 60:.0f} min, "
        + ", ".join(f"training on {v} targets {tim.get(f'train_{v}', 0) / 60:.0f} min" for v in variants)
        + ", evaluation "
        + " + ".join(f"{tim.get(f'eval_{v}', 0) / 60:.0f}" for v in variants)
        + f" min; the whole recipe {tim.get('total', 0) / 60:.0f} min.",
    ]


def _results_lines(res: dict[str, Any], opts: dict[str, Any], variants: list[str]) -> list[str]:
    names = {"self": "self-generated targets (DeSTA)", "task": "task-style targets (raw labels)"}
    lines = [
        "## Held-out results",
        "",
        f"Perception accuracy on {opts['eval_clips']} held-out clips (keyword rules in `desta/rules.py`) and",
        f"instruction following on {opts['eval_if_items']} IFEval-style format constraints; greedy decoding.",
        "",
        "| probe | " + " | ".join(names.get(v, v) for v in variants) + " |",
        "|---|" + "---|" * len(variants),
    ]
    for p in sorted({p for v in variants for p in res[v]["perception"]}):
        lines.append(_table_row(p, [res[v]["perception"].get(p) for v in variants], "accuracy"))
    lines.append(
        "| instruction following | "
        + " | ".join(f"{res[v]['instruction_following']['rate']:.0%}" for v in variants)
        + " |"
    )
    if "text_backbone" in res:
        ref = res["text_backbone"]["instruction_following"]["rate"]
        lines += [
            "",
            f"SmolLM2-135M-Instruct given the transcript as text follows {ref:.0%} of the same instructions; the",
            "DeSTA paper's forgetting measure, (IF_audio - IF_text) / IF_text, is "
            + ", ".join(
                f"{(res[v]['instruction_following']['rate'] - ref) / ref:+.0%} for {v} targets"
                for v in variants
                if ref
            )
            + ".",
        ]
    return lines + if_check_lines(res)


def _mean_accuracy(result: dict[str, Any]) -> float:
    accs = [r["accuracy"] for r in result["perception"].values()]
    return sum(accs) / max(1, len(accs))


def _comparison_lines(res: dict[str, Any], opts: dict[str, Any], out: Path) -> list[str]:
    """The paper's self- versus task-target claim, judged with a 2-point margin."""
    ps, pt = _mean_accuracy(res["self"]), _mean_accuracy(res["task"])
    fs, ft = res["self"]["instruction_following"]["rate"], res["task"]["instruction_following"]["rate"]
    verdict = {
        (True, True): "holds on both counts",
        (True, False): "holds for perception but **not** for instruction following",
        (False, True): "holds for instruction following but **not** for perception",
        (False, False): "does **not** hold on either count",
    }[ps >= pt - 0.02, fs >= ft - 0.02]
    lines = [
        "",
        "**The paper's comparison at this scale.** DeSTA2.5 claims that targets written by the backbone",
        "itself teach perception while keeping the LLM's instruction following, where task-style targets",
        f"make it forget. Here the self-generated model reaches a mean perception accuracy of {ps:.0%} against",
        f"{pt:.0%} and follows {fs:.0%} of the instructions against {ft:.0%}: the claim {verdict}",
        f"at this scale ({_count_rows(out / 'self' / 'train.jsonl')} training rows, a 135M backbone whose own",
        f"answers are weak targets; {opts['eval_if_items']} instruction items, so one item is"
        f" {100 / opts['eval_if_items']:.0f} points).",
    ]
    ws, wt = (res[v]["instruction_following"].get("mean_words") for v in ("self", "task"))
    if ws is not None and wt is not None:
        lines += [
            f"The instruction items' answers average {ws:.1f} words (self) and {wt:.1f} words (task): a",
            'label-like answer ("No.", "That is all.") passes some format checks while answering',
            "nothing, so read the instruction-following rates with the per-check table above.",
        ]
    return lines


def _example_lines(result: dict[str, Any]) -> list[str]:
    """The README's example on the bundled clip, then held-out examples, one probe after another."""
    lines = []
    example = result.get("example")
    if example:
        lines += [
            "",
            "## The bundled example",
            "",
            f'`desta ask --show-transcript "$(python3 -c \'from desta.model.load import example_clip; print(example_clip())\')" "{example["question"]}"`',
            f'(a LibriVox recording of a man reading; Whisper base hears "{" ".join(example["transcripts"]).strip()}"):',
            "",
            f"> {example['answer']}",
        ]
    lines += ["", "![held-out results](results.png)", "", "## Example answers (held-out clips)", ""]
    for ex in _examples(result.get("examples", [])):
        mark = "correct" if ex["correct"] else "wrong"
        gold = (
            ex["gold"] if isinstance(ex["gold"], str) else " / ".join(map(str, ex["gold"]))
        )  # fresh: tuple, cached: list
        lines.append(f'- *{ex["question"]}* (gold: {gold}) -> "{ex["answer"].strip()[:160]}" ({mark})')
    return lines


LIMITATIONS = (
    "",
    "## Limitations",
    "",
    "- A 135M-parameter LLM writes weak targets and weak answers: expect generic, sometimes wrong text.",
    "- The corpus is mostly synthetic speech; real-world recordings, accents and noise are barely covered.",
    "- Spoken content comes mostly from the Whisper base transcript in the prompt, not from the connector.",
    "",
    "Reproduce: `desta recipe tiny --ship` (the accuracies above come from `results.json` of that run).",
)


def model_card(report: dict[str, Any], out: Path) -> str:
    """The Markdown model card of ``report`` (``results.json``) and the run folder ``out``."""
    res, tim, opts = report["results"], report["timings_s"], report["options"]
    variants = [v for v in res if v != "text_backbone"]
    lines = [
        "# desta-tiny",
        "",
        "A small DeSTA2.5-style audio LLM trained by `desta`'s own pipeline on a CPU: frozen Whisper base",
        "(encoder taps + ASR) and frozen SmolLM2-135M-Instruct, joined by",
        f"{_trained_parts(out, variants[0])}.",
        "These are the only trained weights, shipped in fp16. It is the embedded default of",
        "`desta.load_model()`, `desta ask` and `desta serve`; it is a demonstration model, far below",
        "DeSTA2.5-Audio (Llama-3.1-8B) in every ability.",
        "",
        *_how_made_lines(opts, tim, variants, out),
        "",
        *_results_lines(res, opts, variants),
    ]
    if {"self", "task"} <= set(variants):
        lines += _comparison_lines(res, opts, out)
    heldout = {v: res[v]["heldout"] for v in variants if "heldout" in res[v]}
    if heldout:
        from desta.recipes.tiny.heldout_report import card_lines

        lines += card_lines(heldout)
    lines += [*_example_lines(res[variants[0]]), *LIMITATIONS]
    return "\n".join(lines) + "\n"

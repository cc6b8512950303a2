"""`desta recipe tiny`: build desta-tiny end to end with the toolkit's own pipeline, on a CPU.

desta-tiny is defined once, by ``desta-tiny.yaml`` beside this file (``recipes/desta-tiny.yaml`` in
the repository links to it): :func:`tiny_model_config` reads its model section, and training uses the
whole file. The stages:

1. ``desta data synth`` (:mod:`.stages`): a labelled corpus (TTS voices in several languages, real
   recordings, sound effects, noisy mixtures) with a held-out split of other sentences and other voices.
2. Self-generation: SmolLM2-135M-Instruct (the backbone itself) answers sampled instructions about each
   training clip from its seed description. Compound questions ("What is said, and is the speaker a
   man or a woman?") are answered one part at a time, and answers that miss or contradict the facts an
   instruction asks for are resampled (``desta.data.grounding``): a 135M model answers one question
   well and drops half of two.
3. Training: the recipe on frozen Whisper base + SmolLM2, once on the self-generated targets and once
   on task-style targets (the raw label as the answer to a fixed task question) with the same clips,
   steps and settings: the DeSTA2.5 paper's central comparison at small scale.
4. Evaluation on the held-out split (:mod:`.evaluate`, rules in :mod:`desta.rules`): perception
   accuracy (gender, language, content, sound, speed) and IFEval-style instruction following, against
   SmolLM2 given the transcript as text.
5. Model card (:mod:`.card`, Markdown + PNG) and the shipped adapter (fp16 safetensors + config.json).

Every stage skips work already on disk, so the command can be rerun after an interruption.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from desta.model.config import DeSTAConfig

RECIPE_FILE = "desta-tiny.yaml"


@dataclass(frozen=True)
class TinyOptions:
    out_dir: str = "runs/tiny"
    recipe: str = ""  # a training recipe YAML; "" is desta-tiny's own (recipe_path())
    # the defaults are the shipped desta-tiny's settings; V3_OPTIONS holds the v3 run's (not shipped:
    # recipes/logs/desta-tiny/heldout-real-v3.md)
    num_clips: int = 900
    seed: int = 7
    augment_fraction: float = 0.0  # corpus clips rendered under one label-preserving augmentation
    voices_per_text: int = 1  # espeak training sentences spoken by this many voices of one gender
    per_record: int = 1
    max_records: int = 720  # training clips sent to self-generation (CPU time is the limit)
    augment_copies: int = 0  # augmented copies of each row whose answer holds for any channel
    max_new_tokens: int = 64
    gen_batch_size: int = 16
    gen_parts: int = 1  # clips dealt into this many generation parts (one process each: generate_stage)
    temperature: float = 0.2
    resample: int = 3  # extra tries for answers the filters or grounding checks reject
    resample_temperature: float = 0.7
    # the task mix: compound and content questions carry the README's question; categories not named weigh 1
    category_weights: tuple[tuple[str, float], ...] = (("compound", 3.0), ("content", 1.5), ("speaker", 1.5))
    variants: tuple[str, ...] = ("self", "task")
    eval_clips: int = 100
    eval_if_items: int = 32
    eval_max_new_tokens: int = 40
    heldout_per_gender: int = 24  # real held-out asterisk clips per gender (0: no real held-out suite)
    ship: bool = False  # copy the self-generated model into src/desta/assets/desta-tiny
    # real recordings (desta.recipes.tiny.real): the realdata folder ("" = the synthetic recipe above) and
    # the Tux Paint stamps folder ("" = not used)
    realdata: str = ""
    tuxpaint: str = ""
    max_real: int = 1300  # realdata training clips sent to self-generation (spread over its sources)
    max_tux_speech: int = 300  # Tux Paint spoken descriptions (spread over languages); animal calls: all
    mcq_fraction: float = 0.6  # requests that ask a lettered question about one of the clip's labels
    compare_with: str = ""  # a model also scored on the real held-out suite (the card's "before"), e.g. desta-tiny
    epochs: int = 0  # training epochs; 0: the recipe's (optim.epochs)  # models also scored on the real held-out suite (e.g. desta-tiny)
    threads: int = 2  # on shared cores one is faster: a 2-thread step took 102 s where one thread took 12 s
    precision: str = "fast"  # bf16 where the CPU computes it natively (generation and training)


#: The v3 run (recipes/logs/desta-tiny/heldout-real-v3.md): more voices, augmentation, lettered
#: questions, voice-sibling and augmented copies, generation in two one-thread processes, one thread.
#: It trained with ``optim: {epochs: 1, max_steps: 140}`` over the packaged recipe (pass a recipe YAML).
V3_OPTIONS = {
    "num_clips": 2400,
    "augment_fraction": 0.3,
    "voices_per_text": 4,
    "max_records": 576,
    "augment_copies": 1,
    "max_new_tokens": 48,
    "gen_parts": 2,
    "resample": 2,
    "category_weights": (("compound", 3.0), ("content", 1.5), ("speaker", 1.5), ("mcq", 3.0)),
    "eval_clips": 40,
    "eval_if_items": 16,
    "threads": 1,
}


#: the real-data run (``--realdata``): shorter answers, two extra tries, one thread per process (the
#: held-out suite of the model before runs beside training on the other core)
REAL_OPTIONS = {"max_new_tokens": 40, "resample": 2, "threads": 1, "epochs": 2}


def recipe_path() -> Path:
    """The packaged ``desta-tiny.yaml``: the one definition of desta-tiny's model and training."""
    return Path(str(resources.files(__name__) / RECIPE_FILE))


def tiny_model_config() -> DeSTAConfig:
    """desta-tiny's architecture and prompt settings: the model section of :func:`recipe_path`."""
    from desta.train.config import load_config

    return load_config(recipe_path()).model


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] desta recipe tiny: {msg}", flush=True)


def run_tiny(opts: TinyOptions) -> dict[str, Any]:
    """Run every stage not already on disk under ``opts.out_dir``; returns the ``results.json`` report."""
    import torch

    if opts.realdata:
        from desta.recipes.tiny.real import run_real

        report = run_real(opts)
        if opts.ship:
            _ship_real(Path(opts.out_dir), report)
        return report
    from desta.recipes.tiny import stages
    from desta.recipes.tiny.card import model_card, plot_results
    from desta.recipes.tiny.evaluate import evaluate_variant, text_backbone_results, upgrade_cached

    torch.set_num_threads(opts.threads)
    t0 = time.time()
    out = Path(opts.out_dir)
    corpus = stages.build_corpus_stage(opts)
    data_timing = out / "timings-data.json"
    paths = {"self": out / "self" / "train.jsonl"}
    if not paths["self"].exists():
        paths["self"] = stages.generate_stage(opts, corpus)
        data_timing.write_text(json.dumps({"data": time.time() - t0}))
    if "task" in opts.variants:
        paths["task"] = stages.task_targets_stage(opts, corpus, paths["self"])
    timings: dict[str, float] = (
        json.loads(data_timing.read_text()) if data_timing.exists() else {"data": time.time() - t0}
    )

    results: dict[str, Any] = {}
    for v in opts.variants:
        cached = out / f"eval-{v}.json"
        if cached.exists():  # a rerun (e.g. adding a variant) keeps finished stages
            saved = json.loads(cached.read_text())
            results[v] = saved["results"]
            timings.update(saved["timings_s"])
            if upgrade_cached(results[v], v, corpus, opts):
                cached.write_text(
                    json.dumps({"results": results[v], "timings_s": saved["timings_s"]}, indent=2)
                )
            continue
        t = time.time()
        model_dir = stages.train_stage(opts, v, paths[v], corpus)
        timing = out / f"train-{v}" / "timing.json"  # kept with the run, so a rerun reports it too
        if not timing.exists():
            timing.write_text(json.dumps({"seconds": time.time() - t}))
        timings[f"train_{v}"] = json.loads(timing.read_text())["seconds"]
        t = time.time()
        log(f"evaluating the {v}-target adapter on held-out clips")
        results[v] = evaluate_variant(v, model_dir, corpus, opts)
        timings[f"eval_{v}"] = time.time() - t
        own = {k: timings[k] for k in (f"train_{v}", f"eval_{v}")}
        cached.write_text(json.dumps({"results": results[v], "timings_s": own}, indent=2))
    results["text_backbone"] = text_backbone_results(corpus, opts)

    # the sum of the stages (a rerun that skips finished stages would otherwise report seconds)
    timings["total"] = sum(v for k, v in timings.items() if k != "total")
    report = {"results": results, "timings_s": timings, "options": asdict(opts)}
    (out / "results.json").write_text(json.dumps(report, indent=2, default=str))
    plot_results(results, out / "results.png")
    (out / "MODEL_CARD.md").write_text(model_card(report, out))
    log(f"done in {timings['total'] / 60:.1f} min; results in {out / 'results.json'}")
    if opts.ship and "self" in opts.variants:
        _ship(out, report)
    return report


def _ship(out: Path, report: dict[str, Any]) -> None:
    """Install the self-target adapter, its plot, card and results as the packaged desta-tiny."""
    from desta.model.load import packaged_model_dir
    from desta.recipes.tiny.stages import ship

    dest = packaged_model_dir()
    ship(out / "train-self" / "model", dest)
    shutil.copy(out / "results.png", dest / "results.png")
    shutil.copy(out / "MODEL_CARD.md", dest / "README.md")
    (dest / "results.json").write_text(json.dumps(report, indent=2, default=str))


def _ship_real(out: Path, report: dict[str, Any]) -> None:
    """Install the real-data adapter, its card and results as the packaged desta-tiny."""
    from desta.model.load import packaged_model_dir
    from desta.recipes.tiny.real_card import real_model_card
    from desta.recipes.tiny.stages import ship

    dest = packaged_model_dir()
    ship(out / "train-self" / "model", dest)
    (dest / "results.json").write_text(json.dumps(report, indent=2, default=str))
    (dest / "README.md").write_text(real_model_card(report))

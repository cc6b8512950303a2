"""Data, training and shipping stages of the desta-tiny recipe; each skips work already on disk."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import TYPE_CHECKING

from desta.data.records import AudioRecord, read_jsonl, read_records, write_jsonl
from desta.errors import DeSTAError
from desta.messages import AUDIO_LOCATOR
from desta.recipes.tiny import log, recipe_path

if TYPE_CHECKING:
    from desta.recipes.tiny import TinyOptions

BREVITY = " Answer in one or two short sentences."
BACKBONE = "offline:smollm2-135m-instruct"  # writes the self-generated targets (the recipe's own LLM)

# task-style targets: a fixed question per task and the raw label as its answer
TASK_QUESTIONS = {
    "content": ("Transcribe the speech.", lambda r: r.transcript),
    "gender": ("What is the gender of the speaker?", lambda r: r.attributes.get("Gender", "") + "."),
    "language": ("What language is spoken?", lambda r: r.attributes.get("Language", "") + "."),
    "speed": ("What is the speaking speed?", lambda r: r.attributes.get("Speaking speed", "") + "."),
    "sound": (
        "What sound is this?",
        lambda r: (r.caption or r.attributes.get("Sound", "")).capitalize() + ".",
    ),
}


def build_corpus_stage(opts: TinyOptions) -> Path:
    """``desta data synth`` into ``OUT/corpus`` (train/test split by sentence and voice)."""
    from desta.data.synth import SynthConfig, build_corpus

    corpus = Path(opts.out_dir) / "corpus"
    if not (corpus / "train.jsonl").exists():
        log("synthesising the labelled corpus")
        build_corpus(
            corpus,
            SynthConfig(
                num_clips=opts.num_clips,
                seed=opts.seed,
                test_fraction=0.2,
                augment_fraction=opts.augment_fraction,
                voices_per_text=opts.voices_per_text,
                progress=False,
            ),
        )
    return corpus


def generate_stage(opts: TinyOptions, corpus: Path, part: int | None = None) -> Path:
    """Self-generated targets from the backbone itself (resumable: finished requests are kept).

    The clips are dealt into ``opts.gen_parts`` parts (``records[p::gen_parts]``, part ``p`` in
    ``OUT/generated`` for p = 0, else ``OUT/generated-<p>``). ``part`` runs that part alone and returns
    its folder: one process per part uses the cores far better than one process with two threads
    when other jobs share them. Without ``part``, every part is run (or resumed) in turn and the rows of
    all of them become ``OUT/self/train.jsonl``.
    """
    from desta.data.pipeline import shard_paths

    parts = [part] if part is not None else list(range(opts.gen_parts))
    for p in parts:
        _generate_part(opts, corpus, p)
    if part is not None:
        return _part_dir(opts, part)
    seen: set[str] = set()
    rows = []
    for p in range(opts.gen_parts):
        for shard in shard_paths(_part_dir(opts, p)):
            for row in read_jsonl(shard):
                key = str(row.get("meta", {}).get("key", row.get("id")))
                if key not in seen:
                    seen.add(key)
                    rows.append(row)
    rows = _verified_and_copied(opts, corpus, rows)
    log(f"{len(rows)} training rows")
    path = Path(opts.out_dir) / "self" / "train.jsonl"
    write_jsonl(path, rows)
    return path


def _part_dir(opts: TinyOptions, part: int) -> Path:
    return Path(opts.out_dir) / ("generated" if part == 0 else f"generated-{part}")


def _generate_part(opts: TinyOptions, corpus: Path, part: int) -> None:
    from desta.data.backends import TransformersBackend
    from desta.data.pipeline import run_generation
    from desta.data.synth import sibling_group

    if not 0 <= part < opts.gen_parts:
        raise DeSTAError(
            f"generation part {part} is not one of the {opts.gen_parts} parts (TinyOptions.gen_parts)"
        )
    # one clip per voice-sibling group: its answers are copied to the siblings afterwards (rows.py)
    records = [r for r in read_records(corpus / "train.jsonl") if sibling_group(r.id) == r.id]
    random.Random(opts.seed).shuffle(records)
    records = records[: opts.max_records][part :: opts.gen_parts]
    log(
        f"self-generating targets for {len(records)} clips x {opts.per_record} with SmolLM2-135M-Instruct"
        + (f" (part {part + 1} of {opts.gen_parts})" if opts.gen_parts > 1 else "")
    )
    backend = TransformersBackend(BACKBONE, precision=opts.precision)
    cfg = generate_config(opts)
    summary = run_generation(records, _part_dir(opts, part), backend, cfg, total_records=len(records))
    log(f"generation: {summary.to_dict()}")


def generate_config(opts: TinyOptions, **changes):
    """The recipe's self-generation settings (``changes`` replace fields): SmolLM2's answers trimmed to
    their last full sentence and asked to be short, at generation and training time alike."""
    import dataclasses

    from desta.data.filters import FilterConfig
    from desta.data.generate import (
        GENERATION_SYSTEM_PROMPT,
        TRAINING_SYSTEM_PROMPT,
        PromptFormat,
        SamplingParams,
    )
    from desta.data.pipeline import GenerateConfig

    cfg = GenerateConfig(
        num_per_record=opts.per_record,
        seed=opts.seed,
        batch_size=opts.gen_batch_size,
        sampling=SamplingParams(max_new_tokens=opts.max_new_tokens, temperature=opts.temperature, top_p=0.9),
        progress=True,
        # a 135M model rambles past a short budget: keep its answers up to their last full sentence
        filters=FilterConfig(drop_truncated=False, trim_truncated=True),
        resample=opts.resample,
        resample_temperature=opts.resample_temperature,
        category_weights=opts.category_weights,
        # and ask for short answers at generation and training time alike
        prompt=PromptFormat(
            training_system=TRAINING_SYSTEM_PROMPT + BREVITY,
            generation_system=GENERATION_SYSTEM_PROMPT + BREVITY,
        ),
    )
    return dataclasses.replace(cfg, **changes)


def _verified_and_copied(opts: TinyOptions, corpus: Path, rows: list[dict]) -> list[dict]:
    """Lettered-question rows checked against the labels, copies for the voice siblings of each clip,
    then ``opts.augment_copies`` acoustic copies (:mod:`desta.recipes.tiny.rows`)."""
    from desta.recipes.tiny.rows import augmented_copies, sibling_copies, verify_mcq_rows

    records = {r.id: r for r in read_records(corpus / "train.jsonl")}
    rows, dropped = verify_mcq_rows(rows, records)
    write_jsonl(Path(opts.out_dir) / "generated" / "mcq-rejects.jsonl", dropped)
    rows = rows + sibling_copies(rows, records)
    n = opts.augment_copies
    copies = augmented_copies(rows, records, corpus, n, opts.seed) if n else []
    log(
        f"{len(dropped)} multiple-choice rows dropped (not exactly the labelled option); {len(rows)} rows"
        f" with voice siblings; {len(copies)} augmented copies"
    )
    return rows + copies


def _task(rec: AudioRecord, rng: random.Random) -> str:
    """One of the record's labelled tasks, drawn from ``rng`` (one draw per row, sounds included)."""
    if rec.kind != "speech":
        tasks = ["sound"]
    else:
        tasks = [
            t for t in ("content", "gender", "language", "speed") if TASK_QUESTIONS[t][1](rec).strip(". ")
        ]
    if not tasks:
        raise DeSTAError(f"record {rec.id!r} is speech without a transcript or label: no task-style target")
    return rng.choice(tasks)


def task_targets_stage(opts: TinyOptions, corpus: Path, self_path: Path) -> Path:
    """Same clips and row count as the self-generated set; answers are raw labels to task questions."""
    records = {r.id: r for r in read_records(corpus / "train.jsonl")}
    rng = random.Random(opts.seed)
    out_rows = []
    for row in read_jsonl(self_path):
        rec = records.get(row["id"].split("/", 1)[-1].split("#")[0])  # "<corpus>/<record id>#<n>"
        if rec is None:
            continue
        question, answer = TASK_QUESTIONS[_task(rec, rng)]
        msgs = json.loads(json.dumps(row["messages"]))
        for m in msgs:
            if AUDIO_LOCATOR in m["content"]:
                m["content"] = f"{AUDIO_LOCATOR}\n{question}"
        out_rows.append({**row, "messages": msgs, "response": answer(rec), "prompt": question})
    path = Path(opts.out_dir) / "task" / "train.jsonl"
    write_jsonl(path, out_rows)
    return path


def train_stage(opts: TinyOptions, variant: str, train_path: Path, corpus: Path) -> Path:
    """The recipe's training run on one target variant -> ``OUT/train-<variant>/model``."""
    from desta.train.config import load_config
    from desta.train.train import train

    out = Path(opts.out_dir) / f"train-{variant}"
    if (out / "model" / "model.safetensors").exists():
        return out / "model"
    log(f"training the adapter on {variant} targets")
    cfg = load_config(
        opts.recipe or recipe_path(),
        {"data": {"train": str(train_path), "validation": "", "data_root": str(corpus)},
         "run": {"out_dir": str(out), "threads": opts.threads, "precision": opts.precision},
         **({"optim": {"epochs": opts.epochs}} if opts.epochs else {})},
    )  # fmt: skip
    summary = train(cfg)
    log(f"trained {summary['steps']} steps, last losses {[round(x, 3) for x in summary['losses'][-5:]]}")
    return out / "model"


def ship(model_dir: Path, dest: Path) -> None:
    """Copy the adapter as fp16 safetensors (under 20 MB) plus config.json."""
    from safetensors.torch import load_file, save_file

    from desta.model.load import ADAPTER_METADATA

    dest.mkdir(parents=True, exist_ok=True)
    state = load_file(str(model_dir / "model.safetensors"))
    save_file(
        {k: v.half() for k, v in state.items()},
        str(dest / "model.safetensors"),
        metadata=ADAPTER_METADATA,
    )
    config = json.loads((model_dir / "config.json").read_text())
    config["name"] = dest.name  # the shipped model is named for its folder (desta-tiny), not the run's
    config.pop("auto_map", None)  # its remote-code files stay with the run: desta loads the packaged model
    (dest / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")

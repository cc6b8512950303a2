"""desta-tiny on real recordings: the training records, the questions built from their labels, and the
real held-out suite of unseen speakers.

Data (``desta recipe tiny --realdata DIR``): the ``train`` rows of the realdata collection
(:mod:`desta.data.sources.realdata`: RAVDESS, EmoDB, speechocean762, a Korean emotional speech corpus,
URDU, TESS, FSDD, CatMeows; several licences are non-commercial) and the training side of the Tux Paint
stamps (:mod:`desta.data.sources.tuxpaint`: spoken descriptions in a dozen languages, animal calls).
Nothing of the ``heldout`` rows, of the held-out stamps or of any benchmark is trained on.

Questions (:class:`LabelQuestions`): each request is, with probability ``mcq_fraction``, a lettered
question about one of the clip's labels (gender, emotion, language, animal) in the benchmark format,
options drawn around the gold one and shuffled; otherwise an open question of the instruction pool.
SmolLM2 answers it from the seed description (the DeSTA self-generated target); the grounding facts
(:mod:`desta.data.grounding`) resample an answer that misses or contradicts the label, and
:func:`desta.recipes.tiny.rows.verify_mcq_rows` keeps only answers that choose exactly the gold option.
"""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

from desta.data.grounding import EMOTIONS
from desta.data.instructions import Instruction
from desta.data.records import AudioRecord
from desta.recipes.tiny.mcq import MCQ, build_mcq, gender_mcq

EMOTION_OPTIONS = tuple(EMOTIONS)
#: languages offered as options: the training data's and the asterisk suite's
LANGUAGE_OPTIONS = (
    "English", "German", "Korean", "Urdu", "French", "Spanish", "Russian", "Italian", "Chinese",
    "Romanian", "Catalan", "Bulgarian", "Greek", "Danish", "Dutch", "Belarusian",
)  # fmt: skip
ANIMAL_OPTIONS = (
    "cat", "dog", "cow", "sheep", "pig", "horse", "rooster", "hen", "duck", "frog", "owl", "crow",
    "lion", "elephant", "donkey", "goat", "bee", "turkey", "wolf", "bird",
)  # fmt: skip
STEMS = {
    "gender": ("What is the gender of the speaker?", "Is the speaker male or female?",
               "Which best describes the speaker?"),
    "emotion": ("What emotion does the speaker express?", "Which emotion is conveyed in this clip?",
                "How does the speaker feel?"),
    "language": ("Which language is spoken in this clip?", "What language does the speaker use?",
                 "Identify the spoken language."),
    "animal": ("Which animal makes this sound?", "What animal do you hear?", "Which animal is this?"),
}  # fmt: skip
SUFFIXES = ("", " Choose one option.", " Answer with the letter and the option.")
FACT = {"gender": "gender", "emotion": "emotion", "language": "language", "animal": "animal"}
#: the open-question mix (instruction-pool categories); the pool's static lettered questions are off
OPEN_WEIGHTS = (
    ("compound", 2.0), ("content", 1.0), ("speaker", 2.0), ("paralinguistic", 1.0), ("description", 0.5),
    ("format", 0.5), ("reasoning", 0.3), ("mcq", 0.0), ("music", 0.0),
)  # fmt: skip


#: the second question of clips with a transcript: compound ("What is said, and is the speaker a man or
#: a woman?") and content questions only
CONTENT_WEIGHTS = tuple((c, 0.0) for c in ("description", "format", "mcq", "music", "paralinguistic",
                                           "reasoning", "sound", "speaker")) + (("compound", 2.0), ("content", 1.0))  # fmt: skip


def label_tasks(record: AudioRecord) -> list[tuple[str, str]]:
    """``[(task, gold)]`` for the labels ``record`` carries: gender, emotion, language or animal."""
    a = record.attributes
    out = []
    if record.kind == "speech":
        if a.get("Gender", "").lower() in ("male", "female"):
            out.append(("gender", a["Gender"].lower()))
        if a.get("Emotion", "").lower() in EMOTIONS:
            out.append(("emotion", a["Emotion"].lower()))
        if a.get("Language"):
            out.append(("language", a["Language"]))
    elif a.get("Animal"):
        out.append(("animal", a["Animal"].lower()))
    return out


def make_mcq(task: str, gold: str, rng: random.Random, stem: str | None = None) -> MCQ:
    """A lettered question about ``task`` with ``gold`` among 2 (gender) or 4 shuffled options."""
    stem = stem or rng.choice(STEMS[task])
    if task == "gender":
        return dataclasses.replace(gender_mcq(gold, rng), stem=stem)
    if task == "emotion":
        alias = {e: tuple(f for f in forms if f != e) for e, forms in EMOTIONS.items()}
        return build_mcq(stem, gold, EMOTION_OPTIONS, rng, aliases=alias)
    if task == "language":
        return build_mcq(stem, gold, LANGUAGE_OPTIONS, rng)
    return build_mcq(stem, gold, tuple(a for a in ANIMAL_OPTIONS if a != "bird"), rng)


class LabelQuestions:
    """An instruction sampler (:class:`desta.data.generate.InstructionSampler`) that asks a lettered
    question about a label of the clip with probability ``mcq_fraction``, else an open one of ``pool``."""

    def __init__(self, pool, mcq_fraction: float = 0.5) -> None:
        self.pool = pool
        self.mcq_fraction = mcq_fraction

    def sample(self, seed: int, kind: str = "speech"):
        return self.pool.sample(seed, kind=kind)

    def sample_for(self, record: AudioRecord, seed: int):
        rng = random.Random(seed)
        tasks = label_tasks(record)
        if tasks and rng.random() < self.mcq_fraction:
            task, gold = rng.choice(tasks)
            q = make_mcq(task, gold, rng)
            return Instruction(q.text + rng.choice(SUFFIXES), "mcq", (record.kind,), (FACT[task],))
        # a seed of its own: the pool's first draw must not be the one that just decided "not lettered"
        # (with `seed` itself, only categories in the top 40% of the cumulative weights were ever drawn)
        return self.pool.sample(rng.randrange(2**63), kind=record.kind)


def training_records(realdata: Path, *, tuxpaint: Path | None, max_real: int, max_tux_speech: int,
                     seed: int) -> list[AudioRecord]:  # fmt: skip
    """The ``train`` rows: up to ``max_real`` realdata clips (spread evenly over its sources), every
    training-side Tux Paint animal call and up to ``max_tux_speech`` of its spoken descriptions."""
    from desta.data.sources.realdata import read_realdata
    from desta.data.sources.tuxpaint import read_tuxpaint

    rng = random.Random(seed)
    by_source: dict[str, list[AudioRecord]] = defaultdict(list)
    for r in read_realdata(realdata, split="train"):
        by_source[r.id.split("/")[0]].append(r)
    real = _spread(by_source, max_real, rng)
    tux: list[AudioRecord] = []
    if tuxpaint is not None:
        recs = list(read_tuxpaint(tuxpaint, split="train"))
        tux = [r for r in recs if r.kind == "sound" and r.attributes.get("Animal")]
        by_lang: dict[str, list[AudioRecord]] = defaultdict(list)
        for r in recs:
            if r.kind == "speech":
                by_lang[r.language or ""].append(r)
        tux += _spread(by_lang, max_tux_speech, rng)
    out = real + tux
    rng.shuffle(out)
    return out


def _spread(groups: dict[str, list[AudioRecord]], total: int, rng: random.Random) -> list[AudioRecord]:
    """Up to ``total`` records, as evenly as the groups allow (a small group gives all it has)."""
    pools = {k: rng.sample(v, len(v)) for k, v in sorted(groups.items())}
    out: list[AudioRecord] = []
    while len(out) < total and any(pools.values()):
        for k in list(pools):
            if pools[k] and len(out) < total:
                out.append(pools[k].pop())
    return out


def generate_real(opts, records: list[AudioRecord], out: Path, content_clips: int = 200) -> Path:
    """Self-generated targets for ``records`` into ``out`` (resumable) with the recipe's settings
    (:func:`desta.recipes.tiny.stages.generate_config`; the questions from :class:`LabelQuestions`), and a
    second, content question (:data:`CONTENT_WEIGHTS`) for up to ``content_clips`` clips with a transcript
    and a gender into ``out-content``; returns ``out``."""
    from desta.data.backends import TransformersBackend
    from desta.data.instructions import InstructionPool
    from desta.data.pipeline import run_generation
    from desta.recipes.tiny.stages import BACKBONE, generate_config

    backend = TransformersBackend(BACKBONE, precision=opts.precision)
    cfg = generate_config(opts, category_weights=())  # the samplers below carry the task mix
    pool = LabelQuestions(InstructionPool.load().weighted(dict(OPEN_WEIGHTS)), opts.mcq_fraction)
    run_generation(records, out, backend, cfg, pool=pool, total_records=len(records))
    # a second question for clips with a transcript: what is said, alone or with the speaker's gender
    # (the README's question), so that answers quote the transcript and add what the voice tells
    said = [r for r in records if r.kind == "speech" and r.transcript and r.attributes.get("Gender")]
    said = said[:content_clips]
    content = InstructionPool.load().weighted({c: w for c, w in CONTENT_WEIGHTS})
    run_generation(said, out.with_name(out.name + "-content"), backend, cfg, pool=content, total_records=len(said))
    return out


# ------------------------------------------------------------------------------ held-out suite

OPEN = {
    "gender": "Is the speaker a man or a woman?",
    "emotion": "What emotion does the speaker express?",
    "language": "What language is the speaker using?",
    "animal": "What animal makes this sound?",
}
TWO_PART = "What is said, and is the speaker a man or a woman?"


def heldout_records(realdata: Path, tuxpaint: Path | None) -> list[AudioRecord]:
    """Every ``heldout`` realdata clip and the held-out Tux Paint animal calls, set ``real-heldout``."""
    from desta.data.sources.realdata import read_realdata
    from desta.data.sources.tuxpaint import read_tuxpaint

    recs = list(read_realdata(realdata, split="heldout"))
    if tuxpaint is not None:
        recs += [r for r in read_tuxpaint(tuxpaint, split="heldout", kinds=("sound",)) if r.attributes.get("Animal")]
    return [r.with_(attributes={**r.attributes, "Set": "real-heldout"}) for r in recs]


def heldout_items(records: list[AudioRecord], *, per_class: int = 30, seed: int = 0) -> list[dict[str, Any]]:
    """Lettered questions (gender per class, emotion, language, animal: up to ``per_class`` clips of each
    gold value, spread over speakers by the record order) and open questions (a third as many), plus the
    README's two-part question on clips with a transcript and a gender."""
    rng = random.Random(seed)
    by_gold: dict[tuple[str, str], list[AudioRecord]] = defaultdict(list)
    for r in rng.sample(records, len(records)):
        for task, gold in label_tasks(r):
            by_gold[(task, gold)].append(r)
    items: list[dict[str, Any]] = []
    for (task, gold), recs in sorted(by_gold.items()):
        for i, r in enumerate(recs[:per_class]):
            base = {"set": "real-heldout", "record": r, "task": task, "gold": gold}
            q = make_mcq(task, gold, random.Random(f"{seed}:{r.id}:{task}"), STEMS[task][0])
            items.append({**base, "format": "mcq", "question": q.text, "mcq": q})
            if i % 3 == 0:
                items.append({**base, "format": "open", "question": OPEN[task]})
    two = [r for r in rng.sample(records, len(records)) if r.transcript and r.attributes.get("Gender")]
    for g in ("Male", "Female"):
        for r in [r for r in two if r.attributes["Gender"] == g][: per_class // 2]:
            items.append({"set": "real-heldout", "record": r, "task": "two-part", "gold": g.lower(),
                          "format": "open", "question": TWO_PART})  # fmt: skip
    return items


def score_real_item(item: dict[str, Any], answer: str) -> dict[str, Any]:
    """:func:`desta.recipes.tiny.heldout.score_item` plus open emotion and animal questions (exactly the
    labelled emotion; the animal's name) and the README's two-part question (half the transcript's words,
    the right gender, and not the question quoted back)."""
    from desta.data.grounding import grounding_failure, stated_emotions
    from desta.recipes.tiny.heldout import content_recall, predicted_gender, score_item
    from desta.rules import score_gender, words

    out = score_item(item, answer)
    if item["format"] != "open":
        return out
    r: AudioRecord = item["record"]
    if item["task"] == "emotion":
        said = stated_emotions(answer)
        out["predicted"] = next(iter(said)) if len(said) == 1 else ("several" if said else "none")
        out["correct"] = said == {item["gold"]}
    elif item["task"] == "animal":
        out["correct"] = grounding_failure(answer, r, ("animal",)) is None
    elif item["task"] == "two-part":
        recall = content_recall(answer, {**item, "gold": r.transcript})
        quoted_back = " ".join(words(TWO_PART)) in " ".join(words(answer))  # the question itself as "what is said"
        out.update(recall=recall, quoted_back=quoted_back, predicted=predicted_gender(answer, r.transcript))
        out["correct"] = recall >= 0.5 and score_gender(answer, item["gold"], r.transcript) and not quoted_back
    return out


def suite(realdata: Path, tuxpaint: Path | None, *, per_class: int = 30, emotion_per_class: int = 12,
          asterisk_per_gender: int = 12, seed: int = 0) -> list[dict[str, Any]]:  # fmt: skip
    """The held-out items: :func:`heldout_items` on the unseen speakers (emotion capped at
    ``emotion_per_class`` clips per emotion) and the unseen asterisk voices (set ``asterisk-unseen``:
    gender and language, lettered and open)."""
    from desta.recipes.tiny.heldout import ASTERISK_DIR, asterisk_records, suite_items

    items = heldout_items(heldout_records(realdata, tuxpaint), per_class=per_class, seed=seed)
    kept, seen = [], defaultdict(int)
    for it in items:
        if it["task"] == "emotion" and it["format"] == "mcq":
            seen[it["gold"]] += 1
            if seen[it["gold"]] > emotion_per_class:
                continue
        kept.append(it)
    if asterisk_per_gender and ASTERISK_DIR.is_dir():
        ast = [r for r in asterisk_records(per_gender=asterisk_per_gender, numbers=0)
               if r.attributes.get("Set") == "asterisk-unseen"]  # fmt: skip
        kept += [it for it in suite_items(ast, seed, both_formats=True) if it["task"] in ("gender", "language")]
    return kept


def summarize(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy per ``set/task/format`` and per gold class of lettered gender questions, and the share of
    lettered answers that name exactly one option."""
    acc: dict[str, list[bool]] = defaultdict(list)
    for s in samples:
        acc[f"{s['set']}/{s['task']}/{s['format']}"].append(bool(s["correct"]))
        if s["task"] == "gender" and s["format"] == "mcq":
            acc[f"{s['set']}/gender/mcq/{s['gold']}"].append(bool(s["correct"]))
        if s["format"] == "mcq":
            acc["all/mcq/one-option"].append(s.get("n_chosen") == 1)
    return {k: {"accuracy": round(100 * sum(v) / len(v), 1), "n": len(v)} for k, v in sorted(acc.items())}


def evaluate_real(model, items: list[dict[str, Any]], done: Path, *, log=None) -> dict[str, Any]:
    """Greedy answers of ``model`` to ``items`` (resumable through ``done``), scored and summarized."""
    from desta.recipes.tiny.heldout import run_suite

    samples = run_suite(model, items, batch=8, max_new_tokens=40, done=done, log=log, score=score_real_item)
    return summarize(samples)


# ------------------------------------------------------------------------------ the whole run


def training_rows(generated: Path, records: list[AudioRecord], out: Path) -> tuple[Path, dict[str, int]]:
    """The generated rows with lettered answers that are not exactly the gold option dropped, as
    ``out/self/train.jsonl``; returns the path and counts."""
    from desta.data.pipeline import shard_paths
    from desta.data.records import read_jsonl, write_jsonl
    from desta.recipes.tiny.rows import verify_mcq_rows

    folders = [generated, generated.with_name(generated.name + "-content")]
    rows = [row for folder in folders if folder.is_dir() for shard in shard_paths(folder) for row in read_jsonl(shard)]
    kept, dropped = verify_mcq_rows(rows, {r.id: r for r in records})
    write_jsonl(out / "self" / "mcq-rejects.jsonl", dropped)
    path = out / "self" / "train.jsonl"
    write_jsonl(path, kept)
    mcq = sum(1 for r in kept if r.get("meta", {}).get("category") == "mcq")
    return path, {"generated": len(rows), "mcq_dropped": len(dropped), "rows": len(kept), "mcq_rows": mcq}


def run_real(opts) -> dict[str, Any]:
    """``desta recipe tiny --realdata DIR``: records, self-generation, training from a fresh adapter,
    the held-out suites, model card; every stage skips what is already on disk under ``opts.out_dir``."""
    import json
    import time

    import torch

    from desta.recipes.tiny import log
    from desta.recipes.tiny.stages import train_stage

    torch.set_num_threads(opts.threads)
    out = Path(opts.out_dir)
    realdata = Path(opts.realdata)
    tux = Path(opts.tuxpaint) if opts.tuxpaint else None
    timings_path = out / "timings.json"
    timings: dict[str, float] = json.loads(timings_path.read_text()) if timings_path.exists() else {}

    def timed(name: str, fn):
        t = time.time()
        result = fn()
        if name not in timings:
            timings[name] = round(time.time() - t, 1)
            timings_path.parent.mkdir(parents=True, exist_ok=True)
            timings_path.write_text(json.dumps(timings, indent=2))
        return result

    records = training_records(realdata, tuxpaint=tux, max_real=opts.max_real, max_tux_speech=opts.max_tux_speech,
                               seed=opts.seed)  # fmt: skip
    log(f"{len(records)} training clips ({opts.realdata}, train split; Tux Paint: {tux or 'not used'})")
    generated = out / "generated-real"
    if not (out / "self" / "train.jsonl").exists():
        timed("data", lambda: generate_real(opts, records, generated))
    train_path, counts = training_rows(generated, records, out)
    log(f"training rows: {counts}")
    model_dir = timed("train", lambda: train_stage(opts, "self", train_path, Path("/")))

    import desta

    items = suite(realdata, tux, seed=opts.seed)
    results: dict[str, Any] = {"rows": counts}
    if_clips = if_records(realdata)
    models = [("trained", str(model_dir))] + ([("before", opts.compare_with)] if opts.compare_with else [])
    for name, model_ref in models:
        cached, extra = out / f"eval-{name}.json", out / f"eval-{name}-if.json"
        model = desta.load_model(model_ref) if not (cached.exists() and extra.exists()) else None
        if not cached.exists():
            log(f"held-out suite ({len(items)} questions): {name} ({model_ref})")
            summary = timed(f"eval_{name}", lambda m=model, n=name: evaluate_real(
                m, items, out / f"eval-{n}.samples.jsonl", log=log))  # fmt: skip
            cached.write_text(json.dumps(summary, indent=2))
        if not extra.exists():
            extra.write_text(json.dumps(instruction_following(model, if_clips), indent=2))
        results[name] = {**json.loads(cached.read_text()), **json.loads(extra.read_text())}
    text = out / "eval-text-backbone.json"
    if not text.exists():
        text.write_text(json.dumps(text_backbone_if(if_clips), indent=2))
    results["text_backbone"] = json.loads(text.read_text())
    report = {"results": results, "timings_s": timings, "options": _options(opts)}
    (out / "results.json").write_text(json.dumps(report, indent=2, default=str))
    log(f"done; results in {out / 'results.json'}")
    return report


IF_ITEMS = 48


def if_records(realdata: Path) -> list[AudioRecord]:
    """Held-out English clips with a transcript (the instruction-following suite's clips), in a fixed order."""
    from desta.data.sources.realdata import read_realdata

    recs = [r for r in read_realdata(realdata, split="heldout") if r.language == "en" and r.transcript]
    return random.Random(0).sample(recs, min(len(recs), IF_ITEMS))


def instruction_following(model, records: list[AudioRecord]) -> dict[str, Any]:
    """IFEval-style format checks on held-out real clips (:func:`desta.recipes.tiny.probes.if_items`) and
    the README's question on the bundled clip."""
    from desta.recipes.tiny.evaluate import example_answer
    from desta.recipes.tiny.probes import audio_conversation, if_items, if_summary

    items = if_items(records, IF_ITEMS)
    answers = [a.text for i in range(0, len(items), 8) for a in model.generate(
        [audio_conversation(it["record"], it["question"]) for it in items[i : i + 8]], max_new_tokens=64)]  # fmt: skip
    return {"instruction_following": if_summary([it["check"] for it in items], answers),
            "if_samples": [{"id": it["record"].id, "question": it["question"], "answer": a,
                            "correct": it["check"].check(a)} for it, a in zip(items, answers, strict=True)],
            "example": example_answer(model)}  # fmt: skip


def text_backbone_if(records: list[AudioRecord]) -> dict[str, Any]:
    """SmolLM2 given the gold transcript as text, on the same format checks: the reference."""
    from desta.data.backends import TransformersBackend
    from desta.data.generate import SamplingParams
    from desta.recipes.tiny import tiny_model_config
    from desta.recipes.tiny.probes import if_items, if_summary, text_conversation

    system = tiny_model_config().system_prompt
    items = if_items(records, IF_ITEMS)
    backend = TransformersBackend("offline:smollm2-135m-instruct")
    convs = [text_conversation(it["record"], it["question"], it["record"].transcript, system) for it in items]
    texts = [r.text for i in range(0, len(convs), 8)
             for r in backend.generate(convs[i : i + 8], SamplingParams(max_new_tokens=64, temperature=0.0))]  # fmt: skip
    return {"instruction_following": if_summary([it["check"] for it in items], texts)}


def _options(opts) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(opts)

"""Evaluation stage of the desta-tiny recipe: held-out perception probes, instruction following, the
text-only reference, and the README example, each cached as ``eval-<variant>.json`` in the run folder.

A model here is anything with ``generate(conversations, max_new_tokens=...) -> [result with .text]``
(a :class:`desta.DeSTAModel`, or a scripted stand-in in tests).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desta.data.records import AudioRecord, read_records, write_jsonl
from desta.errors import DeSTAError
from desta.recipes.tiny import log
from desta.recipes.tiny.probes import (
    PERCEPTION_PROBES,
    audio_conversation,
    if_items,
    if_summary,
    perception_items,
    text_conversation,
)

if TYPE_CHECKING:
    from desta.recipes.tiny import TinyOptions

README_QUESTION = "What is said, and is the speaker a man or a woman?"
BATCH = 8  # conversations per generate call


def batched(items: list, n: int) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def held_out_clips(corpus: Path, opts: TinyOptions) -> list[AudioRecord]:
    """The evaluation's held-out clips: ``test.jsonl`` shuffled with the recipe seed, first ``eval_clips``."""
    test = [r.with_(audio=str(corpus / r.audio)) for r in read_records(corpus / "test.jsonl")]
    random.Random(opts.seed).shuffle(test)
    return test[: opts.eval_clips]


def evaluate_model(model, corpus: Path, opts: TinyOptions) -> dict[str, Any]:
    """Perception accuracy per probe and instruction-following rate on held-out clips.

    Every answer is kept under ``"samples"`` (one dict per question, with its gold label or format
    check and whether it was scored correct); the recipe writes them to ``samples-<variant>.jsonl``.
    """
    probes = {p.name: p for p in PERCEPTION_PROBES}
    test = held_out_clips(corpus, opts)
    per_probe: dict[str, list[bool]] = {}
    examples, samples = [], []
    for chunk in batched(perception_items(test), BATCH):
        convs = [audio_conversation(it["record"], it["question"]) for it in chunk]
        answers = model.generate(convs, max_new_tokens=opts.eval_max_new_tokens)
        for it, ans in zip(chunk, answers, strict=True):
            ok = probes[it["probe"]].score(ans.text, it["gold"])
            per_probe.setdefault(it["probe"], []).append(ok)
            sample = {
                "probe": it["probe"],
                "question": it["question"],
                "gold": it["gold"],
                "answer": ans.text,
                "correct": ok,
            }
            samples.append({"id": it["record"].id, **sample})
            if sum(ex["probe"] == it["probe"] for ex in examples) < 2:
                examples.append(sample)
    summary, if_samples = evaluate_instruction_following(model, test, opts)
    return {
        "perception": {k: {"accuracy": sum(v) / len(v), "n": len(v)} for k, v in per_probe.items()},
        "instruction_following": summary,
        "examples": examples,
        "samples": samples + if_samples,
    }


def evaluate_instruction_following(
    model, test: list[AudioRecord], opts: TinyOptions
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The IFEval-style items on held-out speech clips -> (``if_summary`` dict, one sample per item)."""
    ifs = if_items(test, opts.eval_if_items)
    answers: list[str] = []
    for chunk in batched(ifs, BATCH):
        out = model.generate(
            [audio_conversation(it["record"], it["question"]) for it in chunk], max_new_tokens=64
        )
        answers += [a.text for a in out]
    return if_summary([it["check"] for it in ifs], answers), if_samples(ifs, answers)


def if_samples(items: list[dict[str, Any]], answers: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "id": it["record"].id,
            "probe": "instruction_following",
            "check": it["check"].name,
            "question": it["question"],
            "answer": a,
            "correct": it["check"].check(a),
        }
        for it, a in zip(items, answers, strict=True)
    ]


def check_same_rate(before: dict[str, Any], now: dict[str, Any], what: str) -> None:
    """Refuse a rescoring that disagrees with the rate a cached run reported."""
    if (before["rate"], before["n"]) != (now["rate"], now["n"]):
        raise DeSTAError(
            f"rescoring {what} instruction following gave {now['rate']:.3f} (n={now['n']}) where the run reported"
            f" {before['rate']:.3f} (n={before['n']}): the model, clips or checks changed since; rerun the"
            " evaluation (delete its eval-*.json) instead of mixing results"
        )


def example_answer(model) -> dict[str, Any]:
    """The README's first command on the bundled clip, as the card reports it (greedy decoding)."""
    from desta.model.load import example_clip

    clip = AudioRecord("example", example_clip(), "bundled")
    result = model.generate([audio_conversation(clip, README_QUESTION)], max_new_tokens=64)[0]
    return {
        "question": README_QUESTION,
        "answer": result.text.strip(),
        "transcripts": list(result.transcripts),
    }


def evaluate_text_backbone(corpus: Path, opts: TinyOptions) -> dict[str, Any]:
    """SmolLM2 with the ground-truth transcript as text: the instruction-following reference."""
    from desta.data.backends import TransformersBackend
    from desta.data.generate import SamplingParams
    from desta.recipes.tiny import tiny_model_config

    system = tiny_model_config().system_prompt  # the audio models' default (their training rows' prompt)
    ifs = if_items(held_out_clips(corpus, opts), opts.eval_if_items)
    backend = TransformersBackend("offline:smollm2-135m-instruct")
    texts: list[str] = []
    for chunk in batched(ifs, BATCH):
        convs = [
            text_conversation(it["record"], it["question"], it["record"].transcript, system) for it in chunk
        ]
        texts += [r.text for r in backend.generate(convs, SamplingParams(max_new_tokens=64, temperature=0.0))]
    return {
        "instruction_following": if_summary([it["check"] for it in ifs], texts),
        "samples": if_samples(ifs, texts),
    }


def evaluate_variant(variant: str, model_dir: Path, corpus: Path, opts: TinyOptions) -> dict[str, Any]:
    """A trained adapter's held-out results plus the README example; every answer goes to
    ``samples-<variant>.jsonl`` in the run folder."""
    import desta

    model = desta.load_model(str(model_dir))
    results = evaluate_model(model, corpus, opts)
    write_jsonl(Path(opts.out_dir) / f"samples-{variant}.jsonl", results.pop("samples"))
    results["example"] = example_answer(model)
    if opts.heldout_per_gender:  # the real recordings no corpus clip comes from (desta.recipes.tiny.heldout)
        from desta.recipes.tiny.heldout_report import heldout_summary

        log(f"asking the {variant}-target adapter about held-out real recordings")
        results["heldout"] = heldout_summary(
            model, Path(opts.out_dir) / f"heldout-{variant}", per_gender=opts.heldout_per_gender
        )
    return results


def upgrade_cached(results: dict[str, Any], variant: str, corpus: Path, opts: TinyOptions) -> bool:
    """Fill what a run from before the card showed the bundled example, or before per-check IF rates,
    lacks (loading the adapter once); True when ``results`` changed."""
    no_example = "example" not in results
    no_checks = "per_check" not in results["instruction_following"]
    if not (no_example or no_checks):
        return False
    import desta

    out = Path(opts.out_dir)
    model = desta.load_model(str(out / f"train-{variant}" / "model"))
    if no_example:
        results["example"] = example_answer(model)
    if no_checks:
        log(f"rescoring instruction following of the {variant}-target adapter per format check")
        summary, samples = evaluate_instruction_following(model, held_out_clips(corpus, opts), opts)
        check_same_rate(results["instruction_following"], summary, variant)
        results["instruction_following"] = summary
        write_jsonl(out / f"samples-{variant}-instruction_following.jsonl", samples)
    return True


def text_backbone_results(corpus: Path, opts: TinyOptions) -> dict[str, Any]:
    """The text reference, from ``eval-text_backbone.json`` when it is there and has per-check rates."""
    out = Path(opts.out_dir)
    cached = out / "eval-text_backbone.json"
    old = json.loads(cached.read_text()) if cached.exists() else None
    if old and "per_check" in old.get("instruction_following", {}):
        return old
    results = evaluate_text_backbone(corpus, opts)
    if old:  # a run from before per-check rates: the rerun must agree with what it reported
        check_same_rate(old["instruction_following"], results["instruction_following"], "text")
    write_jsonl(out / "samples-text_backbone.jsonl", results.pop("samples"))
    cached.write_text(json.dumps(results, indent=2))
    return results

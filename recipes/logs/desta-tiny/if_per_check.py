"""Instruction following of a `desta recipe tiny` run, per format check, with every answer.

Reruns only the instruction-following items of the recipe's evaluation (same held-out clips, same
questions, greedy) for the trained adapters and for SmolLM2 given the transcript as text, so runs made
before the recipe recorded per-check rates can be read the same way.

    python recipes/logs/desta-tiny/if_per_check.py runs/tiny4 > recipes/logs/desta-tiny/if-per-check.md
"""

import json
import random
import sys
from pathlib import Path

import torch

import desta
from desta.data.records import read_records
from desta.train.probes import audio_conversation, if_items, if_summary
from desta.train.tiny import TinyOptions, _batched, _if_samples, if_check_lines


def main(run: Path, threads: int = 1) -> None:
    torch.set_num_threads(threads)
    opts_saved = json.loads((run / "results.json").read_text())["options"]
    opts = TinyOptions(**{k: v for k, v in opts_saved.items() if k in TinyOptions.__dataclass_fields__})
    corpus = run / "corpus"
    test = [r.with_(audio=str(corpus / r.audio)) for r in read_records(corpus / "test.jsonl")]
    random.Random(opts.seed).shuffle(test)
    ifs = if_items(test[: opts.eval_clips], opts.eval_if_items)
    res, samples = {}, {}
    for v in ("self", "task"):
        model = desta.load_model(str(run / f"train-{v}" / "model"))
        answers = []
        for chunk in _batched(ifs, 8):
            answers += [a.text for a in model.generate([audio_conversation(it["record"], it["question"]) for it in chunk], max_new_tokens=64)]
        res[v] = {"instruction_following": if_summary([it["check"] for it in ifs], answers)}
        samples[v] = _if_samples(ifs, answers)
        del model
    from desta.train.tiny import evaluate_text_backbone

    tb = evaluate_text_backbone(corpus, opts)
    samples["text_backbone"] = tb.pop("samples")
    res["text_backbone"] = tb
    saved = {v: json.loads((run / f"eval-{v}.json").read_text()) for v in ("self", "task")}
    print(f"# Instruction following per format check ({run.name}, {len(ifs)} items)\n")
    print("Rerun of the recipe's instruction-following items (`if_per_check.py`); the overall rates the")
    print("recipe stored were " + ", ".join(f"{v} {saved[v]['results']['instruction_following']['rate']:.0%}" for v in saved)
          + "; this rerun gives " + ", ".join(f"{v} {res[v]['instruction_following']['rate']:.0%}" for v in res) + ".")
    print("\n".join(if_check_lines(res)))
    print("\n## Answers\n")
    for i, it in enumerate(ifs):
        print(f"- **{it['check'].name}**: {it['question']}")
        for v in res:
            s = samples[v][i]
            print(f"  - {v} ({'pass' if s['correct'] else 'fail'}): {json.dumps(s['answer'])}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

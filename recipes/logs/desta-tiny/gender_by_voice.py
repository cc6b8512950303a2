"""Gender probe of a `desta recipe tiny` run's self-target adapter, by corpus and true gender.

Same held-out clips, question, decoding and scoring as the recipe's evaluation.

    python recipes/logs/desta-tiny/gender_by_voice.py runs/tiny4 > recipes/logs/desta-tiny/gender-by-voice.md
"""

import collections
import sys
from pathlib import Path

import torch
from desta.train.probes import PERCEPTION_PROBES, audio_conversation, perception_items
from desta.train.tiny import TinyOptions, _batched, held_out_clips

import desta


def main(run: Path) -> None:
    torch.set_num_threads(1)
    opts = TinyOptions()
    items = [it for it in perception_items(held_out_clips(run / "corpus", opts)) if it["probe"] == "gender"]
    probe = next(p for p in PERCEPTION_PROBES if p.name == "gender")
    model = desta.load_model(str(run / "train-self" / "model"))
    right: dict[tuple[str, str], list[bool]] = collections.defaultdict(list)
    heard: collections.Counter[str] = collections.Counter()
    for chunk in _batched(items, 8):
        convs = [audio_conversation(it["record"], it["question"]) for it in chunk]
        for it, out in zip(chunk, model.generate(convs, max_new_tokens=opts.eval_max_new_tokens)):
            rec = it["record"]
            right[rec.corpus, it["gold"]].append(probe.score(out.text, it["gold"]))
            says = [g for g in ("Female", "Male") if probe.score(out.text, g)]
            heard[says[0] if len(says) == 1 else "neither or both"] += 1
    total = sum(len(v) for v in right.values())
    print(f"# Gender on held-out clips by corpus ({run.name}, self targets, {total} clips)\n")
    print("| corpus | true gender | correct |\n|---|---|---|")
    for (corpus, gender), oks in sorted(right.items()):
        print(f"| {corpus} | {gender} | {sum(oks)}/{len(oks)} |")
    print("\nWhat the answers say: " + ", ".join(f"{k} {n}" for k, n in heard.most_common()) + ".")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

"""The model card of desta-tiny trained on real recordings (``desta recipe tiny --realdata``)."""

from __future__ import annotations

from typing import Any

#: where each corpus of the realdata collection comes from, and what its licence means for the adapter
DATA_SOURCES = (
    ("RAVDESS", "Zenodo 1188976", "CC BY-NC-SA 4.0", "non-commercial, share-alike"),
    ("EmoDB", "emodb.bilderbar.info", "free for research", "research use"),
    ("speechocean762", "OpenSLR 101", "CC BY 4.0", "attribution"),
    ("Korean emotional speech (emotiontts_open_db)", "github.com/emotiontts/emotiontts_open_db",
     "CC BY-NC-SA 4.0, research only", "non-commercial research"),
    ("URDU", "github.com/siddiquelatif/URDU-Dataset", "research only", "research use"),
    ("TESS", "University of Toronto Dataverse", "CC BY-NC-ND 4.0", "non-commercial (not a derivative: used to train only)"),
    ("FSDD", "github.com/Jakobovski/free-spoken-digit-dataset", "CC BY-SA 4.0", "share-alike"),
    ("CatMeows", "Zenodo 4008297", "CC BY 4.0", "attribution"),
    ("Tux Paint stamps", "Debian tuxpaint-stamps-default", "GPL-2+", "GPL"),
)  # fmt: skip

ROWS = (
    ("gender, lettered (2 options)", "real-heldout/gender/mcq"),
    ("  female voices", "real-heldout/gender/mcq/female"),
    ("  male voices", "real-heldout/gender/mcq/male"),
    ("gender, open", "real-heldout/gender/open"),
    ("emotion, lettered (4 options)", "real-heldout/emotion/mcq"),
    ("emotion, open", "real-heldout/emotion/open"),
    ("language, lettered (4 options)", "real-heldout/language/mcq"),
    ("language, open", "real-heldout/language/open"),
    ("animal, lettered (4 options)", "real-heldout/animal/mcq"),
    ("animal, open", "real-heldout/animal/open"),
    ("two-part README question", "real-heldout/two-part/open"),
    ("unseen asterisk voices: language, lettered", "asterisk-unseen/language/mcq"),
    ("unseen asterisk voices: language, open", "asterisk-unseen/language/open"),
    ("unseen asterisk voices: gender, lettered", "asterisk-unseen/gender/mcq"),
    ("lettered answers naming exactly one option", "all/mcq/one-option"),
)


def _cell(summary: dict[str, Any], key: str) -> str:
    v = summary.get(key)
    return f"{v['accuracy']:.0f}% (n={v['n']})" if v else "-"


def results_table(results: dict[str, Any]) -> list[str]:
    """Markdown rows: the trained adapter and, where measured, the model it replaces."""
    names = [n for n in ("trained", "before") if n in results]
    head = {"trained": "this model", "before": "before (TTS-trained desta-tiny)"}
    lines = ["| question | " + " | ".join(head[n] for n in names) + " |", "|---" * (len(names) + 1) + "|"]
    for label, key in ROWS:
        lines.append(f"| {label} | " + " | ".join(_cell(results[n], key) for n in names) + " |")
    if all("instruction_following" in results[n] for n in names):
        ifr = [results[n]["instruction_following"] for n in names]
        lines.append("| instruction following (format checks, held-out English clips) | "
                     + " | ".join(f"{100 * r['rate']:.0f}% (n={r['n']})" for r in ifr) + " |")  # fmt: skip
    return lines


def _reference_lines(res: dict[str, Any]) -> list[str]:
    lines = []
    text = res.get("text_backbone", {}).get("instruction_following")
    if text:
        lines += [f"SmolLM2-135M-Instruct given the gold transcript as text passes {100 * text['rate']:.0f}% "
                  f"(n={text['n']}) of the same format checks.", ""]  # fmt: skip
    ex = res.get("trained", {}).get("example")
    if ex:
        lines += [f"The bundled example clip, asked *{ex['question']}* (Whisper base hears "
                  f"\"{' '.join(ex['transcripts'])}\"):", "", f"> {ex['answer']}", ""]  # fmt: skip
    return lines


def real_model_card(report: dict[str, Any]) -> str:
    res, tim, opts = report["results"], report["timings_s"], report["options"]
    rows = res.get("rows", {})
    minutes = {k: round(v / 60) for k, v in tim.items()}
    lines = [
        "# desta-tiny",
        "",
        "A small DeSTA2.5-style audio LLM trained by `desta`'s own pipeline on a CPU, on real recordings:",
        "frozen Whisper base (encoder taps + ASR) and frozen SmolLM2-135M-Instruct, joined by a 2-layer",
        "Q-Former connector with 64 queries, plus LoRA (r=16) on SmolLM2's q/k/v projections. These are the",
        "only trained weights, shipped in fp16. It is the embedded default of `desta.load_model()`, `desta ask`",
        "and `desta serve`; a demonstration model, far below DeSTA2.5-Audio (Llama-3.1-8B) in every ability.",
        "",
        "## Training data and licences",
        "",
        "Real people and real animals only, no synthesized speech: the `train` split of the realdata",
        "collection (speakers disjoint from its `heldout` split) and the training side of the Tux Paint",
        "stamps (a stable hash of each stamp keeps its sound and spoken descriptions on one side).",
        "No benchmark data (MMAU, MMAR, SAKURA, Speech-IFEval, VoiceBench, AIR-Bench, Dynamic-SUPERB) and",
        "nothing of Common Voice, CREMA-D, ESC-50 or IEMOCAP was used for training, tuning or selection.",
        "",
        "| corpus | where to get it | licence | what it means |",
        "|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in DATA_SOURCES],
        "",
        "**Several of these licences are non-commercial or research-only (RAVDESS, the Korean corpus, TESS,",
        "EmoDB, URDU). The adapter weights were trained on them: treat desta-tiny as a research and",
        "demonstration model, not for commercial use.** The code of `desta` is unaffected; train your own",
        "adapter on data you may use (`desta recipe tiny --realdata DIR` takes any folder in the same layout).",
        "",
        "## How it was made (`desta recipe tiny --realdata DIR --tuxpaint DIR`)",
        "",
        f"- Clips: up to {opts['max_real']} realdata training clips spread evenly over its sources, every",
        f"  training-side Tux Paint animal call and up to {opts['max_tux_speech']} of its spoken descriptions",
        "  spread over its languages.",
        "- Targets: SmolLM2-135M-Instruct (the backbone itself) answered a question about each clip from its",
        f"  seed description (temperature {opts['temperature']}, {opts['max_new_tokens']} new tokens). "
        f"{round(100 * opts['mcq_fraction'])}% of the questions are lettered",
        "  multiple-choice questions about one of the clip's labels (gender; emotion, language, animal with",
        "  four shuffled options), the rest open questions of the instruction pool. An answer that missed or",
        f"  contradicted the label was sampled again up to {opts['resample']} times; lettered answers that did not",
        "  choose exactly the gold option were dropped.",
        f"- Rows: {rows.get('generated', '?')} generated, {rows.get('mcq_dropped', '?')} lettered answers dropped,"
        f" {rows.get('rows', '?')} trained on ({rows.get('mcq_rows', '?')} lettered).",
        "- Training: `recipes/desta-tiny.yaml` from a fresh connector and LoRA (AdamW, lr 1e-3, warmup then",
        f"  cosine, batch 8, {opts.get('epochs') or 3} epochs; loss on the response only).",
        "- Encoder, chosen by measurement: a linear probe on the four tapped Whisper-base layers (mean and",
        "  standard deviation over time), fit on training speakers, scores gender 99%, language 100% and",
        "  emotion 69% (eight classes) on the held-out speakers (`bench/encoder_probe.py`); no complete larger",
        "  Whisper installs offline, so Whisper base stays.",
        "- Time on the 2-core CI machine: " + ", ".join(f"{k} {v} min" for k, v in minutes.items()) + ".",
        "",
        "## Held-out results (unseen speakers, greedy)",
        "",
        "Lettered questions in the benchmark format (`What is the gender of the speaker? (a) female (b) male`),",
        "scored as right only when the answer chooses exactly the gold option; open questions by the keyword",
        "rules of `desta.rules`; the two-part question needs half the transcript's words, the right gender,",
        "and not the question quoted back. `real-heldout`: the realdata `heldout` speakers and held-out Tux",
        "Paint animal calls; asterisk: the Debian asterisk prompt voices in French, Italian, Russian and",
        "Spanish, which no training row contains.",
        "",
        *results_table(res),
        "",
        *_reference_lines(res),
        "## Limitations",
        "",
        "- A 135M-parameter LLM writes weak targets and weak answers: expect generic, sometimes wrong text.",
        "- Emotion is acted speech (RAVDESS, TESS, EmoDB, the Korean and Urdu corpora); spontaneous emotion",
        "  and noisy recordings are barely covered. Sounds are cats and one call per Tux Paint animal.",
        "- Spoken content comes mostly from the Whisper base transcript in the prompt, not from the connector.",
        "",
        "Reproduce: `desta recipe tiny --realdata DIR --tuxpaint /usr/share/tuxpaint/stamps --ship`",
        "(the figures above come from `results.json` of that run).",
    ]
    return "\n".join(lines) + "\n"

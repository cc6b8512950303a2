"""Where desta-tiny's spoken-language answers go wrong on the real held-out suite: (1) Whisper base's own
language detection on each clip (the token the transcriber decodes with; the transcript is then in that
language), (2) SmolLM2-135M-Instruct naming the language from the transcript as text alone (no audio),
(3) desta-tiny's open answers to the same clips (from a held-out samples file).

    python recipes/logs/desta-tiny/language_probe.py recipes/logs/desta-tiny/heldout-real-baseline-samples.jsonl \
        [--text-llm offline:qwen2.5-coder-0.5b-instruct] > recipes/logs/desta-tiny/language-probe.md

``--text-llm ID`` also asks another text LLM (a backbone candidate) the same text-only question.
"""

from __future__ import annotations

import json
import sys
from collections import Counter

import torch

from desta.audio import load_audio
from desta.model.load import load_model
from desta.model.processor import log_mel_windows
from desta.recipes.tiny.heldout import predicted_language, real_records
from desta.rules import LANGUAGES

QUESTION = "What language is this text written in? Answer with the language's name."


def ask_text(llm, tokenizer, transcript: str) -> str:
    msgs = [{"role": "user", "content": f'Text: "{transcript}"\n{QUESTION}'}]
    ids = tokenizer.apply_chat_template(
        msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = llm.generate(**ids, max_new_tokens=16, do_sample=False)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip()


@torch.no_grad()
def main() -> None:
    torch.set_num_threads(2)
    model = load_model()
    other = None
    if "--text-llm" in sys.argv:
        from desta.model.backbones import load_llm

        other_id = sys.argv[sys.argv.index("--text-llm") + 1]
        other = load_llm(other_id)
    from desta.model.perception import WhisperTranscriber

    asr = WhisperTranscriber(model.perception.whisper, 64)
    tok = asr.tokenizer
    codes = [tok.decode([t]).strip("<|>") for t in tok.all_language_tokens]
    samples = [json.loads(line) for line in open(sys.argv[1])]
    desta_open = {s["id"]: s for s in samples if s["task"] == "language" and s["format"] == "open"}
    rows = []
    for r in real_records():
        if r.kind != "speech" or not r.language:
            continue
        mel = log_mel_windows([load_audio(r.audio, sr=16000)], model.perception.n_mels, True)
        states = model.perception.encode(mel).last
        sot = torch.full((1, 1), tok.sot, dtype=torch.long)
        logits = asr._step(sot, states, None)[0][0, -1]
        detected = codes[int(logits[torch.tensor(tok.all_language_tokens)].argmax())]
        transcript = asr.transcribe(states)[0]
        text_answer = ask_text(model.llm_model, model.tokenizer, transcript)
        other_answer = ask_text(*other, transcript) if other else ""
        d = desta_open.get(r.id)
        rows.append({
            "id": r.id, "gold": LANGUAGES[r.language], "whisper": LANGUAGES.get(detected, detected),
            "transcript": transcript, "text_only": predicted_language(text_answer), "text_answer": text_answer,
            "desta": d["predicted"] if d else None, "other": predicted_language(other_answer),
            "other_answer": other_answer,
        })  # fmt: skip
    n = len(rows)
    print("# Spoken language on the real held-out suite: Whisper, the text LLM, desta-tiny\n")
    print(f"{n} real speech clips with a language label (recipes/tiny/heldout.py real_records).\n")
    print("| stage | right |\n|---|---|")
    print(f"| Whisper base language detection | {sum(x['whisper'] == x['gold'] for x in rows)}/{n} |")
    print(
        f"| SmolLM2 names the language from the transcript alone | {sum(x['text_only'] == x['gold'] for x in rows)}/{n} |"
    )
    if other:
        print(
            f"| {other_id} names it from the transcript alone | {sum(x['other'] == x['gold'] for x in rows)}/{n} |"
        )
    both = [x for x in rows if x["whisper"] == x["gold"]]
    print(
        f"| ... where Whisper detected it right | {sum(x['text_only'] == x['gold'] for x in both)}/{len(both)} |"
    )
    asked = [x for x in rows if x["desta"] is not None]
    print(
        f"| desta-tiny open answer (samples file, clips asked open) | {sum(x['desta'] == x['gold'] for x in asked)}/{len(asked)} |"
    )
    print("\nText-only answers per gold language:\n")
    for gold in sorted({x["gold"] for x in rows}):
        c = Counter(x["text_only"] for x in rows if x["gold"] == gold)
        print(f"- {gold}: {dict(c.most_common())}")
    print("\nExamples:\n")
    for x in rows[:: max(1, n // 8)]:
        print(
            f'- {x["gold"]} (Whisper: {x["whisper"]}): "{x["transcript"][:60]}" -> "{x["text_answer"][:60]}"'
        )


if __name__ == "__main__":
    main()

"""Top next tokens of a desta model answering the README question about the bundled clip, after a
given prefix: shows whether the model would go on to the second half of a compound answer.

    python recipes/logs/desta-tiny/next_token_check.py runs/tiny3/train-self/model
"""

import sys

import torch
from desta.train.probes import audio_conversation

import desta
from desta.data.records import AudioRecord
from desta.model.load import example_clip

PREFIXES = (
    "The speaker",
    "The speaker is a man.",
    'The speaker says "Unless to be rather cold-hearted and rather selfish is to be ill-disposed."',
)


def next_tokens(model, conv, prefix: str, k: int = 6) -> list[tuple[str, float]]:
    tok = model.tokenizer
    prepared = model.prepare([conv])
    ext = tok(prefix, add_special_tokens=False, return_tensors="pt")["input_ids"]
    ids = torch.cat([prepared.inputs["input_ids"], ext], 1)
    audio_mask = torch.cat([prepared.inputs["audio_mask"], torch.zeros_like(ext, dtype=torch.bool)], 1)
    with torch.no_grad():
        embeds = model.embed(ids, audio_mask, model.generator.audio_features(prepared.mel))
        logits = model.llm_model(inputs_embeds=embeds, attention_mask=torch.ones_like(ids)).logits[0, -1].float()
    top = logits.softmax(-1).topk(k)
    return [(tok.decode([int(i)]), round(float(p), 3)) for p, i in zip(top.values, top.indices)]


def main(model_dir: str) -> None:
    torch.set_num_threads(1)
    model = desta.load_model(model_dir)
    conv = audio_conversation(AudioRecord("e", example_clip(), "bundled"), "What is said, and is the speaker a man or a woman?")
    for prefix in PREFIXES:
        print(f"{prefix!r}: {next_tokens(model, conv, prefix)}")


if __name__ == "__main__":
    main(sys.argv[1])

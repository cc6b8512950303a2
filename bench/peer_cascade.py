"""The plain cascade a user might write instead of desta: transformers Whisper base transcribes the clip,
SmolLM2-135M-Instruct answers from the transcript. Run as a fresh process by bench/cold_ask.py.

    python bench/peer_cascade.py CLIP "question" [--max-new-tokens 64]
"""

from __future__ import annotations

import argparse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip")
    ap.add_argument("question")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    args = ap.parse_args()

    import soundfile as sf
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
    )

    from desta.model.backbones import resolve  # the same offline weights (local folders), nothing else
    from desta.model.vendored import import_module

    get_tokenizer = import_module("whisper.tokenizer").get_tokenizer  # vendored by scripts/setup.sh

    torch.set_num_threads(1)
    wave, sr = sf.read(args.clip, dtype="float32")
    # the offline Whisper folder has weights only: features from transformers' extractor, tokens from
    # openai-whisper's vocabulary (what a user without the hub would combine)
    whisper = WhisperForConditionalGeneration.from_pretrained(resolve("offline:whisper-base")).eval()
    features = WhisperFeatureExtractor(feature_size=whisper.config.num_mel_bins)(
        wave, sampling_rate=sr, return_tensors="pt"
    ).input_features
    wtok = get_tokenizer(True, language="en", task="transcribe")
    prompt = torch.tensor([list(wtok.sot_sequence_including_notimestamps)])
    with torch.no_grad():
        ids = whisper.generate(features, decoder_input_ids=prompt, max_new_tokens=128)
    transcript = wtok.decode([t for t in ids[0].tolist() if t < wtok.eot]).strip()
    path = resolve("offline:smollm2-135m-instruct")
    tok = AutoTokenizer.from_pretrained(path)
    llm = AutoModelForCausalLM.from_pretrained(path)
    messages = [{"role": "user", "content": f'A speech clip says: "{transcript}"\n{args.question}'}]
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = llm.generate(**ids, max_new_tokens=args.max_new_tokens, do_sample=False)
    print(tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip())


if __name__ == "__main__":
    main()

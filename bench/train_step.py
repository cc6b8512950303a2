"""Training-step throughput of the DeSTA adapter recipe.

CPU (default): the desta-tiny architecture on the real offline backbones (Whisper base + SmolLM2-135M),
batch 8, comparing the loss computed only at labelled positions (what `DeSTAModel.forward` does)
with a full-vocabulary projection over the whole context.

GPU (``--full-size``): the official architecture (Whisper-large-v3 + Llama-3.1-8B shapes, 6-layer
Q-Former) with random weights (no download), batch 12, bf16 autocast; reports samples/s and useful MFU
with the accounting of docs/performance.md (encoder forward + Q-Former 3x forward + LLM 4N per token).

    python bench/train_step.py                 # CPU, tiny
    python bench/train_step.py --precision     # CPU, tiny: also the LLM in bf16 (what `precision: fast` does)
    python bench/train_step.py --full-size     # GPU, official shapes
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _machine import machine

H100_BF16_PEAK = 989e12  # dense bf16 FLOP/s, H100 SXM datasheet


def tiny_tokenizer():
    """A minimal fast tokenizer with a chat template (the benchmark feeds ids directly)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<eos>": 1, "<ph>": 2, "<unk>": 3}
    for i in range(100):
        vocab[f"w{i}"] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    fast.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    return fast


def build(full_size: bool, device: torch.device, llm_dtype: torch.dtype = torch.float32):
    from transformers import LlamaConfig, LlamaForCausalLM, WhisperConfig, WhisperForConditionalGeneration

    from desta.model.config import DeSTAConfig
    from desta.model.desta import DeSTAModel

    if full_size:
        wcfg = WhisperConfig(d_model=1280, encoder_layers=32, decoder_layers=2, encoder_attention_heads=20, decoder_attention_heads=20,
                             encoder_ffn_dim=5120, decoder_ffn_dim=5120, num_mel_bins=128, vocab_size=51866)  # fmt: skip
        lcfg = LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                           vocab_size=128256, rope_theta=500000.0, max_position_embeddings=8192)  # fmt: skip
        cfg = DeSTAConfig(qformer_num_hidden_layers=6, placeholder_token="<ph>")
        with torch.device(device):
            whisper = WhisperForConditionalGeneration(wcfg).to(torch.bfloat16)
            llm = LlamaForCausalLM(lcfg).to(torch.bfloat16)
        lcfg._attn_implementation = "sdpa"
        model = DeSTAModel(cfg, whisper, llm, tiny_tokenizer())
        return model.to(device), cfg
    from desta.model.load import TINY_CONFIG, build_model

    model = build_model(TINY_CONFIG, device=device, llm_dtype=llm_dtype)
    return model, model.config


def make_batch(model, batch: int, seq: int, resp: int, device: torch.device, seconds: float):
    q = model.config.prompt_size
    vocab = model.llm_model.get_input_embeddings().weight.shape[0]
    ids = torch.randint(10, vocab, (batch, seq), device=device)
    audio_mask = torch.zeros(batch, seq, dtype=torch.bool, device=device)
    audio_mask[:, 20 : 20 + q] = True
    labels = torch.full((batch, seq), -100, device=device)
    labels[:, -resp:] = ids[:, -resp:]
    mel = model.perception.features([torch.randn(int(16000 * seconds)).numpy() * 0.1 for _ in range(batch)])
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "audio_mask": audio_mask, "labels": labels}, mel


def full_vocab_loss(model, inputs, feats):
    """The wasteful reference: project every position onto the vocabulary."""
    embeds = model.embed(inputs["input_ids"], inputs["audio_mask"], feats)
    logits = model.llm_model(inputs_embeds=embeds, attention_mask=inputs["attention_mask"]).logits
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), inputs["labels"][:, 1:].flatten(), ignore_index=-100)


def flops_per_sample(model, seq: int) -> float:
    """Useful FLOPs: encoder forward (2 N_enc per frame) + Q-Former 3x forward + LLM 4 N per token."""
    enc = model.perception.encoder
    n_enc = sum(p.numel() for n, p in enc.named_parameters() if "embed_positions" not in n)
    frames = 1500 if model.config.pad_audio_to_30s else 250
    conn = model.connector
    n_q = sum(p.numel() for p in conn.qformer.parameters())
    taps = len(model.config.taps)
    qformer_fwd = 2 * n_q * conn.n_queries * taps + 4 * conn.n_queries * frames * conn.layer_prompts[0].shape[-1] * len(conn.qformer.layer) * taps
    n_llm = sum(p.numel() for n, p in model.llm_model.named_parameters() if "embed_tokens" not in n)
    return 2 * n_enc * frames + 3 * qformer_fwd + 4 * n_llm * seq


def run(args) -> dict:
    device = torch.device("cuda" if args.full_size else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    model, cfg = build(args.full_size, device)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-4, betas=(0.9, 0.98), weight_decay=0.01)
    batch = args.batch or (12 if args.full_size else 8)
    seq, resp = (250, 120) if args.full_size else (160, 48)
    inputs, mel = make_batch(model, batch, seq, resp, device, seconds=10.0 if args.full_size else 5.0)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)

    def step(full: bool) -> float:
        with autocast:
            feats = model.encode_audio(mel)
            loss = full_vocab_loss(model, inputs, feats) if full else model(**inputs, audio_features=feats)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    results = {}
    for mode in ("labels_only", "full_vocab") if not args.full_size else ("labels_only",):
        for _ in range(args.warmup):
            step(mode == "full_vocab")
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(args.steps):
            step(mode == "full_vocab")
        if device.type == "cuda":
            torch.cuda.synchronize()
        dt = (time.perf_counter() - t) / args.steps
        results[mode] = {"step_s": dt, "samples_per_s": batch / dt}
    out = {"benchmark": "train_step", "full_size": args.full_size, "batch": batch, "seq": seq, "response_tokens": resp, "results": results,
           "machine": machine()}  # fmt: skip
    if args.full_size:
        fl = flops_per_sample(model, seq)
        out["tflop_per_sample"] = fl / 1e12
        out["useful_mfu_vs_h100_bf16"] = results["labels_only"]["samples_per_s"] * fl / H100_BF16_PEAK
        out["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9
    else:
        out["speedup_labels_only_vs_full_vocab"] = results["full_vocab"]["step_s"] / results["labels_only"]["step_s"]
    return out


def run_bf16(args) -> dict:
    """The labelled-positions step with the frozen LLM in bf16 (connector fp32), as `precision: fast`."""
    from desta.model.precision import cpu_has_native_bf16

    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    model, _ = build(False, device, llm_dtype=torch.bfloat16)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-4, betas=(0.9, 0.98), weight_decay=0.01)
    batch = args.batch or 8
    inputs, mel = make_batch(model, batch, 160, 48, device, seconds=5.0)
    times = []
    for i in range(args.warmup + args.steps):
        t = time.perf_counter()
        loss = model(**inputs, audio_features=model.encode_audio(mel))["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= args.warmup:
            times.append(time.perf_counter() - t)
    dt = sum(times) / len(times)
    return {"step_s": dt, "samples_per_s": batch / dt, "cpu_native_bf16": cpu_has_native_bf16()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--full-size", action="store_true", help="official shapes on a GPU")
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--precision", action="store_true", help="CPU: also time the step with the LLM in bf16")
    args = ap.parse_args()
    if args.full_size and not torch.cuda.is_available():
        raise SystemExit("--full-size needs a CUDA GPU (run it on one; the CPU mode measures the tiny recipe)")
    out = run(args)
    if args.precision and not args.full_size:
        out["bf16_llm"] = run_bf16(args)
        out["speedup_bf16_vs_fp32"] = out["results"]["labels_only"]["step_s"] / out["bf16_llm"]["step_s"]
    print(json.dumps(out, indent=2))
    name = "train_step_gpu" if args.full_size else "train_step_cpu"
    Path(__file__).parent.joinpath("results", f"{name}.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()

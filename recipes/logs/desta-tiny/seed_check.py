"""Train the self-target adapter again with another seed on the same rows, evaluate it the same way."""
import json
import time
from pathlib import Path

import torch

import desta
from desta.train.config import load_config
from desta.train.tiny import TinyOptions, evaluate_model
from desta.train.train import train

torch.set_num_threads(2)
opts = TinyOptions(out_dir="runs/tiny")
corpus = Path("runs/tiny/corpus")
out = Path("runs/tiny/train-self-seed43")
t = time.time()
cfg = load_config("recipes/desta-tiny.yaml", {"data": {"train": "runs/tiny/self/train.jsonl", "validation": "", "data_root": str(corpus)},
                                            "run": {"out_dir": str(out), "threads": 2, "seed": 43}})
summary = train(cfg)
train_s = time.time() - t
t = time.time()
res = evaluate_model(desta.load_model(str(out / "model")), corpus, opts)
Path("runs/tiny/eval-self-seed43.json").write_text(json.dumps({"results": res, "timings_s": {"train": train_s, "eval": time.time() - t}}, indent=2))
print(json.dumps({k: v["accuracy"] for k, v in res["perception"].items()}), res["instruction_following"])

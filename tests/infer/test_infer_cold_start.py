"""A cold `desta ask` imports only what its answer needs: no peft (the LoRA is merged by desta itself),
no other CLI part, not openai-whisper's model code; the Silero VAD loads on first use, not at model load."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import sys
import desta
from desta.cli import main
from desta.model.load import example_clip

load = desta.load_model
def load_model(*args, **kwargs):
    model = load(*args, **kwargs)
    assert "silero_vad" not in sys.modules and "onnxruntime" not in sys.modules, "VAD loaded with the model"
    print("loaded", file=sys.stderr)
    return model
desta.load_model = load_model

assert main(["ask", "--no-stream", "--max-new-tokens", "8", example_clip(), "What is said?"]) == 0
assert "silero_vad" in sys.modules  # the answer needed it (desta-tiny: use_vad)
unneeded = ["peft", "whisper", "whisper.model", "whisper.transcribe"] + [
    m for m in sys.modules if m.split(".")[:2] in (["desta", p] for p in ("data", "train", "serve", "eval", "recipes"))
]
imported = sorted(m for m in unneeded if m in sys.modules)
assert not imported, imported
print("ok", file=sys.stderr)
"""


@pytest.mark.slow
def test_cold_ask_imports_only_what_the_answer_needs():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "loaded" in done.stderr and done.stderr.rstrip().endswith("ok"), done.stderr
    assert done.stdout.strip(), done.stdout

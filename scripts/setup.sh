#!/usr/bin/env bash
# Set up kdcam in ./.venv. PyTorch is installed first and pinned, so that a machine
# without an NVIDIA GPU gets the CPU build (an unpinned torch pulls a multi-GB CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=".venv/bin/python -m pip"
$PIP install -q --upgrade pip >/dev/null 2>&1 || true
# The pin is the same either way; what differs is where pip finds it. On this project's
# machines torch==2.13.0 is the local CPU wheel. On another GPU-less machine, point
# PIP_EXTRA_INDEX_URL at https://download.pytorch.org/whl/cpu before running this script.
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "setup: NVIDIA GPU found: installing PyTorch 2.13.0 with CUDA" >&2
else
  echo "setup: no NVIDIA GPU: installing the CPU build of PyTorch 2.13.0" >&2
fi
$PIP install -q "torch==2.13.0"
$PIP install -q -e ".[train,test]"
# The panel's browser test drives Debian's chromium (never a browser that `playwright install` downloads).
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && ! command -v chromium >/dev/null 2>&1; then
  { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
    || echo "setup: chromium was not installed; the panel's browser test will be skipped" >&2
fi
echo "setup: done; run .venv/bin/kdcam --help" >&2

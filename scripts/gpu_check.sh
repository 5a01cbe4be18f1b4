#!/usr/bin/env bash
# kdcam GPU check: speed of the GPU engines and their output difference to the CPU engine.
# Run from anywhere on a machine with an NVIDIA GPU; writes gpu_check.json and gpu_check.md
# to $OUT (or ./gpu_check_out). Finishes in under 8 minutes (hard limit below).
#
#   bash scripts/gpu_check.sh                 # full run
#   bash scripts/gpu_check.sh --no-tensorrt   # extra arguments go to scripts/gpu_check.py
#   PYTHON=/path/to/python bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT"

# Pick an interpreter whose torch sees CUDA: $PYTHON, then the repo's .venv, then python3.
has_cuda() { "$1" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; }
PY=""
for cand in "${PYTHON:-}" .venv/bin/python python3 python; do
    [ -n "$cand" ] || continue
    command -v "$cand" >/dev/null 2>&1 || [ -x "$cand" ] || continue
    if has_cuda "$cand"; then PY="$cand"; break; fi
done

{
    echo "date: $(date -u +%FT%TZ)"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1 || echo "nvidia-smi: not available"
} | tee "$OUT/gpu_check_env.txt"

if [ -z "$PY" ]; then
    echo "gpu_check: no Python here has a torch that sees a CUDA GPU (tried \$PYTHON, .venv/bin/python, python3, python)." | tee -a "$OUT/gpu_check_env.txt" >&2
    echo "gpu_check: install a CUDA build of PyTorch, or rehearse with: python scripts/gpu_check.py --device cpu --dry-run" >&2
    exit 2
fi
"$PY" -c 'import torch; print("python:", __import__("sys").executable, "| torch", torch.__version__, "| CUDA", torch.version.cuda, "|", torch.cuda.get_device_name())' | tee -a "$OUT/gpu_check_env.txt"

# 470 s keeps the whole run (including interpreter start and the report) under 8 minutes;
# the script itself stops starting new measurements after --budget (420 s) seconds.
timeout 470 "$PY" scripts/gpu_check.py --out "$OUT" "$@"
rc=$?
[ $rc -eq 124 ] && echo "gpu_check: hit the 470 s limit; $OUT holds what was measured" >&2
exit $rc

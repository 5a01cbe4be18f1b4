#!/usr/bin/env bash
# Commit the training stage folders (docs/distill/stages): every finished stage's model and records, and the
# resumable state of the stage in progress, so that a session that ends, on a machine that is not kept, loses at
# most the steps since the last commit. Commits those paths only, whatever else is staged.
#
#   bash scripts/commit_stages.sh                                   # once
#   while sleep 1500; do bash scripts/commit_stages.sh; done &      # every 25 minutes while a stage runs
set -euo pipefail
cd "$(dirname "$0")/.."
STAGES=${STAGES:-docs/distill/stages}
git add -A -- "$STAGES"
if git diff --cached --quiet -- "$STAGES"; then
  echo "commit_stages: nothing new in $STAGES" >&2
  exit 0
fi
steps=$(for state in "$STAGES"/*/train_state.json; do  # the stages in progress, at their resumable step
  if [[ -f $state ]]; then
    printf '%s resumable at step %s; ' "$(basename "$(dirname "$state")")" \
      "$(sed -nE 's/^ *"step": ([0-9]+),?$/\1/p' "$state" | head -n 1)"
  fi
done)
git commit -q -m "Training stages checkpoint: ${steps:-finished stages only}" -- "$STAGES"
git log -1 --oneline

#!/usr/bin/env bash
# How the installed students were made: the teacher's three stages, soft labels on the `camera` mix
# (and on real footage with no ground truth), the distilled candidates of each student and the
# ablations, the choice on validation, the second stage (the whole-frame gate alone, on 512 px
# crops: it decides how much to sharpen from the whole frame, so it learns on crops closer to
# one), evaluation and shipping (engines/model/zoo/, docs/distill/, README "Distillation
# report"). Every step resumes when rerun; run it from the repository root with the venv
# active. CPU-sized: on a 2-core CPU the teacher takes about 4 hours (three stages), the
# labels about 30 minutes, the students about 15 minutes each and a second stage about 5
# (two at a time, one thread each), the evaluation about 30 minutes.
#
#   bash scripts/distill_default.sh [STEP]   # STEP: teacher | label | students | ship | all (default)
#   ITEMS=2000 STEPS=4000 CAMERA_STEPS=700 FOOTAGE_ITEMS=600 bash scripts/distill_default.sh   # a shorter budget
set -euo pipefail

DATA=${DATA:-../shared/data/train}
EVAL=${EVAL:-../shared/data/eval}
VIDEO=${VIDEO:-../shared/data/video/vtest.avi}
FOOTAGE=${FOOTAGE:-samples/vtest_clip.avi}   # real frames with no ground truth, for the footage experiment
RUNS=${RUNS:-runs}
THREADS=${THREADS:-2}
ITEMS=${ITEMS:-3000}  # training crops the teacher labels; every distilled student trains on these crops
CROP=160            # student crops (the second stage, the gate alone, takes 512 px crops: closer to a whole frame)
SOFT=0.3            # share of crops whose reference is itself soft (see DataConfig.soft_reference)
ALPHAS="0.5 1.0"    # distilled candidates; the winner is chosen on validation PSNR (held-out training photos)
QUALITY=${QUALITY:-kd-s4-c24-pa}
FAST=${FAST:-kd-s4-c16-pa}
STEPS=${STEPS:-5000}           # student steps (first stage)
CAMERA_STEPS=${CAMERA_STEPS:-3000}  # the teacher's fourth stage (the camera mix with dim and already-sharpened frames)
STAGES=${STAGES:-docs/distill/stages}  # committed: every finished teacher stage, and the resumable state of the one running
FOOTAGE_ITEMS=${FOOTAGE_ITEMS:-1000}  # footage crops the teacher labels
STUDENT=(--steps "$STEPS" --batch-size 16 --crop "$CROP" --lr 0.002 --grad-clip 0 --loss psnr --degradation camera
         --soft-reference "$SOFT" --val-every 500 --val-items 48 --ckpt-every 500 --threads 1 --no-progress)
GATE=(--train-only gate --alpha 0 --steps 1500 --batch-size 2 --crop 512 --lr 1e-3 --grad-clip 0 --loss psnr
      --degradation camera --soft-reference "$SOFT" --val-every 250 --val-items 24 --ckpt-every 250 --threads 1 --no-progress)
step=${1:-all}

TEACHER=(--batch-size 8 --crop 96 --ckpt-every 100 --log-every 20 --threads "$THREADS" --no-progress)
teacher_stage() {  # NAME [fit-teacher options]: one stage of the teacher into $STAGES/NAME, committed
  # A finished stage (summary.json, no resumable state) is skipped: its best teacher and records are in git, its
  # optimizer state is not. A stage in progress resumes from its committed train_state.safetensors.
  local out=$STAGES/$1
  shift
  if [[ -f $out/summary.json && ! -f $out/train_state.safetensors ]]; then
    echo "distill_default: teacher stage $out is finished; skipped" >&2
    return
  fi
  kdcam distill fit-teacher --data "$DATA" --out "$out" "$@" "${TEACHER[@]}"
  rm -f "$out/train_state.safetensors" "$out/train_state.json" "$out/teacher-last.safetensors"
}
if [[ $step == teacher || $step == all ]]; then
  # stage 1 from scratch on the heavy mix; stage 2 fine-tunes it on the `webcam` mix (mild and no damage too);
  # stage 3 fine-tunes it on the `camera` mix as it was then (soft cameras only, 700 steps); stage 4 goes on
  # with the `camera` mix that holds dim rooms and cameras that already sharpen. Stages 1 and 2 kept only their
  # records (their weights were lost with the machine that made them); stage 3 keeps its teacher, the start of 4.
  teacher_stage teacher-tiny --size tiny --steps 2800 --lr 1e-3 --degradation webcam-heavy --val-every 400 --val-items 16
  teacher_stage teacher-tiny-ft --init "$STAGES/teacher-tiny/teacher-best.safetensors" --steps 2000 --lr 5e-4 \
    --degradation webcam --val-every 400 --val-items 16
  teacher_stage teacher-camera --init "$STAGES/teacher-tiny-ft/teacher-best.safetensors" --steps 700 --lr 5e-4 \
    --degradation camera --val-every 350 --val-items 16
  teacher_stage teacher-camera2 --init "$STAGES/teacher-camera/teacher-best.safetensors" --steps "$CAMERA_STEPS" \
    --lr 5e-4 --degradation camera --val-every 250 --val-items 32
fi
TEACHER_BEST=$STAGES/teacher-camera2/teacher-best.safetensors

if [[ $step == label || $step == all ]]; then
  kdcam distill label --data "$DATA" --teacher "$TEACHER_BEST" --out "$RUNS/labels-camera-soft" \
    --items "$ITEMS" --crop "$CROP" --degradation camera --soft-reference "$SOFT" --threads "$THREADS" --no-progress
  # the footage experiment: the teacher's outputs on real frames, as they are (the camera already degraded them)
  kdcam distill label --data "$DATA" --teacher "$TEACHER_BEST" --out "$RUNS/labels-footage" \
    --footage "$FOOTAGE" --footage-every 3 --items "$FOOTAGE_ITEMS" --crop "$CROP" --degradation clean --threads "$THREADS" --no-progress
fi

train() {  # NAME ARCH ALPHA [extra options]: one student run in the background, one thread
  local name=$1 arch=$2 alpha=$3
  shift 3
  kdcam distill train --data "$DATA" --labels "$RUNS/labels-camera-soft" --arch "$arch" --alpha "$alpha" --out "$RUNS/$name" \
    "${STUDENT[@]}" "$@" > "$RUNS/$name.log" 2>&1 &
  pids+=($!)
}
wait_all() {
  for pid in "${pids[@]}"; do wait "$pid" || { echo "a student run failed; see $RUNS/*.log" >&2; exit 1; }; done
  pids=()
}

if [[ $step == students || $step == all ]]; then
  pids=()
  for a in $ALPHAS; do train "quality-alpha$a" "$QUALITY" "$a"; train "fast-alpha$a" "$FAST" "$a"; wait_all; done
  train quality-alpha0 "$QUALITY" 0
  train quality-footage "$QUALITY" 0.5 --footage-labels "$RUNS/labels-footage" --footage-share 0.25
  wait_all
fi

gate() {  # RUN: the second stage of a run, in the background, into RUN-gate
  kdcam distill train --data "$DATA" --init "$RUNS/$1/student-best.safetensors" --out "$RUNS/$1-gate" "${GATE[@]}" \
    > "$RUNS/$1-gate.log" 2>&1 &
  pids+=($!)
}

if [[ $step == ship || $step == all ]]; then
  # no added flicker: a candidate must keep vtest.avi's static-region frame-to-frame change within 10% of the input's
  for run in "$RUNS"/quality-alpha* "$RUNS"/fast-alpha* "$RUNS"/quality-footage; do
    if [[ -f $run/summary.json && ! -f $run/stability.json && $run != *-gate ]]; then
      kdcam distill export --run "$run" --output "$run/candidate.safetensors" --no-onnx
      python scripts/temporal_stability.py "$VIDEO" --model "$run/candidate.safetensors" --json "$run/stability.json"
    fi
  done
  python scripts/choose_alpha.py --runs "$RUNS" --alphas $ALPHAS --notes "$RUNS/notes.md" > "$RUNS/chosen.txt"
  read -r quality fast < "$RUNS/chosen.txt"
  # the footage counterpart of the quality member: with footage labels if it has none, else without
  counterpart=quality-footage; [[ $quality == quality-footage ]] && counterpart=quality-alpha0.5
  pids=()
  gate "$quality"; gate "$fast"; wait_all
  gate quality-alpha0; gate "$counterpart"; wait_all
  python scripts/ship_default.py --member "quality=$RUNS/$quality-gate" --member "fast=$RUNS/$fast-gate" \
    --teacher-run "$STAGES/teacher-tiny" --teacher-run "$STAGES/teacher-tiny-ft" --teacher-run "$STAGES/teacher-camera" \
    --teacher-run "$STAGES/teacher-camera2" \
    --ablation "$RUNS/quality-alpha0-gate" --footage "$RUNS/$counterpart-gate" --notes "$RUNS/notes.md" --label-items "$ITEMS" \
    --eval-data "$EVAL" --sources ../shared/data/SOURCES.md --report docs/distill
  python scripts/temporal_stability.py "$VIDEO" --json docs/temporal-stability.json
fi

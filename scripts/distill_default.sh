#!/usr/bin/env bash
# How the installed students are made: the teacher's stages, soft labels on the `camera` mix, the
# distilled candidates of each student and the alpha = 0 ablation, the choice on validation, the second
# stage (the whole-frame gate alone, on 512 px crops: it decides how much to sharpen from the whole
# frame, so it learns on crops closer to one), evaluation and shipping (engines/model/zoo/, docs/distill/,
# README "Distillation report"). Run it from the repository root with the venv active.
#
# It survives the end of a session: every long step writes into $STAGES (docs/distill/stages), which is
# committed (`bash scripts/commit_stages.sh`, every 25 minutes while a stage runs): each finished stage's
# model and records, and the resumable checkpoint of the stage in progress. A rerun on a fresh machine
# skips what is finished and resumes the rest; only the label cache ($RUNS, not committed) is made again.
#
# Time on this machine kind (2-core CPU, one thread per run, two runs at a time): a teacher stage about
# 2.2 s a step (3000 steps: about 1 hour 50 minutes); the labels about 0.5 s a crop (4000 crops: about 35
# minutes with 2 threads); a student about 0.2 s a step (6000 steps: about 20 minutes); a second stage
# about 5 minutes; the evaluation of every row on the 12 photos about 40 minutes (the teacher is most of it).
#
#   bash scripts/distill_default.sh [STEP]   # STEP: teacher | label | students | gates | ship | all (default)
#   (gates: the flicker check, the choice on validation and the second stages; ship: the evaluation and the report)
#   ITEMS=2000 STEPS=4000 CAMERA_STEPS=700 bash scripts/distill_default.sh   # a shorter budget
#
# Pinned on purpose (not variables): the crop sizes, the soft-reference share, the candidates and their
# options, the optimiser settings and the seeds, which the committed stages were made with (a resumed
# stage refuses other settings). The budgets (ITEMS, STEPS, CAMERA_STEPS) and the places are variables.
set -euo pipefail

DATA=${DATA:-../shared/data/train}
EVAL=${EVAL:-../shared/data/eval}
VIDEO=${VIDEO:-../shared/data/video/vtest.avi}
RUNS=${RUNS:-runs}    # the label cache: remade, never committed
STAGES=${STAGES:-docs/distill/stages}  # committed: every finished stage, and the resumable state of the one running
THREADS=${THREADS:-2}
ITEMS=${ITEMS:-4000}  # training crops the teacher labels; every distilled student trains on these crops
CROP=160            # student crops (the second stage, the gate alone, takes 512 px crops: closer to a whole frame)
SOFT=0.3            # share of crops whose reference is itself soft (see DataConfig.soft_reference)
QUALITY=kd-s4-c24-pa
FAST=kd-s4-c16-pa
WIDE=kd-s4-c32-pa   # a wider candidate for a third member, where bf16 or AMX gives it the frame time
STEPS=${STEPS:-6000}           # student steps (first stage)
CAMERA_STEPS=${CAMERA_STEPS:-3000}  # the teacher's fourth stage (the camera mix with dim and already-sharpened frames)
FOCUS_STEPS=${FOCUS_STEPS:-2000}    # the teacher's fifth stage (the camera mix with a missed focus in good light)
SOFT_STEPS=${SOFT_STEPS:-1500}      # the teacher's sixth stage (soft references)
STUDENT=(--steps "$STEPS" --batch-size 16 --crop "$CROP" --lr 0.002 --grad-clip 0 --loss psnr --degradation camera
         --soft-reference "$SOFT" --val-every 500 --val-items 48 --ckpt-every 250 --threads 1 --no-progress)
DECISION=(--decision-weight 0.1)  # the teacher's decision of how much to change each crop (distill.losses.decision_loss)
GATE=(--train-only gate --alpha 0 --steps 1500 --batch-size 2 --crop 512 --lr 1e-3 --grad-clip 0 --loss psnr
      --degradation camera --soft-reference "$SOFT" --val-every 250 --val-items 24 --ckpt-every 250 --threads 1 --no-progress)
finished() {  # RUN: a finished run (its summary, no resumable state left) is skipped when the script runs again
  [[ -f $1/summary.json && ! -f $1/train_state.safetensors ]]
}
settle() {  # RUN: a finished run keeps its models and records; its optimizer state goes (never committed)
  rm -f "$1/train_state.safetensors" "$1/train_state.json"
}
step=${1:-all}
mkdir -p "$RUNS"

TEACHER=(--batch-size 8 --crop 96 --ckpt-every 100 --log-every 20 --threads "$THREADS" --no-progress)
teacher_stage() {  # NAME [fit-teacher options]: one stage of the teacher into $STAGES/NAME, committed
  # A finished stage (summary.json, no resumable state) is skipped: its best teacher and records are in git, its
  # optimizer state is not. A stage in progress resumes from its committed train_state.safetensors.
  local out=$STAGES/$1
  shift
  if finished "$out"; then
    echo "distill_default: teacher stage $out is finished; skipped" >&2
    return
  fi
  kdcam distill fit-teacher --data "$DATA" --out "$out" "$@" "${TEACHER[@]}"
  settle "$out"
  rm -f "$out/teacher-last.safetensors"
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
  # stage 5: the camera mix with a missed focus in good light (strong defocus, little noise; stage 4 led an unsharp
  # mask by only 0.13 dB on `defocus`), in bfloat16 autocast (1.7x faster a step on AVX512-BF16 or AMX, same loss)
  teacher_stage teacher-focus --init "$STAGES/teacher-camera2/teacher-best.safetensors" --steps "$FOCUS_STEPS" \
    --lr 3e-4 --degradation camera --val-every 250 --val-items 32 --bf16
  # stage 6: soft references, as the students have them (a share of crops whose reference is itself soft): stage 5
  # sharpened a photo that is soft by nature as if it were blurred (-5.6 dB on a mildly defocused eval photo while an
  # unsharp mask gained +5.9), and a student distilled from it learns to sharpen soft content too
  teacher_stage teacher-soft --init "$STAGES/teacher-focus/teacher-best.safetensors" --steps "$SOFT_STEPS" \
    --lr 3e-4 --degradation camera --soft-reference "$SOFT" --val-every 250 --val-items 32 --bf16
fi
TEACHER_BEST=$STAGES/teacher-soft/teacher-best.safetensors

LABELS=$RUNS/labels-camera-soft
if [[ $step == label || $step == all || ( $step == students && ! -f $LABELS/manifest.json ) ]]; then
  kdcam distill label --data "$DATA" --teacher "$TEACHER_BEST" --out "$LABELS" \
    --items "$ITEMS" --crop "$CROP" --degradation camera --soft-reference "$SOFT" --threads "$THREADS" --no-progress
fi

train() {  # NAME ARCH ALPHA [extra options]: one student run into $STAGES/NAME, in the background, one thread
  local name=$1 arch=$2 alpha=$3
  shift 3
  finished "$STAGES/$name" && return
  { kdcam distill train --data "$DATA" --labels "$LABELS" --arch "$arch" --alpha "$alpha" --out "$STAGES/$name" \
      "${STUDENT[@]}" "$@" > "$RUNS/$name.log" 2>&1 && settle "$STAGES/$name"; } &
  pids+=($!)
}
wait_all() {
  for pid in "${pids[@]}"; do wait "$pid" || { echo "a student run failed; see $RUNS/*.log" >&2; exit 1; }; done
  pids=()
}

if [[ $step == students || $step == all ]]; then
  # the candidates of each member (chosen on validation), the alpha = 0 ablation and the wider candidate, the ones
  # every member needs first (a session that ends between two pairs leaves the most useful runs finished)
  pids=()
  train quality-alpha1.0-decision "$QUALITY" 1.0 "${DECISION[@]}"; train fast-alpha1.0-decision "$FAST" 1.0 "${DECISION[@]}"
  wait_all
  train quality-alpha1.0 "$QUALITY" 1.0; train quality-alpha0 "$QUALITY" 0; wait_all
  train wide-alpha1.0-decision "$WIDE" 1.0 "${DECISION[@]}"; wait_all
fi

gate() {  # RUN: the second stage of a run, in the background, into RUN-gate
  finished "$STAGES/$1-gate" && return
  { kdcam distill train --data "$DATA" --init "$STAGES/$1/student-best.safetensors" --out "$STAGES/$1-gate" "${GATE[@]}" \
      > "$RUNS/$1-gate.log" 2>&1 && settle "$STAGES/$1-gate"; } &
  pids+=($!)
}

if [[ $step == gates || $step == all ]]; then
  # no added flicker: a candidate must keep vtest.avi's static-region frame-to-frame change within 10% of the input's
  for run in "$STAGES"/quality-alpha1* "$STAGES"/fast-alpha* "$STAGES"/wide-alpha*; do
    if [[ -f $run/summary.json && ! -f $run/stability.json && $run != *-gate ]]; then
      kdcam distill export --run "$run" --output "$RUNS/$(basename "$run")-candidate.safetensors" --no-onnx
      python scripts/temporal_stability.py "$VIDEO" --model "$RUNS/$(basename "$run")-candidate.safetensors" \
        --json "$run/stability.json"
    fi
  done
  # the choice and its notes are committed with the stages, so the ship step may run in a later session
  python scripts/choose_alpha.py --runs "$STAGES" --notes "$STAGES/notes.md" > "$STAGES/chosen.txt"
  read -r quality fast < "$STAGES/chosen.txt"
  pids=()
  gate "$quality"; gate "$fast"; wait_all
  gate quality-alpha0; wait_all
fi

if [[ $step == ship || $step == all ]]; then
  read -r quality fast < "$STAGES/chosen.txt"
  teachers=()
  for stage in teacher-tiny teacher-tiny-ft teacher-camera teacher-camera2 teacher-focus teacher-soft; do
    teachers+=(--teacher-run "$STAGES/$stage")
  done
  python scripts/ship_default.py --member "quality=$STAGES/$quality-gate" --member "fast=$STAGES/$fast-gate" \
    "${teachers[@]}" --ablation "$STAGES/quality-alpha0-gate" --notes "$STAGES/notes.md" --label-items "$ITEMS" \
    --eval-data "$EVAL" --sources ../shared/data/SOURCES.md --report docs/distill
  python scripts/temporal_stability.py "$VIDEO" --json docs/temporal-stability.json
fi

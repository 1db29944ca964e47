#!/usr/bin/env bash
# The cost of one mixing step: SPSA (two forward passes) against full-gradient mixing (a forward and a
# backward pass), on the digits CNN of tools/glue_experiment.sh with a batch of 256 target rows.
#
#   tools/bench/glue_cost.sh BUILD_DIR [--arch cnn|mlp] [--experts K] [--rows 256] [--reps 5] [--steps 200]
#
# K experts of the CNN (1x16x16: conv 8@3x3, relu, maxpool 2, conv 16@3x3, relu, maxpool 2, dense 64, relu,
# dense 10), or with --arch mlp of its MLP (1x16x16 flattened, dense 64, relu, dense 64, relu, dense 10), are
# trained for one epoch on synthetic digit domains (`nograd data synth`),
# the target train split has --rows rows, cut in one chunk (--chunk-rows = rows), so a step of SPSA (q = 1)
# is two forward passes of the batch and a step of fullgrad one forward and one backward pass of it.
#
# Time per step: the difference of the wall times of runs of --steps and 2 x --steps steps, divided by
# --steps (setup, reading the experts and measuring the prior cancel out), median of --reps. SPSA is timed
# with the first-layer cache (the default) and without it (--no-first-layer-cache).
# Memory: "Maximum resident set size" of /usr/bin/time for each method, and the same for --method uniform,
# which reads the same experts and data and measures its prior but takes no step: the difference is what
# the steps need (workspaces, gradients, caches). A process that links MPI, HDF5 and OpenBLAS holds tens of
# MB before it reads anything, so the totals differ little; the step memory is what the issue's 0.5x is about.
# Targets (issue #5): SPSA's time per step <= 0.75 x fullgrad's, its step memory <= 0.5 x fullgrad's.
set -euo pipefail

usage() {
  echo "usage: $0 BUILD_DIR [--arch cnn|mlp] [--experts K] [--rows N] [--reps R] [--steps S]" >&2
  exit 2
}
[[ $# -ge 1 ]] || usage
BUILD=$(cd "$1" && pwd)
shift
K=3 ROWS=256 REPS=5 STEPS=200 ARCH=cnn
while [[ $# -gt 0 ]]; do
  case $1 in
    --arch) ARCH=$2 ;;
    --experts) K=$2 ;;
    --rows) ROWS=$2 ;;
    --reps) REPS=$2 ;;
    --steps) STEPS=$2 ;;
    *) usage ;;
  esac
  shift 2 || usage
done
NOGRAD=$BUILD/nograd
[[ -x $NOGRAD ]] || { echo "$0: $NOGRAD not found: build the project first" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "$0: /usr/bin/time not found (apt-get install time)" >&2; exit 1; }
export OPENBLAS_NUM_THREADS=1
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

domains=(upright tilted small noisy bold faint skewed)
((K >= 2 && K <= ${#domains[@]})) || { echo "$0: --experts must be in 2..${#domains[@]}" >&2; exit 2; }
src=$(IFS=,; echo "${domains[*]:0:K}")
"$NOGRAD" data synth images --domains "$src,target" --rows 1000 --out-prefix "$W/d" >/dev/null
"$NOGRAD" data synth images --domain target --rows "$ROWS" --seed 1 --out "$W/t.h5" >/dev/null
case $ARCH in
  cnn) printf 'input 1 16 16\nconv2d conv1 8 3 padding=1\nrelu\nmaxpool 2\nconv2d conv2 16 3 padding=1\nrelu\nmaxpool 2\nflatten\ndense fc1 64\nrelu\ndense out 10\n' ;;
  mlp) printf 'input 1 16 16\nflatten\ndense fc1 64\nrelu\ndense fc2 64\nrelu\ndense out 10\n' ;;
  *) usage ;;
esac >"$W/spec.txt"
experts=()
for d in ${src//,/ }; do
  "$NOGRAD" train --train "$W/d-$d.h5" --spec "$W/spec.txt" --out "$W/e-$d.h5" --optimizer adam --lr 0.003 \
    --epochs 1 --quiet >/dev/null
  experts+=("$W/e-$d.h5")
done

# wall seconds and peak RSS (kB) of one run: "seconds kb"
run() {
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$W/rss" "$NOGRAD" glue --experts "${experts[@]}" --target-train "$W/t.h5" \
    --out "$W/p.h5" --chunk-rows "$ROWS" --quiet "$@" >/dev/null
  t1=$(date +%s.%N)
  echo "$(echo "$t1 - $t0" | bc -l) $(cat "$W/rss")"
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

declare -A STEP MEM
for m in uniform fullgrad spsa spsa-nocache; do
  args=(--method "${m%-nocache}")
  [[ $m == spsa-nocache ]] && args+=(--no-first-layer-cache)
  : >"$W/steps" && : >"$W/mem"
  for ((r = 0; r < REPS; r++)); do
    read -r a ma < <(run "${args[@]}" --steps "$STEPS")
    read -r b mb < <(run "${args[@]}" --steps $((2 * STEPS)))
    echo "($b - $a) / $STEPS * 1000" | bc -l >>"$W/steps"
    echo "$mb" >>"$W/mem"
  done
  STEP[$m]=$(median <"$W/steps")
  MEM[$m]=$(median <"$W/mem")
done
printf 'digits %s, %d experts, batch %d, median of %d\n' "$ARCH" "$K" "$ROWS" "$REPS"
printf '%-13s %12s %12s %12s\n' method "ms/step" "peak RSS MB" "step MB"
for m in fullgrad spsa spsa-nocache uniform; do
  printf '%-13s %12.3f %12.1f %12.2f\n' "$m" "${STEP[$m]}" "$(echo "${MEM[$m]} / 1024" | bc -l)" \
    "$(echo "(${MEM[$m]} - ${MEM[uniform]}) / 1024" | bc -l)"
done
printf 'time  spsa / fullgrad: %.3f (target <= 0.75); without the cache %.3f\n' \
  "$(echo "${STEP[spsa]} / ${STEP[fullgrad]}" | bc -l)" "$(echo "${STEP[spsa-nocache]} / ${STEP[fullgrad]}" | bc -l)"
printf 'memory spsa / fullgrad: step %.3f (target <= 0.5), peak RSS %.3f\n' \
  "$(echo "(${MEM[spsa]} - ${MEM[uniform]}) / (${MEM[fullgrad]} - ${MEM[uniform]})" | bc -l)" \
  "$(echo "${MEM[spsa]} / ${MEM[fullgrad]}" | bc -l)"

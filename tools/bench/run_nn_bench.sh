#!/usr/bin/env bash
# nograd against PyTorch on the same models, one thread each: MLP 784-512-512-10 and LeNet-5, forward and
# forward + backward. Builds nothing: give it a build directory that has bench_nn (cmake --build BUILD
# --target bench_nn).
#
#   tools/bench/run_nn_bench.sh BUILD_DIR [--rounds 5] [--batch 256] [--reps 30]
#
# It writes the two models once (bench_nn_torch.py --write-models: PyTorch's default initialisation) and
# then, for each of --rounds rounds, runs bench_nn and bench_nn_torch.py on each model file, one after the
# other (which goes first alternates between rounds), so that both see the same weights and the same machine
# load. Each program reports medians over --reps repetitions; this script prints, per case, the median over
# the rounds of each side's samples/s and the median of the per-round ratios (nograd / PyTorch: a ratio of
# two runs made seconds apart, steadier on a shared machine than a ratio of medians), with the issue's
# target; then the MLP forward's share of the in-run sgemm throughput on its layer shapes (bench_nn's sgemm
# line). Needs /usr/bin/python3 with torch, numpy and h5py.
set -euo pipefail

usage() {
  echo "usage: $0 BUILD_DIR [--rounds N] [--batch B] [--reps R]" >&2
  exit 2
}
[[ $# -ge 1 ]] || usage
BUILD=$1
shift
ROUNDS=5 BATCH=256 REPS=30
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) ROUNDS=$2 ;;
    --batch) BATCH=$2 ;;
    --reps) REPS=$2 ;;
    *) usage ;;
  esac
  shift 2 || usage
done
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH=$BUILD/bench_nn
PY=/usr/bin/python3
[[ -x $BENCH ]] || { echo "$0: no $BENCH (cmake --build $BUILD --target bench_nn)" >&2; exit 1; }
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
$PY "$HERE/bench_nn_torch.py" --write-models "$TMP" >/dev/null

# value KEY FILE: the samples/s of a "forward" / "forward+backward" line.
value() { awk -v k="$1" '$1 == k { print $2; exit }' "$2"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2];
                                               else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for ((r = 1; r <= ROUNDS; r++)); do
  for m in mlp lenet; do
    run_c() { "$BENCH" --model "$TMP/$m.h5" --batch "$BATCH" --reps "$REPS" >"$TMP/c.out"; }
    run_t() { $PY "$HERE/bench_nn_torch.py" --model "$TMP/$m.h5" --batch "$BATCH" --reps "$REPS" >"$TMP/t.out"; }
    if ((r % 2)); then run_c; run_t; else run_t; run_c; fi
    for k in forward forward+backward; do
      c=$(value "$k" "$TMP/c.out") t=$(value "$k" "$TMP/t.out")
      echo "$c" >>"$TMP/$m.$k.c"
      echo "$t" >>"$TMP/$m.$k.t"
      awk -v c="$c" -v t="$t" 'BEGIN { print c / t }' >>"$TMP/$m.$k.ratio"
    done
    if [[ $m == mlp ]]; then
      awk '$1 == "sgemm" { print $(NF - 2) " " $6 }' "$TMP/c.out" >>"$TMP/sgemm"
    fi
  done
  echo "round $r of $ROUNDS done" >&2
done

printf '\nbatch %s, %s rounds of %s repetitions each, one thread; medians over the rounds\n\n' \
  "$BATCH" "$ROUNDS" "$REPS"
printf '| case | nograd samples/s | PyTorch samples/s | ratio | target | met |\n|---|---|---|---|---|---|\n'
row() { # model key label target
  local c t q
  c=$(median <"$TMP/$1.$2.c") t=$(median <"$TMP/$1.$2.t") q=$(median <"$TMP/$1.$2.ratio")
  awk -v l="$3" -v c="$c" -v t="$t" -v q="$q" -v g="$4" \
    'BEGIN { printf "| %s | %.0f | %.0f | %.2f | >= %.2f | %s |\n", l, c, t, q, g, (q >= g ? "yes" : "no") }'
}
row mlp forward "MLP 784-512-512-10 forward" 0.95
row lenet forward "LeNet-5 forward" 1.5
row mlp forward+backward "MLP 784-512-512-10 forward+backward" 0.8
row lenet forward+backward "LeNet-5 forward+backward" 0.8
frac=$(cut -d' ' -f1 "$TMP/sgemm" | median)
gflops=$(cut -d' ' -f2 "$TMP/sgemm" | median)
printf '\nMLP forward: %.3f of the in-run sgemm throughput on its layer shapes (sgemm alone: %s GFLOP/s; medians)\n' \
  "$frac" "$gflops"

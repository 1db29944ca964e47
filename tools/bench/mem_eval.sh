#!/usr/bin/env bash
# Peak resident memory of `nograd eval MODEL.h5 DATA.h5` on a model of about a million parameters, against
# what it has to hold: the parameters, one batch of activations and the rank's shard of the dataset.
#
#   tools/bench/mem_eval.sh BUILD_DIR [--rows 10000] [--batch 256] [--np P] [--reps 3]
#
# The model is an MLP 784-1024-256-10 (1,068,810 parameters, PyTorch's default initialisation, written with
# tools/nograd_torch.py), the dataset --rows random MNIST-shaped rows (784 float32 features, int32 labels of
# 10 classes). Each process's peak RSS is "Maximum resident set size" of /usr/bin/time (getrusage of the
# child). Without --np, nograd runs as a singleton MPI process (no launcher); with --np P, under
# `mpirun -n P`, each rank is timed separately and the largest peak is reported.
#
# A process that links MPI, HDF5 and OpenBLAS has a fixed RSS of tens of MB before it reads anything, so
# the script also measures that baseline: `nograd version` under the same launcher. It prints
#   needed       = 4 nparams + 4 batch (784 + 1024 + 256 + 10) + shard rows x (4 x 784 + 4) bytes
#                  (parameters; the input batch and every layer's output, which is more than the workspace
#                  keeps; the rank's rows of /x and /y)
#   raw ratio    = peak RSS of eval / needed
#   net ratio    = (peak RSS of eval - peak RSS of version) / needed
# each the median over --reps runs; the target is < 3.
set -euo pipefail

usage() {
  echo "usage: $0 BUILD_DIR [--rows N] [--batch B] [--np P] [--reps R]" >&2
  exit 2
}
[[ $# -ge 1 ]] || usage
BUILD=$1
shift
ROWS=10000 BATCH=256 NP=0 REPS=3
while [[ $# -gt 0 ]]; do
  case $1 in
    --rows) ROWS=$2 ;;
    --batch) BATCH=$2 ;;
    --np) NP=$2 ;;
    --reps) REPS=$2 ;;
    *) usage ;;
  esac
  shift 2 || usage
done
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NOGRAD=$BUILD/nograd
PY=/usr/bin/python3
[[ -x $NOGRAD ]] || { echo "$0: no $NOGRAD (cmake --build $BUILD --target nograd_cli)" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "$0: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
if ! "$NOGRAD" eval --help >/dev/null 2>&1; then
  echo "$0: $NOGRAD has no eval command" >&2
  exit 1
fi
export OPENBLAS_NUM_THREADS=1
if [[ $(id -u) -eq 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
NPARAMS=$(
  cd "$TMP"
  $PY - "$HERE/.." "$ROWS" <<'EOF'
import os, sys
sys.path.insert(0, sys.argv[1])
os.environ["OMP_NUM_THREADS"] = "1"
import numpy as np
import torch
from torch import nn
import nograd_torch as ngt

torch.manual_seed(1)
model = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 256), nn.ReLU(), nn.Linear(256, 10))
ngt.save(model, "model.h5", classes=10, input_shape=(784,))
rng = np.random.default_rng(1)
rows = int(sys.argv[2])
ngt.save_dataset(rng.random((rows, 784), dtype=np.float32), rng.integers(0, 10, rows).astype(np.int32),
                 "data.h5", name="random", domain="test", classes=10)
print(sum(p.numel() for p in model.parameters()))
EOF
)

# peak KIND ARGS...: the largest peak RSS (KiB) over the ranks of one run of nograd ARGS.
peak() {
  rm -f "$TMP"/rss.*
  if ((NP > 0)); then
    # shellcheck disable=SC2016  # expanded by the inner sh, per rank
    mpirun -n "$NP" sh -c 'exec /usr/bin/time -f %M -o "$0.${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-0}}" "$@"' \
      "$TMP/rss" "$NOGRAD" "$@" >"$TMP/out" 2>&1
  else
    /usr/bin/time -f %M -o "$TMP/rss.0" "$NOGRAD" "$@" >"$TMP/out" 2>&1
  fi || { echo "$0: nograd $* failed:" >&2; cat "$TMP/out" >&2; exit 1; }
  cat "$TMP"/rss.* | sort -n | tail -1
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

: >"$TMP/base"
: >"$TMP/eval"
for ((r = 0; r < REPS; r++)); do
  peak version >>"$TMP/base"
  peak eval "$TMP/model.h5" "$TMP/data.h5" --batch "$BATCH" >>"$TMP/eval"
done
cp "$TMP/out" "$TMP/eval.out"
BASE=$(median <"$TMP/base")
EVAL=$(median <"$TMP/eval")
P=$((NP > 0 ? NP : 1))
awk -v np="$NPARAMS" -v b="$BATCH" -v rows="$ROWS" -v p="$P" -v base="$BASE" -v ev="$EVAL" 'BEGIN {
  shard = int((rows + p - 1) / p)
  par = 4 * np; act = 4 * b * (784 + 1024 + 256 + 10); dat = shard * (4 * 784 + 4)
  need = par + act + dat
  printf "model 784-1024-256-10: %d parameters; %d rows, %d rank%s (shard %d rows); batch %d\n", np, rows, p,
         (p > 1 ? "s" : ""), shard, b
  printf "needed: parameters %.2f MB + activations %.2f MB + shard %.2f MB = %.2f MB\n", par / 1e6, act / 1e6,
         dat / 1e6, need / 1e6
  printf "peak RSS (median of runs): nograd eval %.2f MB, baseline (nograd version) %.2f MB\n", ev * 1024 / 1e6,
         base * 1024 / 1e6
  raw = ev * 1024 / need; net = (ev - base) * 1024 / need
  printf "raw ratio %.2f (%s 3); baseline-subtracted ratio %.2f (%s 3)\n", raw, (raw < 3 ? "<" : ">="), net,
         (net < 3 ? "<" : ">=")
}'

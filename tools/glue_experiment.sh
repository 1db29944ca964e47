#!/usr/bin/env bash
# The GLUE experiment of issue #5 on real multi-domain data, from the raw files to the table.
#
# Usage: tools/glue_experiment.sh --data DIR --dataset heart|wine|digits --target DOMAIN|all
#                                 --arch mlp|resmlp|cnn --seeds 1,2,3 --out OUTDIR
#                                 [--nograd PATH] [--ranks P] [--steps N] [--granularity model|layer]
#
# For each target domain and seed:
#   1. tools/glue_prepare.py imports and splits the data (OUTDIR/data/DATASET/TARGET/seedS, shared by the
#      architectures): the target gets a stratified train split of at most 200 rows (30%), a validation split
#      of at most 200 (20%) and the rest as its test set; every other domain is a source with a validation
#      split (at most 500 rows, 20%) and a train split of the rest, all sources subsampled by one factor when
#      the largest would exceed 3000 rows (digits only). Tabular features are standardized with the pooled
#      source train statistics; heart's missing values are filled with the pooled source train mean. Delete
#      OUTDIR/data to prepare the data again.
#   2. nograd train: a base model on the pooled source splits, then one expert per source domain fine-tuned
#      from the base on that domain (early stopping on its own validation split).
#   3. nograd glue --method all: every prior from the K experts (K = number of source domains), measured on
#      the target validation split; the SPSA/CMA-ES/full-gradient loss curves.
#   4. nograd train --init-from: every prior, and the base ("base"), fine-tuned with the same budget on the
#      target train split (early stopping on the target validation split); nograd eval: target test accuracy.
# Everything of one (dataset, target, arch, seed) lives in OUTDIR/runs/DATASET/TARGET/ARCH/seedS, whose
# results.csv is written last: a seed whose results.csv is complete is skipped, so an interrupted run is
# resumed by running the same command again. At the end, tools/glue_report.py gathers every run under OUTDIR
# (several datasets and architectures may share one OUTDIR) into OUTDIR/results.csv, OUTDIR/curves.csv,
# OUTDIR/results.md and the PNG plots OUTDIR/plots/*.png.
#
# --ranks P runs nograd glue and nograd eval under `mpirun -n P` (training is single-rank by design). The
# budgets per dataset are set in budget() below; the seconds of each seed are in its run directory (seconds)
# and in results.md.
set -euo pipefail
# shellcheck source=tools/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
TOOLS="$NOGRAD_ROOT/tools"
PY=$NOGRAD_PYTHON

usage() {
  sed -n '3,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  echo "Run with --help for the whole description." >&2
  exit 2
}
die() {
  echo "glue_experiment.sh: $*" >&2
  exit 1
}
log() { echo "[glue] $*" >&2; }

command_line=$(printf '%q ' "$0" "$@")
data="" dataset="" target="" arch="" seeds="" out="" nograd="$NOGRAD_BUILD_DIR/nograd" ranks=1 steps=100
granularity=model
while (($#)); do
  case $1 in
  --help | -h)
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  --data | --dataset | --target | --arch | --seeds | --out | --nograd | --ranks | --steps | --granularity)
    (($# >= 2)) || { echo "glue_experiment.sh: $1 needs a value" >&2 && usage; }
    v=$2
    case $1 in
    --data) data=$v ;;
    --dataset) dataset=$v ;;
    --target) target=$v ;;
    --arch) arch=$v ;;
    --seeds) seeds=$v ;;
    --out) out=$v ;;
    --nograd) nograd=$v ;;
    --ranks) ranks=$v ;;
    --steps) steps=$v ;;
    --granularity) granularity=$v ;;
    esac
    shift 2
    ;;
  *) echo "glue_experiment.sh: unknown argument '$1'" >&2 && usage ;;
  esac
done
for o in data dataset target arch seeds out; do
  [[ -n ${!o} ]] || { echo "glue_experiment.sh: --$o is required" >&2 && usage; }
done

# Checks, before any work.
case $dataset in
heart) folder=heart_disease ;;
wine) folder=wine_quality ;;
digits) folder="mnist_test usps_test optdigits" ;;
*) echo "glue_experiment.sh: unknown --dataset '$dataset': heart, wine or digits" >&2 && exit 2 ;;
esac
[[ -d $data ]] || die "--data $data: no such directory (the real datasets, e.g. ../shared/data; see its README.md)"
data=$(cd "$data" && pwd)
for f in $folder; do
  [[ -d $data/$f ]] || die "--data $data has no $f/ folder: dataset '$dataset' is missing"
done
case $arch in
mlp | resmlp) ;;
cnn) [[ $dataset == digits ]] || die "--arch cnn needs images: only --dataset digits" ;;
*) echo "glue_experiment.sh: unknown --arch '$arch': mlp, resmlp or cnn" >&2 && exit 2 ;;
esac
[[ $seeds =~ ^[0-9]+(,[0-9]+)*$ ]] || { echo "glue_experiment.sh: --seeds '$seeds': comma-separated integers" >&2 && exit 2; }
[[ $ranks =~ ^[1-9][0-9]*$ ]] || { echo "glue_experiment.sh: --ranks '$ranks': a positive integer" >&2 && exit 2; }
[[ $steps =~ ^[1-9][0-9]*$ ]] || { echo "glue_experiment.sh: --steps '$steps': a positive integer" >&2 && exit 2; }
[[ $granularity == model || $granularity == layer ]] ||
  { echo "glue_experiment.sh: --granularity '$granularity': model or layer" >&2 && exit 2; }
[[ -x $nograd ]] || die "--nograd $nograd: not an executable (build it first, or pass --nograd PATH)"
"$PY" -c 'import numpy, h5py' 2>/dev/null || die "$PY needs numpy and h5py (apt-get install python3-numpy python3-h5py)"
read -r -a domains <<<"$("$PY" "$TOOLS/glue_prepare.py" --domains "$dataset")"
if [[ $target == all ]]; then
  targets=("${domains[@]}")
else
  [[ " ${domains[*]} " == *" $target "* ]] || die "unknown --target '$target' for $dataset: one of ${domains[*]} or all"
  targets=("$target")
fi
IFS=, read -r -a seed_list <<<"$seeds"
mkdir -p "$out"
out=$(cd "$out" && pwd)

mpi=()
if ((ranks > 1)); then
  mpi=(mpirun -n "$ranks")
  (($(nproc) < ranks)) && mpi+=(--oversubscribe)
fi

# The methods of `nograd glue --method all`, and base; a seed is complete when its results.csv has them all.
methods=(uniform datasize proxy best fullgrad spsa cmaes)
glue_help=$("$nograd" glue --help 2>&1 || true)
[[ $glue_help == *fullgrad* && $glue_help == *--curves* ]] ||
  die "$nograd glue has no --method all with fullgrad and --curves: rebuild it from a newer nograd"

# Training budgets: Adam, early stopping on the validation loss (best weights kept).
budget() {
  case $dataset in
  heart | wine)
    batch=32 lr=0.001
    base_epochs=100 base_patience=10
    expert_epochs=50 expert_patience=5
    ft_epochs=50 ft_patience=5
    ;;
  digits)
    batch=64 lr=0.001
    base_epochs=30 base_patience=3
    expert_epochs=15 expert_patience=3
    ft_epochs=30 ft_patience=5
    ;;
  esac
}
budget

# The model spec for an input shape ("F" or "C H W") and a number of classes.
write_spec() {
  local input=$1 classes=$2 file=$3
  {
    echo "# $arch for $dataset (tools/glue_experiment.sh)"
    echo "input $input"
    [[ $input == *" "* && $arch != cnn ]] && echo "flatten"
    case $arch in
    mlp)
      local h=64
      [[ $dataset == digits ]] && h=128
      printf 'dense fc1 %d\nrelu\ndense fc2 %d\nrelu\ndense out %d\n' "$h" "$h" "$classes"
      ;;
    resmlp)
      printf 'dense fc_in 64\n'
      for b in 1 2; do
        printf 'residual\nlayernorm ln%d\ndense res%d_fc1 64\nrelu\ndense res%d_fc2 64\nend\n' "$b" "$b" "$b"
      done
      printf 'layernorm ln_out\ndense out %d\n' "$classes"
      ;;
    cnn)
      printf 'conv2d conv1 8 3 padding=1\nrelu\nmaxpool 2\nconv2d conv2 16 3 padding=1\nrelu\nmaxpool 2\n'
      printf 'flatten\ndense fc1 64\nrelu\ndense out %d\n' "$classes"
      ;;
    esac
  } >"$file"
}

# A seed is complete when its results.csv holds a row for base and for every method.
complete() {
  local f=$1/results.csv m
  [[ -s $f ]] || return 1
  for m in base "${methods[@]}"; do
    grep -q ",$m," "$f" || return 1
  done
}

# Seconds since an $EPOCHREALTIME value, to the millisecond.
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }

train() { "$nograd" train --optimizer adam --lr "$lr" --batch "$batch" --json --quiet "$@"; }

run_seed() {
  local tgt=$1 seed=$2
  local prep="$out/data/$dataset/$tgt/seed$seed"
  local run="$out/runs/$dataset/$tgt/$arch/seed$seed"
  if complete "$run"; then
    log "$dataset $tgt $arch seed $seed: complete, skipped"
    return 0
  fi
  local t0=$EPOCHREALTIME
  log "$dataset $tgt $arch seed $seed"
  if [[ ! -s $prep/prep.json ]]; then
    "$PY" "$TOOLS/glue_prepare.py" --data "$data" --dataset "$dataset" --target "$tgt" --seed "$seed" \
      --out "$prep" --cache "$out/data/$dataset/cache" --nograd "$nograd"
  fi
  rm -rf "$run"
  mkdir -p "$run/priors" "$run/ft"
  local meta sources
  # Three lines: the input shape, the number of classes, the source domains.
  mapfile -t meta < <("$PY" -c 'import json, sys; p = json.load(open(sys.argv[1]))
print(*p["input"]); print(p["classes"]); print(*p["sources"])' "$prep/prep.json")
  ((${#meta[@]} == 3)) || die "$prep/prep.json: unreadable; delete $prep to prepare the data again"
  read -r -a sources <<<"${meta[2]}"
  write_spec "${meta[0]}" "${meta[1]}" "$run/spec.txt"
  echo "$command_line" >"$run/command"

  # Base model on the pooled sources, one expert per source domain.
  train --spec "$run/spec.txt" --train "$prep/pooled-train.h5" --val "$prep/pooled-val.h5" --out "$run/base.h5" \
    --epochs "$base_epochs" --patience "$base_patience" --seed "$seed" >"$run/base.json"
  local experts=() d
  for d in "${sources[@]}"; do
    train --init-from "$run/base.h5" --train "$prep/src-$d-train.h5" --val "$prep/src-$d-val.h5" \
      --out "$run/expert-$d.h5" --epochs "$expert_epochs" --patience "$expert_patience" --seed "$seed" \
      >"$run/expert-$d.json"
    experts+=("$run/expert-$d.h5")
  done
  "${mpi[@]}" "$nograd" eval "$run/base.h5" "$prep/target-val.h5" --metric accuracy --chunk-rows 256 --json \
    >"$run/base-val.json"

  # Every prior.
  local glue=("${mpi[@]}" "$nograd" glue --experts "${experts[@]}" --target-train "$prep/target-train.h5"
    --target-val "$prep/target-val.h5" --granularity "$granularity" --steps "$steps" --seed "$seed" --json --quiet)
  "${glue[@]}" --method all --out "$run/priors" --curves "$run/curves-raw.csv" >"$run/glue.jsonl"

  # Fine-tune every prior and the base with the same budget; test accuracy on the target test split.
  local init m
  for m in base "${methods[@]}"; do
    init="$run/priors/$m.h5"
    [[ $m == base ]] && init="$run/base.h5"
    train --init-from "$init" --train "$prep/target-train.h5" --val "$prep/target-val.h5" --out "$run/ft/$m.h5" \
      --epochs "$ft_epochs" --patience "$ft_patience" --seed "$seed" >"$run/ft/$m.json"
    "${mpi[@]}" "$nograd" eval "$run/ft/$m.h5" "$prep/target-test.h5" --metric accuracy --json >"$run/ft/$m.test.json"
  done
  local took
  took=$(elapsed "$t0")
  echo "$took" >"$run/seconds"
  "$PY" "$TOOLS/glue_report.py" collect "$run" --dataset "$dataset" --target "$tgt" --arch "$arch" --seed "$seed" \
    --methods "base,$(
      IFS=,
      echo "${methods[*]}"
    )"
  log "$dataset $tgt $arch seed $seed: done in $took s"
}

for tgt in "${targets[@]}"; do
  for seed in "${seed_list[@]}"; do
    run_seed "$tgt" "$seed"
  done
done
"$PY" "$TOOLS/glue_report.py" report "$out"
log "wrote $out/results.csv, $out/curves.csv, $out/results.md and $out/plots/"

#!/usr/bin/env bash
# The retrofit experiment of issue #6 (AfterLearnER) on real data: a model trained on some domains,
# retrofitted with `nograd retrofit` on a small validation set of a domain it never saw, and measured on the
# rest of that domain before and after.
#
# Usage: tools/retrofit_experiment.sh --data DIR --dataset digits|heart --seeds 1,2,3,4,5 --out OUTDIR
#                                     [--nograd PATH] [--budget E] [--ranks P] [--targets A,B]
#                                     [--val-size N] [--params SPEC] [--sigma0 S]
#
# digits  A CNN (conv 8, conv 16, dense 64) trained on mnist alone (its 9,500-row train split, early stopping
#         on its 500-row validation split), then retrofitted for each target, usps and optdigits (--targets),
#         with --params offsets,scale:out (10 per-class logit offsets and one scale on the last layer) against
#         --metric error on --val-size 200 rows (stratified) drawn from the target's pool.
# heart   An MLP (64, 64) trained on three hospitals pooled, retrofitted for the fourth, the unseen one, with
#         --params threshold,offsets against --metric balanced_error on all of the target's pool. Every
#         hospital is the unseen one in turn (cleveland, hungarian, switzerland, va; or --targets).
# The data are prepared by tools/glue_prepare.py, one call per (target, seed): the target domain is split,
# stratified and seeded, into train (at most 200 rows, 30%), validation (at most 200, 20%) and test (the
# rest); heart is standardized with the pooled source statistics. No model is ever trained on the target:
# its train and validation splits together are the pool the retrofit's validation rows come from
# (target-pool.h5), and its test split is the held-out set measured before and after (--test).
#
# The seed S sets everything: the splits, the model's initial weights and shuffles, the --val-size draw and
# the CMA-ES seed. --budget E (default 300) is a ceiling, as in nograd retrofit: the largest whole number of
# generations that fits in E.
# --sigma0 S is CMA-ES's initial step size in the knobs' own units (logit offsets, scale multipliers, the
# threshold); without it, nograd retrofit's default (0.3). --params and --val-size override the settings above.
# --ranks P runs the retrofit under `mpirun -n P` (the result is the same bits for every P; training is
# single-rank).
#
# Layout: OUTDIR/data/DATASET/TARGET/seedS (prepared data, shared by reruns), OUTDIR/models/digits/mnist/seedS
# (the digits model, shared by both targets), OUTDIR/runs/DATASET/TARGET/seedS (the heart model, the
# retrofit's JSON line and model, results.csv). A seed whose results.csv exists is complete and skipped, so an
# interrupted run resumes by running the same command again. OUTDIR/config-DATASET records the settings; a
# second run with other settings into the same OUTDIR is refused. At the end, tools/retrofit_report.py
# gathers every seed under OUTDIR (both datasets may share it) into OUTDIR/results.csv and OUTDIR/results.md.
set -euo pipefail
# shellcheck source=tools/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
TOOLS="$NOGRAD_ROOT/tools"
PY=$NOGRAD_PYTHON

usage() {
  sed -n '6,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  echo "Run with --help for the whole description." >&2
  exit 2
}
die() {
  echo "retrofit_experiment.sh: $*" >&2
  exit 1
}
log() { echo "[retrofit] $*" >&2; }

command_line=$(printf '%q ' "$0" "$@")
data="" dataset="" seeds="" out="" nograd="$NOGRAD_BUILD_DIR/nograd" ranks=1 budget=300 targets=""
val_size="" params="" sigma0=""
while (($#)); do
  case $1 in
  --help | -h)
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  --data | --dataset | --seeds | --out | --nograd | --ranks | --budget | --targets | --val-size | --params | --sigma0)
    (($# >= 2)) || { echo "retrofit_experiment.sh: $1 needs a value" >&2 && usage; }
    v=$2
    case $1 in
    --data) data=$v ;;
    --dataset) dataset=$v ;;
    --seeds) seeds=$v ;;
    --out) out=$v ;;
    --nograd) nograd=$v ;;
    --ranks) ranks=$v ;;
    --budget) budget=$v ;;
    --targets) targets=$v ;;
    --val-size) val_size=$v ;;
    --params) params=$v ;;
    --sigma0) sigma0=$v ;;
    esac
    shift 2
    ;;
  *) echo "retrofit_experiment.sh: unknown argument '$1'" >&2 && usage ;;
  esac
done
for o in data dataset seeds out; do
  [[ -n ${!o} ]] || { echo "retrofit_experiment.sh: --$o is required" >&2 && usage; }
done

# Checks, before any work.
case $dataset in
heart)
  folder=heart_disease source="" metric=balanced_error
  params=${params:-threshold,offsets} val_size=${val_size:-0}
  ;;
digits)
  folder="mnist_test usps_test optdigits" source=mnist metric=error
  params=${params:-offsets,scale:out} val_size=${val_size:-200}
  ;;
*) echo "retrofit_experiment.sh: unknown --dataset '$dataset': digits or heart" >&2 && exit 2 ;;
esac
[[ $seeds =~ ^[0-9]+(,[0-9]+)*$ ]] || { echo "retrofit_experiment.sh: --seeds '$seeds': comma-separated integers" >&2 && exit 2; }
[[ $ranks =~ ^[1-9][0-9]*$ ]] || { echo "retrofit_experiment.sh: --ranks '$ranks': a positive integer" >&2 && exit 2; }
[[ $budget =~ ^[1-9][0-9]*$ ]] || { echo "retrofit_experiment.sh: --budget '$budget': a positive integer" >&2 && exit 2; }
[[ $val_size =~ ^[0-9]+$ ]] || { echo "retrofit_experiment.sh: --val-size '$val_size': a number of rows (0: all)" >&2 && exit 2; }
[[ -z $sigma0 || $sigma0 =~ ^[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$ ]] ||
  { echo "retrofit_experiment.sh: --sigma0 '$sigma0': a positive number" >&2 && exit 2; }
[[ -d $data ]] || die "--data $data: no such directory (the real datasets, e.g. ../shared/data; see its README.md)"
data=$(cd "$data" && pwd)
for f in $folder; do
  [[ -d $data/$f ]] || die "--data $data has no $f/ folder: dataset '$dataset' is missing"
done
[[ -x $nograd ]] || die "--nograd $nograd: not an executable (build it first, or pass --nograd PATH)"
"$PY" -c 'import numpy, h5py' 2>/dev/null || die "$PY needs numpy and h5py (apt-get install python3-numpy python3-h5py)"
read -r -a domains <<<"$("$PY" "$TOOLS/glue_prepare.py" --domains "$dataset")"
if [[ -z $targets ]]; then
  target_list=()
  for d in "${domains[@]}"; do [[ $d != "$source" ]] && target_list+=("$d"); done
else
  IFS=, read -r -a target_list <<<"$targets"
  for t in "${target_list[@]}"; do
    [[ " ${domains[*]} " == *" $t "* ]] || die "unknown --targets '$t' for $dataset: one of ${domains[*]}"
    [[ $t != "$source" ]] || die "--targets $t: the model is trained on $source; the target must be another domain"
  done
fi
IFS=, read -r -a seed_list <<<"$seeds"
mkdir -p "$out"
out=$(cd "$out" && pwd)

mpi=()
if ((ranks > 1)); then
  mpi=(mpirun -n "$ranks")
  (($(nproc) < ranks)) && mpi+=(--oversubscribe)
fi

# Training (Adam, early stopping on the source validation loss, best weights kept) and the architectures.
case $dataset in
heart) batch=32 lr=0.001 epochs=100 patience=10 ;;
digits) batch=64 lr=0.001 epochs=30 patience=3 ;;
esac
write_spec() {
  local input=$1 classes=$2 file=$3
  {
    echo "# $dataset model of tools/retrofit_experiment.sh"
    echo "input $input"
    case $dataset in
    heart) printf 'dense fc1 64\nrelu\ndense fc2 64\nrelu\ndense out %d\n' "$classes" ;;
    digits)
      printf 'conv2d conv1 8 3 padding=1\nrelu\nmaxpool 2\nconv2d conv2 16 3 padding=1\nrelu\nmaxpool 2\n'
      printf 'flatten\ndense fc1 64\nrelu\ndense out %d\n' "$classes"
      ;;
    esac
  } >"$file"
}

# The settings of this OUTDIR: a rerun must match them, or its seeds would not be comparable.
config="$out/config-$dataset"
config_text=$(printf '%s\n' "dataset=$dataset" "source=${source:-the other hospitals}" "params=$params" \
  "metric=$metric" "budget=$budget" "val_size=$val_size" "sigma0=${sigma0:-0.3 (the default of nograd retrofit)}" "train=adam lr $lr batch $batch epochs $epochs patience $patience" \
  "prepare=tools/glue_prepare.py --source-train 1000000 (no subsampling); pool = target train + val splits")
if [[ -e $config ]]; then
  [[ $(cat "$config") == "$config_text" ]] ||
    die "$out was made with other settings ($config: $(grep -v '^dataset=' "$config" | paste -sd' ')); use another --out"
else
  echo "$config_text" >"$config.tmp" && mv "$config.tmp" "$config"
fi
echo "$command_line" >>"$out/command"

# Seconds since an $EPOCHREALTIME value, to the millisecond.
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }

train() { "$nograd" train --optimizer adam --lr "$lr" --batch "$batch" --epochs "$epochs" --patience "$patience" --json --quiet "$@"; }

# The prepared data of one (target, seed), and its pool.
prepare() {
  local tgt=$1 seed=$2 prep="$out/data/$dataset/$1/seed$2"
  if [[ ! -s $prep/prep.json ]]; then
    "$PY" "$TOOLS/glue_prepare.py" --data "$data" --dataset "$dataset" --target "$tgt" --seed "$seed" \
      --out "$prep" --cache "$out/data/$dataset/cache" --nograd "$nograd" --source-train 1000000 >&2 || return 1
  fi
  [[ -s $prep/target-pool.h5 ]] || "$PY" "$TOOLS/retrofit_report.py" pool "$prep" || return 1
  echo "$prep"
}

# A model is trained once: its JSON line is written after the model file, so a model without it is redone.
train_model() {
  local dir=$1 trainset=$2 valset=$3 seed=$4 meta
  [[ -s $dir/train.json ]] && return 0
  mkdir -p "$dir"
  mapfile -t meta < <("$PY" -c 'import json, sys; p = json.load(open(sys.argv[1]))
print(*p["input"]); print(p["classes"])' "$(dirname "$trainset")/prep.json")
  ((${#meta[@]} == 2)) || die "$(dirname "$trainset")/prep.json: unreadable; delete that folder to prepare again"
  write_spec "${meta[0]}" "${meta[1]}" "$dir/spec.txt"
  train --spec "$dir/spec.txt" --train "$trainset" --val "$valset" --out "$dir/model.h5" --seed "$seed" \
    >"$dir/train.json.tmp"
  mv "$dir/train.json.tmp" "$dir/train.json"
}

run_seed() {
  local tgt=$1 seed=$2
  local run="$out/runs/$dataset/$tgt/seed$seed"
  if [[ -s $run/results.csv ]]; then
    log "$dataset $tgt seed $seed: complete, skipped"
    return 0
  fi
  local t0 prep model_dir src
  log "$dataset $tgt seed $seed"
  prep=$(prepare "$tgt" "$seed") || die "data preparation failed for $dataset $tgt seed $seed (its message is above)"
  t0=$EPOCHREALTIME
  rm -rf "$run"
  mkdir -p "$run"
  if [[ $dataset == digits ]]; then
    # One model per seed on mnist alone; the mnist split depends only on the seed, not on the target.
    model_dir="$out/models/digits/$source/seed$seed"
    train_model "$model_dir" "$prep/src-$source-train.h5" "$prep/src-$source-val.h5" "$seed"
    src=$source
  else
    model_dir=$run
    train_model "$model_dir" "$prep/pooled-train.h5" "$prep/pooled-val.h5" "$seed"
    src=$("$PY" -c 'import json, sys; print("+".join(json.load(open(sys.argv[1]))["sources"]))' "$prep/prep.json")
  fi
  local extra=()
  ((val_size > 0)) && extra=(--val-size "$val_size")
  [[ -n $sigma0 ]] && extra+=(--sigma0 "$sigma0")
  if ! "${mpi[@]}" "$nograd" retrofit "$model_dir/model.h5" --params "$params" --val "$prep/target-pool.h5" \
    "${extra[@]}" --test "$prep/target-test.h5" --metric "$metric" --budget "$budget" --seed "$seed" \
    --out "$run/retrofit.h5" --json --quiet >"$run/retrofit.json"; then
    rm -f "$run/retrofit.json"
    die "nograd retrofit failed for $dataset $tgt seed $seed (its message is above)"
  fi
  local took
  took=$(elapsed "$t0")
  echo "$took" >"$run/seconds"
  "$PY" "$TOOLS/retrofit_report.py" collect "$run" --dataset "$dataset" --source "$src" --target "$tgt" \
    --seed "$seed" --prep "$prep" --train-json "$model_dir/train.json" --config "$config"
  log "$dataset $tgt seed $seed: done in $took s"
}

for tgt in "${target_list[@]}"; do
  for seed in "${seed_list[@]}"; do
    run_seed "$tgt" "$seed"
  done
done
"$PY" "$TOOLS/retrofit_report.py" report "$out"
log "wrote $out/results.csv and $out/results.md"

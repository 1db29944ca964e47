#!/usr/bin/env bash
# The engine at thousands of ranks, predicted by SimGrid's SMPI: builds nograd a second time with smpicc (through
# the project's own CMake, into build-smpi/), and runs tools/bench/bench_scale.c (CMA-ES on a loss whose cost per
# candidate is a sleep, which SMPI turns into simulated time) on a simulated two-level fat tree
# (tools/bench/smpi_fattree.xml, one rank per host), for every combination of the listed values.
#
#   tools/bench/scale_smpi.sh --ranks P[,P..] --lambda L[,L..] --dim N[,N..] [--generations 10] [--cost-ms 50]
#       [--bcast seeded[,explicit]] [--jitter none|exp:F|lognormal:S|slow:R:F] [--groups G] [--bw 25Gbps]
#       [--lat 2us] [--no-compute] [--quiet] [--check-native] [--smpi-cfg KEY:VALUE]...
#       [-- extra bench_scale arguments]
#
# --lambda P means lambda = P. Everything rank 0 (and every other rank) computes is measured on this core, as
# SMPI does by default, so the controller's real cost shows; --no-compute leaves computation out (the network
# and the sleeps alone). For each configuration the script prints bench_scale's table (one line per generation:
# wall time, efficiency, phases, bytes broadcast), how often the factor's slices went to their keepers (from
# n = 256 on, src/engine/slices.h), the simulator's own wall time and peak memory, and last
#   P=... lambda=... n=... efficiency=E
# (E over the whole generation loop, first generation included; the engine's set-up before it, mostly the
# time SMPI charges for creating the engine's communicator, is reported beside it: see bench_scale.c). With a --jitter, a line per
# generation names the slowest rank of the evaluation and its seconds against the fastest's (the engine's log).
# --check-native also runs the configuration natively (one process, no sleeps) and fails unless the result has
# the same bits.
#
# --smpi-cfg KEY:VALUE passes --cfg=KEY:VALUE to smpirun after the settings below, which it can override: for
# example smpi/bcast:scatter_rdb_allgather, the scatter and recursive-doubling allgather that MPICH uses for
# large broadcasts (its set-up costs 2 s of simulated time at P = 4096, reported beside E).
#
# Settings the simulation needs: at P >= 2048 --cfg=smpi/bcast:binomial_tree (SimGrid's default broadcast
# set-up is quadratic in P); at n >= 500, buffers of more than n^2 doubles are shared between the simulated
# ranks (--cfg=smpi/shared-malloc:local, auto-shared-malloc-thresh), which only the tell's scratch (used
# between two MPI calls) and the sampling factor broadcast below n = 256 reach. Nothing that is sent may be
# shared: SMPI does not copy a message out of a shared buffer, so the factor rank 0 sends to the keepers
# (the optimizer's own, n^2 doubles) stays private, as does a tell share (n^2/2 doubles). SMPI's
# default dlopen privatization stays on: without it nograd's CBLAS calls bind to the reference CBLAS that
# libsimgrid pulls in, which changes the timings and the bits. Environment: NOGRAD_SMPI_BUILD_DIR (default
# <repo>/build-smpi), NOGRAD_BUILD_DIR (the native build, for --check-native; default <repo>/build).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SMPI_BUILD=${NOGRAD_SMPI_BUILD_DIR:-$ROOT/build-smpi}
NATIVE_BUILD=${NOGRAD_BUILD_DIR:-$ROOT/build}
export OPENBLAS_NUM_THREADS=1

ranks="" lambdas="" dims="" generations=10 cost=50 bcasts=seeded jitter=none groups="" bw=25Gbps lat=2us
compute=yes quiet=() check=no extra=() smpicfg=()
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2; }
while (($#)); do
  case $1 in
    --ranks) ranks=$2; shift ;;
    --lambda) lambdas=$2; shift ;;
    --dim) dims=$2; shift ;;
    --generations) generations=$2; shift ;;
    --cost-ms) cost=$2; shift ;;
    --bcast) bcasts=$2; shift ;;
    --jitter) jitter=$2; shift ;;
    --groups) groups=$2; shift ;;
    --bw) bw=$2; shift ;;
    --lat) lat=$2; shift ;;
    --no-compute) compute=no ;;
    --quiet) quiet=(--quiet) ;;
    --check-native) check=yes ;;
    --smpi-cfg) smpicfg+=(--cfg="$2"); shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) usage ;;
    *) echo "scale_smpi.sh: unknown argument $1" >&2; usage ;;
  esac
  shift
done
[[ -n $ranks && -n $lambdas && -n $dims ]] || usage
if ! command -v smpicc >/dev/null || ! command -v smpirun >/dev/null; then
  echo "scale_smpi.sh: smpicc/smpirun not found (Debian package libsimgrid-dev)" >&2
  exit 77
fi

# The SMPI build: smpicc must pretend to be a plain compiler while CMake probes it, and wrap the build proper.
if [[ ! -f $SMPI_BUILD/CMakeCache.txt ]]; then
  SMPI_PRETEND_CC=1 cmake -S "$ROOT" -B "$SMPI_BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=smpicc \
    -DMPI_C_COMPILER=smpicc -DNOGRAD_BUILD_TESTS=OFF >"$SMPI_BUILD.configure.log" 2>&1 ||
    { cat "$SMPI_BUILD.configure.log" >&2; exit 1; }
fi
cmake --build "$SMPI_BUILD" -j"$(nproc)" --target bench_scale >"$SMPI_BUILD.build.log" 2>&1 ||
  { tail -50 "$SMPI_BUILD.build.log" >&2; exit 1; }
if [[ $check == yes ]]; then
  cmake --build "$NATIVE_BUILD" -j"$(nproc)" --target bench_scale >/dev/null 2>&1 ||
    { echo "scale_smpi.sh: cannot build bench_scale in $NATIVE_BUILD" >&2; exit 1; }
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nograd-smpi.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
status=0
IFS=, read -r -a R <<<"$ranks"
IFS=, read -r -a L <<<"$lambdas"
IFS=, read -r -a N <<<"$dims"
IFS=, read -r -a B <<<"$bcasts"
for P in "${R[@]}"; do
  # the fat tree: at most 32 hosts a leaf switch; the hosts past P idle
  per_leaf=$((P < 32 ? P : 32))
  leaves=$(((P + per_leaf - 1) / per_leaf))
  sed -e "s/@LAST@/$((per_leaf * leaves - 1))/; s/@SPEED@/1Gf/; s/@BW@/$bw/; s/@LAT@/$lat/" \
    -e "s/@PER_LEAF@/$per_leaf/g; s/@LEAVES@/$leaves/g; s/@TOPS@/$per_leaf/g" \
    "$ROOT/tools/bench/smpi_fattree.xml" >"$tmp/platform.xml"
  seq 0 $((P - 1)) | sed 's/^/node-/' >"$tmp/hosts"
  for lam in "${L[@]}"; do
    [[ $lam == P ]] && lam=$P
    for n in "${N[@]}"; do
      for mode in "${B[@]}"; do
        cfg=(--cfg=smpi/host-speed:1Gf --cfg=smpi/simulate-computation:"$compute" --log=root.thresh:warning)
        ((P >= 2048)) && cfg+=(--cfg=smpi/bcast:binomial_tree)
        ((n >= 500)) && cfg+=(--cfg=smpi/shared-malloc:local --cfg=smpi/auto-shared-malloc-thresh:$((8 * n * n + 8)))
        cfg+=("${smpicfg[@]}")
        args=(--dim "$n" --popsize "$lam" --generations "$generations" --bcast "$mode" --jitter "$jitter"
              "${quiet[@]}" "${extra[@]}")
        smpi_args=(--measure-dup --log "$tmp/log.jsonl" ${groups:+--groups "$groups"})
        echo "== P=$P lambda=$lam n=$n bcast=$mode cost=${cost}ms jitter=$jitter compute=$compute bw=$bw lat=$lat"
        t0=$(date +%s%N)
        rc=0
        if [[ -x /usr/bin/time ]]; then
          /usr/bin/time -f "%e %M" -o "$tmp/time" smpirun -np "$P" -platform "$tmp/platform.xml" \
            -hostfile "$tmp/hosts" "${cfg[@]}" "$SMPI_BUILD/bench_scale" "${args[@]}" --cost-ms "$cost" \
            "${smpi_args[@]}" \
            >"$tmp/out" 2>"$tmp/err" || rc=$?
        else
          smpirun -np "$P" -platform "$tmp/platform.xml" -hostfile "$tmp/hosts" "${cfg[@]}" \
            "$SMPI_BUILD/bench_scale" "${args[@]}" --cost-ms "$cost" "${smpi_args[@]}" \
            >"$tmp/out" 2>"$tmp/err" || rc=$?
          echo "$((($(date +%s%N) - t0) / 1000000000)) 0" >"$tmp/time"
        fi
        last=$(grep '^P=' "$tmp/out" | tail -1 || true)
        if ((rc != 0)) || [[ -z $last ]]; then
          echo "scale_smpi.sh: the simulation failed (exit $rc):" >&2
          tail -30 "$tmp/err" >&2
          status=1
          continue
        fi
        grep -v '^P=' "$tmp/out"
        if [[ $jitter != none ]]; then
          awk -F'[{:,}]' '{for (i = 1; i < NF; i++) { if ($i == "\"generation\"") g = $(i + 1);
            if ($i == "\"slowest_rank\"") r = $(i + 1); if ($i == "\"t_evaluate_max\"") m = $(i + 1);
            if ($i == "\"t_evaluate_min\"") a = $(i + 1) }
            printf "gen %d: slowest rank %d evaluated for %.3f ms, the fastest for %.3f ms\n", g, r, m * 1e3, a * 1e3}' \
            "$tmp/log.jsonl"
        fi
        # the sliced factor (src/engine/slices.h): rank 0 sends its rows to their keepers, not a broadcast
        awk -F'[{:,}]' '{for (i = 1; i < NF; i++) if ($i == "\"factor_slice_bytes\"" && $(i + 1) > 0) {
            k++; b = $(i + 1) }; g++}
            END {if (k) printf "factor slices: %d of %d generations sent %.0f bytes from rank 0 to the keepers " \
              "(point to point, not in the broadcast bytes above)\n", k, g, b}' "$tmp/log.jsonl"
        read -r secs kb <"$tmp/time"
        if ((kb > 0)); then
          echo "simulator: ${secs} s wall, peak memory $((kb / 1024)) MB"
        else
          echo "simulator: ${secs} s wall (no /usr/bin/time: peak memory not measured)"
        fi
        if [[ $check == yes ]]; then
          native=$("$NATIVE_BUILD/bench_scale" "${args[@]}" --cost-ms 0 --quiet | grep '^result:' || true)
          simulated=$(grep '^result:' "$tmp/out")
          if [[ "$native" == "$simulated" ]]; then
            echo "native: the same bits ($native)"
          else
            echo "native: DIFFERENT: $native" >&2
            status=1
          fi
        fi
        echo "$last"
      done
    done
  done
done
exit $status

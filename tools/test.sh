#!/usr/bin/env bash
# shellcheck disable=SC2119  # ng_build and ng_ensure_packages take optional arguments, not the script's
# Builds nograd and runs its tests: every CTest label (unit, mpi, cli, install, ...) unless the arguments
# narrow it; they go to ctest as they are, e.g. `tools/test.sh -L unit` or `tools/test.sh -R cmaes`.
# Installs missing Debian packages when run as root (see tools/common.sh). Exits non-zero on any failure.
#
# A run without arguments (what CI does) then also:
# - builds the command against MPICH (Debian's mpich, next to the default Open MPI) in build-mpich and runs the
#   mpi label there (NOGRAD_SKIP_MPICH=1 skips it);
# - when clang is installed, builds the libFuzzer harnesses of tests/fuzz in build-fuzz and runs each for a few
#   seconds, label fuzz (NOGRAD_SKIP_FUZZ=1 skips it).
set -euo pipefail
# shellcheck source=tools/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

start=$SECONDS
phases=()
summary() {
  echo
  echo "==== nograd test summary ===="
  echo "build:   $NOGRAD_BUILD_DIR ($NOGRAD_BUILD_TYPE)"
  echo "ctest:   ${ctest_args:-all labels}"
  for p in "${phases[@]}"; do echo "$p"; done
  echo "time:    $((SECONDS - start)) s"
  echo "result:  $1"
}
ctest_args="$*"

ng_ensure_packages
if ! ng_build; then
  summary "FAILED (configure or build; the compiler's messages are above)"
  exit 1
fi

ng_log "running ctest $*"
rc=0
ctest --test-dir "$NOGRAD_BUILD_DIR" --output-on-failure --output-junit "$NOGRAD_BUILD_DIR/ctest-junit.xml" \
  "$@" || rc=$?
phases+=("main:    $((SECONDS - start)) s, ctest exit status $rc")

# Runs one extra phase (name, build directory, configure arguments, build targets, ctest label) and records it.
extra_phase() {
  local name=$1 dir=$2 configure=$3 targets=$4 label=$5 t0=$SECONDS prc=0 cc=()
  [[ $name == fuzz ]] && cc=(env CC=clang)
  ng_log "$name: configuring and building $dir"
  # shellcheck disable=SC2086  # the configure arguments and targets are word lists
  if "${cc[@]}" cmake -S "$NOGRAD_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE="$NOGRAD_BUILD_TYPE" \
    -DNOGRAD_PYTHON="$NOGRAD_PYTHON" $configure >"$dir.log" 2>&1 &&
    cmake --build "$dir" -j"$(nproc)" --target $targets >>"$dir.log" 2>&1; then
    ctest --test-dir "$dir" --output-on-failure --output-junit "$dir/ctest-junit.xml" -L "$label" || prc=$?
  else
    prc=1
    tail -n 30 "$dir.log" >&2
    ng_log "$name: the build failed; its log is $dir.log"
  fi
  phases+=("$name: $((SECONDS - t0)) s, exit status $prc ($dir, label $label)")
  ((prc == 0)) || rc=1
}

if (($# == 0)); then
  if [[ ${NOGRAD_SKIP_MPICH:-0} != 1 ]] && command -v mpicc.mpich >/dev/null && command -v mpirun.mpich >/dev/null; then
    extra_phase mpich "$NOGRAD_ROOT/build-mpich" "-DNOGRAD_MPI=mpich" "nograd_cli test_engine_stats" "^mpi$"
  fi
  if [[ ${NOGRAD_SKIP_FUZZ:-0} != 1 ]] && command -v clang >/dev/null; then
    extra_phase fuzz "$NOGRAD_ROOT/build-fuzz" "-DNOGRAD_FUZZ=ON" nograd_fuzzers fuzz
  fi
fi

if ((rc == 0)); then
  summary "PASSED (JUnit report: $NOGRAD_BUILD_DIR/ctest-junit.xml)"
else
  summary "FAILED (ctest exit status $rc; failed tests listed above and in" \
    "$NOGRAD_BUILD_DIR/Testing/Temporary/LastTestsFailed.log)"
fi
exit "$rc"

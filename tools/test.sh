#!/usr/bin/env bash
# shellcheck disable=SC2119  # ng_build and ng_ensure_packages take optional arguments, not the script's
# Builds nograd and runs its tests: every CTest label (unit, mpi, cli, install, ...) unless the arguments
# narrow it; they go to ctest as they are, e.g. `tools/test.sh -L unit` or `tools/test.sh -R cmaes`.
# Installs missing Debian packages when run as root (see tools/common.sh). Exits non-zero on any failure.
set -euo pipefail
# shellcheck source=tools/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

start=$SECONDS
summary() {
  echo
  echo "==== nograd test summary ===="
  echo "build:   $NOGRAD_BUILD_DIR ($NOGRAD_BUILD_TYPE)"
  echo "ctest:   ${ctest_args:-all labels}"
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
if ((rc == 0)); then
  summary "PASSED (JUnit report: $NOGRAD_BUILD_DIR/ctest-junit.xml)"
else
  summary "FAILED (ctest exit status $rc; failed tests listed above and in" \
    "$NOGRAD_BUILD_DIR/Testing/Temporary/LastTestsFailed.log)"
fi
exit "$rc"

#!/usr/bin/env bash
# SMPI smoke test (label "smpi"): the engine under SimGrid's SMPI on 64 simulated ranks, computation not
# simulated (the network and the sleeps only), through tools/bench/scale_smpi.sh. The result must have the bits
# of the native run (one process), and the efficiency must be at least 0.95: a population of one candidate per
# rank and one of four tell blocks, seeded broadcast, at n = 20 (the factor kept whole by its keepers, 2 and 16
# ranges) and n = 300 (19 column blocks of 16 rows, 2 and 3 ranges: src/engine/slices.h). Usage: test_smpi.sh BUILD_DIR (the native build); the SMPI
# build goes to BUILD_DIR/smpi. Without smpicc it exits 77 (skipped).
set -euo pipefail
build=$(cd "${1:?usage: test_smpi.sh BUILD_DIR}" && pwd)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if ! command -v smpicc >/dev/null || ! command -v smpirun >/dev/null; then
  echo "SKIP: smpicc and smpirun not found (Debian package libsimgrid-dev)"
  exit 77
fi
out=$(NOGRAD_SMPI_BUILD_DIR="$build/smpi" NOGRAD_BUILD_DIR="$build" "$root/tools/bench/scale_smpi.sh" \
  --ranks 64 --lambda P,500 --dim 20,300 --generations 4 --no-compute --check-native --quiet) || {
  echo "$out"
  echo "FAIL: scale_smpi.sh failed (the simulation, or a result that differs from the native run's)"
  exit 1
}
echo "$out"
fail=0
while read -r line; do
  e=${line##*efficiency=}
  if ! awk -v e="$e" 'BEGIN { exit !(e >= 0.95) }'; then
    echo "FAIL: $line: communication-only efficiency below 0.95"
    fail=1
  fi
done < <(grep '^P=' <<<"$out")
[[ $(grep -c '^native: the same bits' <<<"$out") == 4 ]] || { echo "FAIL: not every configuration was checked"; fail=1; }
((fail == 0)) && echo "smpi: 4 configurations, the native bits and efficiency >= 0.95"
exit $fail

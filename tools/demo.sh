#!/usr/bin/env bash
# shellcheck disable=SC2119  # ng_build and ng_ensure_packages take optional arguments, not the script's
# The first thing to run: builds nograd and minimizes the 10-dimensional Rosenbrock function with CMA-ES on
# two MPI ranks, to a target of 1e-8. Installs missing Debian packages when run as root.
set -euo pipefail
# shellcheck source=tools/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ng_ensure_packages "${REQUIRED_PACKAGES[@]}"
ng_build

mpi_args=(-n 2)
# Open MPI will not start more ranks than cores unless asked to.
if (($(nproc) < 2)); then mpi_args+=(--oversubscribe); fi

cmd=(mpirun "${mpi_args[@]}" "$NOGRAD_BUILD_DIR/nograd" minimize --function rosenbrock --dim 10 --optimizer cmaes
  --x0 0 --sigma0 0.5 --seed 1 --ftarget 1e-8 --max-evals 100000)
ng_log "${cmd[*]}"
exec "${cmd[@]}"

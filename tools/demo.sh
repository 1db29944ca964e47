#!/usr/bin/env bash
# shellcheck disable=SC2119  # ng_build and ng_ensure_packages take optional arguments, not the script's
# The first thing to run: builds nograd and runs `nograd demo` on two MPI ranks: the glue protocol on the
# built-in synthetic domains (a base and seven experts trained, every prior built, fine-tuned on the
# target's 200 labelled rows and tested), printing one table. Installs missing Debian packages when run as
# root. Extra arguments go to nograd demo (e.g. --seeds 2, --keep DIR, --json).
set -euo pipefail
# shellcheck source=tools/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ng_ensure_packages "${REQUIRED_PACKAGES[@]}"
ng_build

mpi_args=(-n 2)
# Open MPI will not start more ranks than cores unless asked to.
if (($(nproc) < 2)); then mpi_args+=(--oversubscribe); fi

cmd=(mpirun "${mpi_args[@]}" "$NOGRAD_BUILD_DIR/nograd" demo "$@")
ng_log "${cmd[*]}"
exec "${cmd[@]}"

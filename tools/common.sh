#!/usr/bin/env bash
# Shared set-up for the nograd scripts (test.sh, demo.sh, .ci/run): the Debian packages the project needs,
# installing them (as root) or saying exactly what is missing (otherwise), configuring and building, and
# the environment every run wants. Source it; it defines functions and variables and runs nothing.
#
# Variables a caller may set beforehand:
#   NOGRAD_BUILD_DIR    build directory (default: <repo>/build)
#   NOGRAD_BUILD_TYPE   CMake build type (default: Release)
#   NOGRAD_CMAKE_ARGS   extra arguments for the configure step, e.g. "-DNOGRAD_SANITIZE=ON"
#   NOGRAD_TEST_PACKAGES  the optional packages tests use (default: "python3-numpy python3-h5py
#                       python3-torch python3-matplotlib python3-onnx python3-torchvision mpich libmpich-dev
#                       clang libclang-rt-14-dev libsimgrid-dev"):
#                       - python3-torch, for the PyTorch interchange tests, is a large download;
#                       - python3-matplotlib draws the experiments' plots;
#                       - python3-onnx and python3-torchvision serve the ONNX tests;
#                       - mpich and libmpich-dev are the second MPI the mpi tests run against, installed beside
#                         Open MPI, which stays the default mpicc and mpirun (Debian's alternatives rank Open
#                         MPI 50, MPICH 40);
#                       - clang and libclang-rt-14-dev (libFuzzer, the sanitizers' runtimes) build the fuzzing
#                         harnesses;
#                       - libsimgrid-dev (smpicc, smpirun) runs the engine on simulated ranks: the smpi test and
#                         tools/bench/scale_smpi.sh.

NOGRAD_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NOGRAD_BUILD_DIR=${NOGRAD_BUILD_DIR:-$NOGRAD_ROOT/build}
NOGRAD_BUILD_TYPE=${NOGRAD_BUILD_TYPE:-Release}
# Debian's numpy and h5py belong to the system Python, not to a pyenv or virtualenv one that may be first
# on PATH.
NOGRAD_PYTHON=/usr/bin/python3

# What building and running nograd needs.
REQUIRED_PACKAGES=(
  libopenmpi-dev openmpi-bin
  libhdf5-dev hdf5-tools
  libopenblas-dev liblapacke-dev
  librandom123-dev libcmocka-dev zlib1g-dev
  libprotobuf-c-dev protobuf-c-compiler libonnx-dev
  cmake gcc make pkg-config
)
# What the tests need beyond that (reading and writing our HDF5 files from Python).
read -r -a TEST_PACKAGES <<<"${NOGRAD_TEST_PACKAGES:-python3-numpy python3-h5py python3-torch python3-matplotlib python3-onnx python3-torchvision mpich libmpich-dev clang libclang-rt-14-dev libsimgrid-dev}"
# What the slurm test (tests/slurm, label "slurm") needs for its private one-node cluster. Not among the
# default packages: slurm-wlm brings slurmctld, slurmd and their dependencies, which no other test, the
# build or the demo use; the slurm test installs them itself (as root) when they are missing.
# shellcheck disable=SC2034  # used by tests/slurm/test_slurm.sh
SLURM_TEST_PACKAGES=(slurm-wlm munge)

# One BLAS thread per rank: evaluation is parallel over ranks, and the determinism contract needs each
# chunk's forward pass to run the same code (DESIGN.md).
export OPENBLAS_NUM_THREADS=1
# Open MPI refuses to start as root (CI, containers) unless told twice.
if [[ $(id -u) -eq 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

ng_log() { echo "[nograd] $*" >&2; }

# Prints the packages among the arguments that dpkg does not report as installed, one per line.
ng_missing_packages() {
  local p status
  for p in "$@"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || echo "$p"
  done
}

# Makes sure the given packages (default: the required and the test packages) are installed. As root,
# installs what is missing with apt-get; otherwise prints what is missing and the command to run, and
# exits 1. On a system without dpkg it only warns: the build will say what it cannot find.
ng_ensure_packages() {
  local pkgs=("$@")
  ((${#pkgs[@]})) || pkgs=("${REQUIRED_PACKAGES[@]}" "${TEST_PACKAGES[@]}")
  if ! command -v dpkg-query >/dev/null 2>&1; then
    ng_log "warning: no dpkg-query (not Debian?); not checking for: ${pkgs[*]}"
    return 0
  fi
  local missing
  mapfile -t missing < <(ng_missing_packages "${pkgs[@]}")
  if ((${#missing[@]} == 0)); then
    ng_log "all ${#pkgs[@]} required packages are installed"
    return 0
  fi
  if [[ $(id -u) -eq 0 ]]; then
    ng_log "installing ${#missing[@]} missing packages: ${missing[*]}"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    mapfile -t missing < <(ng_missing_packages "${missing[@]}")
    if ((${#missing[@]})); then
      ng_log "error: still missing after apt-get install: ${missing[*]}"
      exit 1
    fi
    return 0
  fi
  ng_log "error: ${#missing[@]} required packages are missing: ${missing[*]}"
  ng_log "install them with:"
  echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
}

# Configures and builds nograd in NOGRAD_BUILD_DIR with all cores. Extra arguments go to the configure
# step (after NOGRAD_CMAKE_ARGS), e.g. ng_build -DNOGRAD_SANITIZE=ON.
ng_build() {
  local extra=()
  [[ -n ${NOGRAD_CMAKE_ARGS:-} ]] && read -r -a extra <<<"$NOGRAD_CMAKE_ARGS"
  ng_log "configuring $NOGRAD_BUILD_DIR ($NOGRAD_BUILD_TYPE)"
  # Each step returns on failure by itself, so that callers may test ng_build (where set -e is off).
  cmake -S "$NOGRAD_ROOT" -B "$NOGRAD_BUILD_DIR" -DCMAKE_BUILD_TYPE="$NOGRAD_BUILD_TYPE" \
    -DNOGRAD_PYTHON="$NOGRAD_PYTHON" "${extra[@]}" "$@" || return
  ng_log "building with $(nproc) jobs"
  cmake --build "$NOGRAD_BUILD_DIR" -j"$(nproc)" || return
}

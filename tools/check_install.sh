#!/usr/bin/env bash
# Installs a built nograd tree into a temporary prefix and checks that a program outside the source tree can
# use it, both through pkg-config and through find_package(nograd): the files are where they should be, the
# installed `nograd` resolves libnograd, and a small consumer compiles, links and runs each way.
#
# Usage: tools/check_install.sh [build-dir]      (default: $NOGRAD_BUILD_DIR or build/)
# The CTest test "install" runs it with the build directory, the C compiler (NOGRAD_CC) and, in a
# sanitizer build, the flags every consumer must also be built with (NOGRAD_CONSUMER_CFLAGS).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-${NOGRAD_BUILD_DIR:-$repo/build}}
build=$(cd "$build" && pwd)
cc=${NOGRAD_CC:-${CC:-cc}}
read -r -a cflags <<<"${NOGRAD_CONSUMER_CFLAGS:-}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nograd-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

fail() {
  echo "check_install: FAIL: $*" >&2
  exit 1
}
ok() { echo "check_install: ok: $*"; }

# 1. Install.
if ! cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1; then
  cat "$tmp/install.log" >&2
  fail "cmake --install $build --prefix $prefix"
fi
ok "cmake --install into $prefix"

# 2. The files.
pc=$(find "$prefix" -path '*/pkgconfig/nograd.pc' | head -n 1)
[[ -n $pc ]] || fail "no pkgconfig/nograd.pc under $prefix"
libdir=$(dirname "$(dirname "$pc")")
[[ -L $libdir/libnograd.so && -e $libdir/libnograd.so ]] || fail "no libnograd.so symlink in $libdir"
soname=$(objdump -p "$libdir/libnograd.so" 2>/dev/null | awk '/SONAME/ {print $2}')
[[ -n $soname && -e $libdir/$soname ]] || fail "libnograd.so has no SONAME, or $libdir/$soname is missing"
for f in nogradConfig.cmake nogradConfigVersion.cmake nogradTargets.cmake; do
  [[ -f $libdir/cmake/nograd/$f ]] || fail "missing $libdir/cmake/nograd/$f"
done
for h in "$repo"/include/nograd/*.h; do
  [[ -f $prefix/include/nograd/$(basename "$h") ]] || fail "header $(basename "$h") not installed"
done
ok "library ($soname), headers, CMake package and nograd.pc are installed"
if [[ -x $build/nograd ]]; then
  [[ -x $prefix/bin/nograd ]] || fail "the nograd command was built but not installed"
  if LD_LIBRARY_PATH='' ldd "$prefix/bin/nograd" | grep -q 'not found'; then
    ldd "$prefix/bin/nograd" >&2
    fail "installed bin/nograd does not resolve its libraries"
  fi
  ok "bin/nograd is installed and finds libnograd through its RPATH"
else
  echo "check_install: note: no nograd command in $build (src/cli not written yet?); not checked"
fi

# 3. A consumer: the umbrella header when there is one, else the modules every build has.
if [[ -f $prefix/include/nograd/nograd.h ]]; then
  includes='#include <nograd/nograd.h>'
else
  includes=$'#include <nograd/error.h>\n#include <nograd/state.h>'
fi
mkdir -p "$tmp/consumer"
cat >"$tmp/consumer/consumer.c" <<C
#include <stdio.h>
$includes
int main(void) {
  ng_state *st = NULL;
  double v = 0;
  if (ng_state_create(&st) || ng_state_put_scalar(st, "x", 2.5) || ng_state_get_scalar(st, "x", &v)) return 1;
  ng_state_destroy(&st);
  printf("consumer: %s, %g\n", ng_strerror(NG_EINVAL), v);
  return (v == 2.5 && st == NULL) ? 0 : 1;
}
C

# 4. With pkg-config.
export PKG_CONFIG_PATH=$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
pkg-config --validate nograd || fail "pkg-config --validate nograd"
[[ $(pkg-config --variable=prefix nograd) == "$prefix" ]] ||
  fail "nograd.pc has prefix $(pkg-config --variable=prefix nograd), expected $prefix"
pkg-config --static --libs nograd >/dev/null || fail "pkg-config --static --libs nograd (a Requires.private is missing)"
read -r -a pc_cflags <<<"$(pkg-config --cflags nograd)"
read -r -a pc_libs <<<"$(pkg-config --libs nograd)"
"$cc" -std=c11 -Wall -Wextra -Werror "${cflags[@]}" -o "$tmp/consumer/consumer-pc" "$tmp/consumer/consumer.c" \
  "${pc_cflags[@]}" "${pc_libs[@]}" "-Wl,-rpath,$libdir" || fail "compiling the consumer with pkg-config"
out=$("$tmp/consumer/consumer-pc") || fail "the pkg-config consumer ran and failed: $out"
ok "pkg-config consumer built and ran ($out)"

# 5. With find_package(nograd), requiring the installed version and checking it is the one found.
version=$(pkg-config --modversion nograd)
cat >"$tmp/consumer/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.20)
project(nograd_consumer LANGUAGES C)
find_package(nograd $version REQUIRED CONFIG)
if(NOT nograd_DIR MATCHES "^$prefix/")
  message(FATAL_ERROR "found nograd in \${nograd_DIR}, not under $prefix")
endif()
add_executable(consumer consumer.c)
target_link_libraries(consumer PRIVATE nograd::nograd)
CMAKE
if ! cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="${cflags[*]}" -DCMAKE_EXE_LINKER_FLAGS="${cflags[*]}" \
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF >"$tmp/cmake.log" 2>&1 ||
  ! cmake --build "$tmp/consumer/build" >>"$tmp/cmake.log" 2>&1; then
  cat "$tmp/cmake.log" >&2
  fail "configuring or building the find_package(nograd) consumer"
fi
out=$("$tmp/consumer/build/consumer") || fail "the find_package consumer ran and failed: $out"
ok "find_package(nograd $version) consumer built and ran ($out)"
# 6. The Python package: installed under the prefix, it loads the installed libnograd by itself (_paths.py),
# and the installed `nograd plot` runs it (the binary looks beside itself first: bin/../NOGRAD_PYTHON_SITEDIR).
python=${NOGRAD_PYTHON:-/usr/bin/python3}
site=$prefix/${NOGRAD_PYTHON_SITEDIR:-lib/python3/dist-packages}
for f in __init__.py _lib.py _paths.py optimizers.py evaluator.py plot.py; do
  [[ -f $site/nograd/$f ]] || fail "the Python package is not installed: no $site/nograd/$f"
done
if "$python" -c 'import numpy' 2>/dev/null; then
  out=$(cd "$tmp" && env -u NOGRAD_LIBRARY -u NOGRAD_BUILD_DIR PYTHONPATH="$site" "$python" -c '
import nograd
from nograd import _lib
es = nograd.CMAES([1.0, 2.0], 0.5, ftarget=1e-10)
while not es.stop():
    X = es.ask()
    es.tell(X, (X * X).sum(axis=1))
print(_lib.lib()._name, es.stop())' 2>&1) || fail "the installed Python package failed: $out"
  [[ $out == "$prefix/"*" ftarget" ]] || fail "the installed Python package loaded another libnograd: $out"
  ok "the Python package in $site runs on the installed library (${out% *})"
  if "$python" -c 'import h5py, matplotlib' 2>/dev/null && [[ -x $prefix/bin/nograd ]]; then
    "$prefix/bin/nograd" minimize --function sphere --dim 3 --max-evals 300 --checkpoint "$tmp/run.h5" --quiet \
      >/dev/null || fail "the installed nograd minimize --checkpoint"
    out=$(NOGRAD_PYTHON=$python "$prefix/bin/nograd" plot "$tmp/run.h5" --out "$tmp/run.png" 2>&1) ||
      fail "the installed nograd plot failed: $out"
    ok "the installed nograd plot ran the installed package: $out"
  fi
else
  echo "check_install: note: no numpy for $python; the Python package was installed but not run"
fi
echo "check_install: PASSED"

#!/usr/bin/env bash
# Cross-compiles the kernels and their tests for aarch64 (NEON path) and runs them under
# qemu-aarch64. On a fresh Debian CI machine, when run as root, installs the tools itself.
#
#   tests/cpp/run_aarch64.sh [extra arguments for bmx_kernels_test]
#
# Environment: BMX_AARCH64_SHAPES (random bconv2d shapes; default 1000 like the host run, about
#              15 s under qemu; lower it on slow machines),
#              BMX_AARCH64_BUILD (build directory, default build/kernels-aarch64).
# Exit status: that of the test executable; 77 when the tools are missing and cannot be
# installed (not root, or no apt-get).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${BMX_AARCH64_BUILD:-$ROOT/build/kernels-aarch64}"
SHAPES="${BMX_AARCH64_SHAPES:-1000}"

find_qemu() {
  for q in qemu-aarch64 qemu-aarch64-static; do
    if command -v "$q" >/dev/null 2>&1; then echo "$q"; return 0; fi
  done
  return 1
}

if ! command -v aarch64-linux-gnu-g++ >/dev/null 2>&1 || ! find_qemu >/dev/null; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "run_aarch64.sh: installing g++-aarch64-linux-gnu and qemu-user" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq g++-aarch64-linux-gnu qemu-user >/dev/null
  else
    echo "run_aarch64.sh: aarch64-linux-gnu-g++ or qemu-aarch64 missing and cannot install" \
         "(need root and apt-get): apt-get install g++-aarch64-linux-gnu qemu-user" >&2
    exit 77
  fi
fi
QEMU="$(find_qemu)"

# A static executable needs the static libgomp (FindOpenMP would pick libgomp.so).
GOMP_A="$(aarch64-linux-gnu-g++ -print-file-name=libgomp.a)"
cmake -S "$ROOT/operators/kernels" -B "$BUILD" \
  -DCMAKE_TOOLCHAIN_FILE="$ROOT/tests/cpp/aarch64_toolchain.cmake" \
  -DOpenMP_gomp_LIBRARY="$GOMP_A" \
  -DCMAKE_BUILD_TYPE=Release -DBMX_KERNELS_BUILD_TESTS=ON >"$BUILD.configure.log" 2>&1 ||
  { cat "$BUILD.configure.log"; exit 1; }
# (The static libgomp makes ld warn about dlopen in static executables; harmless here.)
cmake --build "$BUILD" -j"$(nproc)" >"$BUILD.build.log" 2>&1 || { cat "$BUILD.build.log"; exit 1; }

file_info="$(file -b "$BUILD/bmx_kernels_test" 2>/dev/null || true)"
echo "run_aarch64.sh: built ${file_info:-$BUILD/bmx_kernels_test}"
# Idle OpenMP workers sleep rather than spin (emulated threads on a busy machine).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
exec "$QEMU" "$BUILD/bmx_kernels_test" --shapes "$SHAPES" "$@"

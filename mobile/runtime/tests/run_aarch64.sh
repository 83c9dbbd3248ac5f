#!/usr/bin/env bash
# Cross-compiles the runtime and its test programs for aarch64 (NEON kernels) with Debian's
# toolchain and runs them under qemu-aarch64:
#   runtime_check on converted zoo models against MXNet's outputs (made on this x86 machine by
#   make_reference_outputs.py), on every kernel path the build has (auto = neon, scalar) and on
#   1 and 2 threads; then test_model_file on the reader cases (made by make_model_file_cases.py).
# On a fresh Debian CI machine, when run as root, installs the tools itself.
#
#   mobile/runtime/tests/run_aarch64.sh [MODEL ...]     (default: binary_lenet birealnet18_cifar reactnet_a_cifar)
#
# Environment: PYTHON (the project's MXNet, default .venv/bin/python),
#              BMX_AARCH64_BUILD (build directory, default build/runtime-aarch64),
#              BMX_RUNTIME_MODELS (reference folder, default build/runtime-check/models).
# Exit status: 0 when every check passes; 1 otherwise; 77 when the tools are missing and cannot
# be installed (not root, or no apt-get).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
HERE="$ROOT/mobile/runtime/tests"
BUILD="${BMX_AARCH64_BUILD:-$ROOT/build/runtime-aarch64}"
MODELS="${BMX_RUNTIME_MODELS:-$ROOT/build/runtime-check/models}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"

find_qemu() {
  for q in qemu-aarch64 qemu-aarch64-static; do
    if command -v "$q" >/dev/null 2>&1; then echo "$q"; return 0; fi
  done
  return 1
}

if ! command -v aarch64-linux-gnu-g++ >/dev/null 2>&1 ||
   ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || ! find_qemu >/dev/null; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "run_aarch64.sh: installing g++-aarch64-linux-gnu, gcc-aarch64-linux-gnu, qemu-user" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq g++-aarch64-linux-gnu gcc-aarch64-linux-gnu qemu-user >/dev/null
  else
    echo "run_aarch64.sh: the aarch64 cross compilers or qemu-aarch64 are missing and cannot" \
         "be installed (need root and apt-get): apt-get install g++-aarch64-linux-gnu" \
         "gcc-aarch64-linux-gnu qemu-user" >&2
    exit 77
  fi
fi
QEMU="$(find_qemu)"

# 1. MXNet's outputs, on x86 (remade when the script changes or models are named).
if [ $# -gt 0 ] || [ ! -f "$MODELS/cases.txt" ] ||
   [ "$HERE/make_reference_outputs.py" -nt "$MODELS/cases.txt" ]; then
  echo "run_aarch64.sh: converting models and writing MXNet's outputs ($PYTHON)"
  rm -rf "$MODELS"
  mkdir -p "$(dirname "$MODELS")"
  "$PYTHON" "$HERE/make_reference_outputs.py" "$MODELS" "$@" >"$MODELS.log" 2>&1 ||
    { cat "$MODELS.log"; exit 1; }
fi
CASES="$(dirname "$MODELS")/cases"
if [ ! -f "$CASES/dtypes.expect" ]; then
  "$PYTHON" "$HERE/make_model_file_cases.py" "$CASES" >"$CASES.log" 2>&1 ||
    { cat "$CASES.log"; exit 1; }
fi

# 2. Cross-build. A static executable needs the static libgomp (FindOpenMP would pick the .so).
mkdir -p "$BUILD"
GOMP_A="$(aarch64-linux-gnu-g++ -print-file-name=libgomp.a)"
cmake -S "$HERE" -B "$BUILD" \
  -DCMAKE_TOOLCHAIN_FILE="$ROOT/tests/cpp/aarch64_toolchain.cmake" \
  -DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc -DOpenMP_gomp_LIBRARY="$GOMP_A" \
  -DCMAKE_BUILD_TYPE=Release >"$BUILD/configure.log" 2>&1 ||
  { cat "$BUILD/configure.log"; exit 1; }
# (The static libgomp makes ld warn about dlopen in static executables; harmless here.)
cmake --build "$BUILD" -j2 --target runtime_check test_model_file >"$BUILD/build.log" 2>&1 ||
  { cat "$BUILD/build.log"; exit 1; }
echo "run_aarch64.sh: built $(file -b "$BUILD/runtime_check" 2>/dev/null | cut -d, -f1-2)"

# 3. Run under qemu. Idle OpenMP workers sleep rather than spin (emulated threads).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
failed=0
while read -r name symbol params shape input reference; do
  for run in "auto 1" "auto 2" "scalar 1" "reference 1"; do
    set -- $run
    echo "== $name, kernel path $1, $2 thread(s), qemu-aarch64"
    (cd "$MODELS" && "$QEMU" "$BUILD/runtime_check" "$symbol" "$params" "$shape" "$input" \
       "$reference" --path "$1" --threads "$2") || [ $? -eq 3 ] || failed=1
  done
done <"$MODELS/cases.txt"
echo "== test_model_file, qemu-aarch64"
"$QEMU" "$BUILD/test_model_file" "$CASES" | tail -n 1 || failed=1
if [ $failed -ne 0 ]; then
  echo "run_aarch64.sh: FAILED" >&2
  exit 1
fi
echo "run_aarch64.sh: OK"

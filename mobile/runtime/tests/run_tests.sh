#!/usr/bin/env bash
# The runtime's C/C++ tests on this machine (x86 or any host), against files and outputs MXNet
# itself writes:
#
#   mobile/runtime/tests/run_tests.sh
#
# 1. make_model_file_cases.py writes the reader cases with the project's MXNet (.venv/bin/python,
#    or $PYTHON) and what MXNet reads from them; test_model_file.cc is built with the host
#    compiler ($CXX, default c++) together with src/model_file.cc, under AddressSanitizer and
#    UBSan where the compiler has them (BMX_TEST_SANITIZE=0 turns them off), and runs as its own
#    process, so a crash on hostile input fails this script;
# 2. make_reference_outputs.py converts zoo models (binary_lenet, birealnet18_cifar,
#    reactnet_a_cifar) and writes MXNet's outputs; runtime_check.c, built with the runtime (CMake, Release), runs them through
#    the C API on the default kernel path (1 and 2 threads) and on the scalar and reference paths.
# Build outputs go to $BMX_RUNTIME_TEST_BUILD (default build/runtime-tests) and
# build/runtime-check (shared with run_aarch64.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
HERE="$ROOT/mobile/runtime/tests"
BUILD="${BMX_RUNTIME_TEST_BUILD:-$ROOT/build/runtime-tests}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
CXX="${CXX:-c++}"
mkdir -p "$BUILD"

echo "run_tests.sh: writing the cases with MXNet ($PYTHON)"
rm -rf "$BUILD/cases"
"$PYTHON" "$HERE/make_model_file_cases.py" "$BUILD/cases" >"$BUILD/cases.log" 2>&1 ||
  { cat "$BUILD/cases.log"; exit 1; }

flags=(-std=c++17 -O1 -g -Wall -Wextra -Werror)
if [ "${BMX_TEST_SANITIZE:-1}" != "0" ] &&
   echo 'int main(){return 0;}' | "$CXX" -x c++ -fsanitize=address,undefined - \
     -o "$BUILD/sanitize_probe" >/dev/null 2>&1; then
  flags+=(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
fi
echo "run_tests.sh: building test_model_file (${flags[*]})"
"$CXX" "${flags[@]}" -I"$ROOT/mobile/runtime/src" "$HERE/test_model_file.cc" \
  "$ROOT/mobile/runtime/src/model_file.cc" -o "$BUILD/test_model_file"
"$BUILD/test_model_file" "$BUILD/cases"

MODELS="$ROOT/build/runtime-check/models"
if [ ! -f "$MODELS/cases.txt" ] ||
   [ "$HERE/make_reference_outputs.py" -nt "$MODELS/cases.txt" ]; then
  echo "run_tests.sh: converting models and writing MXNet's outputs"
  rm -rf "$MODELS"
  mkdir -p "$(dirname "$MODELS")"
  "$PYTHON" "$HERE/make_reference_outputs.py" "$MODELS" >"$MODELS.log" 2>&1 ||
    { cat "$MODELS.log"; exit 1; }
fi
HOST_BUILD="$ROOT/build/runtime-check/host"
echo "run_tests.sh: building runtime_check in $HOST_BUILD"
mkdir -p "$HOST_BUILD"
cmake -S "$HERE" -B "$HOST_BUILD" -DCMAKE_BUILD_TYPE=Release >"$HOST_BUILD/configure.log" 2>&1 ||
  { cat "$HOST_BUILD/configure.log"; exit 1; }
cmake --build "$HOST_BUILD" -j2 --target runtime_check >"$HOST_BUILD/build.log" 2>&1 ||
  { cat "$HOST_BUILD/build.log"; exit 1; }
failed=0
while read -r name symbol params shape input reference; do
  for run in "auto 1" "auto 2" "avx2 1" "scalar 1" "reference 1"; do
    set -- $run
    echo "== $name, kernel path $1, $2 thread(s)"
    (cd "$MODELS" && "$HOST_BUILD/runtime_check" "$symbol" "$params" "$shape" "$input" \
       "$reference" --path "$1" --threads "$2") || [ $? -eq 3 ] || failed=1
  done
done <"$MODELS/cases.txt"
[ $failed -eq 0 ] || { echo "run_tests.sh: FAILED" >&2; exit 1; }
echo "run_tests.sh: OK"

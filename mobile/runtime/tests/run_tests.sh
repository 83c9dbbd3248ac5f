#!/usr/bin/env bash
# Tests of the runtime's file readers against files MXNet itself writes.
#
#   mobile/runtime/tests/run_tests.sh
#
# 1. make_model_file_cases.py writes the case files with the project's MXNet (.venv/bin/python,
#    or $PYTHON) and what MXNet reads from them;
# 2. test_model_file.cc is built with the host compiler ($CXX, default c++) together with
#    src/model_file.cc, under AddressSanitizer and UBSan where the compiler has them
#    (BMX_TEST_SANITIZE=0 turns them off);
# 3. the test runs as its own process, so a crash on hostile input fails this script.
# Build outputs go to $BMX_RUNTIME_TEST_BUILD (default build/runtime-tests).
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

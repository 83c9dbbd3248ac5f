#!/bin/sh
# Builds the libFuzzer target of the operators' attribute parser (tests/fuzz/attrs_fuzz.cc) with
# clang's -fsanitize=fuzzer,address. Usage: tests/fuzz/build_attrs_fuzz.sh OUT_DIR [PYTHON]
# Needs clang with its libFuzzer runtime (Debian: apt-get install clang libclang-rt-14-dev);
# prints a line and exits 3 when there is none, so `make fuzz` can go on with the Python targets.
set -e
OUT=${1:-build/fuzz}
PY=${2:-.venv/bin/python}
CXX=${CXX_FUZZ:-$(command -v clang++ || command -v clang++-14 || true)}
if [ -z "$CXX" ]; then
  echo "attrs_fuzz: no clang++ found (apt-get install clang libclang-rt-14-dev); skipped"
  exit 3
fi
MX=$($PY -c "import mxnet, os; print(os.path.dirname(mxnet.__file__))")
mkdir -p "$OUT"
FLAGS="-std=c++17 -O2 -g -fsanitize=fuzzer,address -w"
# MXNet's lib_api.cc changes only with the wheel: compile it once.
[ -f "$OUT/lib_api.o" ] || $CXX $FLAGS -c -I "$MX/include" "$MX/src/lib_api.cc" -o "$OUT/lib_api.o"
# common.cc also holds the layer cache, which calls the kernel core: link the kernel library,
# built with the same compiler (no OpenMP, no tests; the parser never reaches the kernels).
cmake -S operators/kernels -B "$OUT/kernels" -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_BUILD_TYPE=Release \
  -DBMX_KERNELS_OPENMP=OFF -DBMX_KERNELS_BUILD_TESTS=OFF >"$OUT/kernels.log" 2>&1 &&
  cmake --build "$OUT/kernels" -j2 >>"$OUT/kernels.log" 2>&1 ||
  { tail -20 "$OUT/kernels.log"; exit 1; }
$CXX $FLAGS -I "$MX/include" -I operators/mxnet -I operators/kernels \
  tests/fuzz/attrs_fuzz.cc operators/mxnet/common.cc "$OUT/lib_api.o" \
  "$OUT/kernels/libbmx_kernels.a" -lpthread -o "$OUT/attrs_fuzz"
echo "attrs_fuzz: built $OUT/attrs_fuzz"

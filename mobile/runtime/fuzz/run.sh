#!/usr/bin/env bash
# Builds loader_fuzz (clang-14, libFuzzer, ASan + UBSan) and runs it.
#
#   mobile/runtime/fuzz/run.sh [RUNS] [more libFuzzer arguments]
#
# RUNS: executions (default 3000: a short check for `make test`; `make fuzz` passes 1000000).
# Every run first replays the seeds and mobile/runtime/fuzz/regressions/ (inputs of past
# findings), then mutates; the corpus it grows stays in build/runtime-fuzz/corpus for the next
# run. A finding is written to build/runtime-fuzz/crashes/ and fails the run; reproduce it with
#   build/runtime-fuzz/build/loader_fuzz FILE        (LOADER_FUZZ_VERBOSE=1 prints each status)
# Environment: PYTHON (the project's MXNet, default .venv/bin/python) writes the seed corpus,
#   BMX_FUZZ_BUILD (default build/runtime-fuzz), BMX_FUZZ_MAX_LEN (default 16384 bytes).
# On a fresh Debian CI machine, when run as root, installs clang-14 and libclang-rt-14-dev.
# Exit status: 0 when no finding; 1 on a finding or a failed build; 77 when the tools are
# missing and cannot be installed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
HERE="$ROOT/mobile/runtime/fuzz"
OUT="${BMX_FUZZ_BUILD:-$ROOT/build/runtime-fuzz}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
RUNS="${1:-3000}"
[ $# -gt 0 ] && shift
MAX_LEN="${BMX_FUZZ_MAX_LEN:-16384}"
CLANG=/usr/bin/clang++-14

# libFuzzer's runtime comes with libclang-rt-14-dev; probe by linking an empty target.
have_libfuzzer() {
  [ -x "$CLANG" ] || return 1
  mkdir -p "$OUT"
  printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' \
    >"$OUT/probe.cc"
  "$CLANG" -fsanitize=fuzzer,address,undefined "$OUT/probe.cc" -o "$OUT/probe" >/dev/null 2>&1
}
if ! have_libfuzzer; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "run.sh: installing clang-14 and libclang-rt-14-dev" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq clang-14 libclang-rt-14-dev >/dev/null
  else
    echo "run.sh: clang-14 with libFuzzer missing and cannot install (need root and apt-get):" \
         "apt-get install clang-14 libclang-rt-14-dev" >&2
    exit 77
  fi
  have_libfuzzer || { echo "run.sh: clang-14 cannot link a libFuzzer target" >&2; exit 1; }
fi

echo "run.sh: building loader_fuzz in $OUT/build"
cmake -S "$HERE" -B "$OUT/build" -DCMAKE_CXX_COMPILER="$CLANG" >"$OUT/configure.log" 2>&1 ||
  { cat "$OUT/configure.log"; exit 1; }
cmake --build "$OUT/build" --target loader_fuzz -j2 >"$OUT/build.log" 2>&1 ||
  { cat "$OUT/build.log"; exit 1; }

# Seeds: tiny converted models, remade when make_seeds.py changes.
if [ ! -f "$OUT/seeds/.stamp" ] || [ "$HERE/make_seeds.py" -nt "$OUT/seeds/.stamp" ]; then
  echo "run.sh: writing the seed corpus with MXNet ($PYTHON)"
  rm -rf "$OUT/seeds"
  "$PYTHON" "$HERE/make_seeds.py" "$OUT/seeds" >"$OUT/seeds.log" 2>&1 ||
    { cat "$OUT/seeds.log"; exit 1; }
  touch "$OUT/seeds/.stamp"
fi
mkdir -p "$OUT/corpus" "$OUT/crashes"

# Every seed must load and run: otherwise the fuzzer would only explore error paths.
for seed in "$OUT"/seeds/seed_*; do
  log="$(LOADER_FUZZ_VERBOSE=1 "$OUT/build/loader_fuzz" "$seed" 2>&1)" ||
    { echo "$log"; echo "run.sh: seed $seed crashes" >&2; exit 1; }
  # (a kernel path this CPU or build lacks is refused at load: that seed only tests the refusal)
  if ! grep -q "forward: BMX_OK" <<<"$log" && ! grep -q "UNSUPPORTED: kernel path" <<<"$log"; then
    grep "loader_fuzz:" <<<"$log" >&2
    echo "run.sh: seed $(basename "$seed") does not load and run: the runtime or the seed" \
         "generator changed" >&2
    exit 1
  fi
done

# ASan: a failed huge allocation returns NULL (the runtime reports BMX_ERROR_OUT_OF_MEMORY)
# instead of aborting; leaks are findings; allocation stacks 8 frames deep (the default 30 costs
# about 15% of the executions; replaying a finding without these options gives full stacks).
export ASAN_OPTIONS="${ASAN_OPTIONS:-allocator_may_return_null=1:detect_leaks=1:malloc_context_size=8}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
echo "run.sh: loader_fuzz, $RUNS executions (max_len $MAX_LEN)"
dirs=("$OUT/corpus" "$OUT/seeds")
[ -d "$HERE/regressions" ] && dirs+=("$HERE/regressions")
start=$(date +%s)
set +e
"$OUT/build/loader_fuzz" "${dirs[@]}" \
  -runs="$RUNS" -max_len="$MAX_LEN" -dict="$HERE/loader.dict" -timeout=10 \
  -rss_limit_mb=2048 -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
  -artifact_prefix="$OUT/crashes/" "$@" >"$OUT/fuzz.log" 2>&1
status=$?
set -e
elapsed=$(( $(date +%s) - start ))
if [ $status -ne 0 ]; then
  tail -n 60 "$OUT/fuzz.log"
  echo "run.sh: FINDING (exit $status); the input is in $OUT/crashes/" >&2
  exit 1
fi
grep -E "^stat::number_of_executed_units|^stat::average_exec_per_sec|^Done" "$OUT/fuzz.log" || true
echo "run.sh: OK, no finding in $elapsed s"

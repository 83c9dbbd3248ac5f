#!/usr/bin/env bash
# Builds build/BmxnetRuntime.xcframework: the runtime (mobile/runtime, with the kernel core of
# operators/kernels) as one static library per platform, for the Swift package beside this file:
#   ios-arm64                      iPhone / iPad
#   ios-arm64_x86_64-simulator     the simulator on Apple silicon and Intel Macs
#   macos-arm64_x86_64             `swift build` / `swift test` on a Mac
# Each architecture is its own CMake build (the kernels pick their SIMD code by processor), the
# runtime's own thread pool instead of OpenMP (-DBMX_KERNELS_OPENMP=OFF), then lipo and
# xcodebuild -create-xcframework. Needs macOS with Xcode (command-line tools) and CMake 3.16+.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="$HERE/build"
JOBS="$(sysctl -n hw.ncpu 2>/dev/null || echo 4)"

if [ "$(uname)" != "Darwin" ] || ! command -v xcodebuild >/dev/null 2>&1; then
  echo "build_xcframework.sh: needs macOS with Xcode (xcodebuild); on Linux build the runtime" \
       "with CMake instead (mobile/runtime/README.md)" >&2
  exit 1
fi

# build NAME SYSTEM SYSROOT ARCH DEPLOYMENT: one static libbmxnet_all.a for one architecture.
build() {
  local name="$1" system="$2" sysroot="$3" arch="$4" deployment="$5"
  local dir="$OUT/$name"
  cmake -S "$ROOT/mobile/runtime" -B "$dir" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_SYSTEM_NAME="$system" -DCMAKE_OSX_SYSROOT="$sysroot" \
    -DCMAKE_OSX_ARCHITECTURES="$arch" -DCMAKE_SYSTEM_PROCESSOR="$arch" \
    -DCMAKE_OSX_DEPLOYMENT_TARGET="$deployment" -DBMX_KERNELS_OPENMP=OFF >"$dir.configure.log"
  cmake --build "$dir" -j"$JOBS" --target bmxnet_runtime >"$dir.build.log"
  # one archive with the runtime and the kernel core (the static runtime needs both)
  libtool -static -o "$dir/libbmxnet_all.a" "$dir/libbmxnet_runtime.a" \
    "$(find "$dir" -name libbmx_kernels.a | head -n 1)"
}

mkdir -p "$OUT"
build ios-arm64 iOS iphoneos arm64 15.0
build sim-arm64 iOS iphonesimulator arm64 15.0
build sim-x86_64 iOS iphonesimulator x86_64 15.0
build mac-arm64 Darwin macosx arm64 12.0
build mac-x86_64 Darwin macosx x86_64 12.0

mkdir -p "$OUT/sim" "$OUT/mac"
lipo -create "$OUT/sim-arm64/libbmxnet_all.a" "$OUT/sim-x86_64/libbmxnet_all.a" \
  -output "$OUT/sim/libbmxnet_all.a"
lipo -create "$OUT/mac-arm64/libbmxnet_all.a" "$OUT/mac-x86_64/libbmxnet_all.a" \
  -output "$OUT/mac/libbmxnet_all.a"
rm -rf "$OUT/BmxnetRuntime.xcframework"
xcodebuild -create-xcframework \
  -library "$OUT/ios-arm64/libbmxnet_all.a" \
  -library "$OUT/sim/libbmxnet_all.a" \
  -library "$OUT/mac/libbmxnet_all.a" \
  -output "$OUT/BmxnetRuntime.xcframework"
echo "build_xcframework.sh: wrote $OUT/BmxnetRuntime.xcframework"

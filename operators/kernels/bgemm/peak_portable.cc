// Portable peak loop for bench.h: the portable kernel's 64-bit popcount (popcount_portable.h:
// the instruction where the target has one, else SWAR; __builtin_popcountll alone is a libgcc
// call on baseline x86-64, which made this "peak" ~10x below the kernel), 8 accumulators.
#include <cstdint>

#include "bench.h"
#include "bgemm/popcount_portable.h"

namespace bmx {
namespace {

uint64_t run(int64_t iters, uint64_t* sink) {
  uint64_t x[8], acc[8] = {0};
  for (int i = 0; i < 8; ++i) x[i] = 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(i + 1);
  uint64_t w = 0x0123456789ABCDEFull;
  for (int64_t it = 0; it < iters; ++it) {
    asm volatile("" : "+r"(w));
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) acc[i] += static_cast<uint64_t>(popcount64(x[i] ^ w));
  }
  uint64_t total = 0;
  for (int i = 0; i < 8; ++i) total += acc[i];
  *sink = total;
  return static_cast<uint64_t>(iters) * 8u * 64u;
}

}  // namespace

const PeakLoopFn kPeakLoopPortable = run;

}  // namespace bmx

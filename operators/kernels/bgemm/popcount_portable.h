// The 64-bit popcount of the portable path (internal header). Where the compiler targets a
// popcount instruction (x86 -mpopcnt, aarch64) it is that instruction; otherwise (baseline
// x86-64) the classic SWAR sequence, which beats libgcc's table-driven __popcountdi2 by far.
// For the files compiled with the baseline flags only (kernel_4x2_portable.cc,
// output_portable.cc, peak_portable.cc): an ISA file including it would emit its own copy of an
// inline function (see dispatch.h), hence the anonymous namespace as a second guard.
#ifndef BMXNET_KERNELS_BGEMM_POPCOUNT_PORTABLE_H_
#define BMXNET_KERNELS_BGEMM_POPCOUNT_PORTABLE_H_

#include <cstdint>

namespace bmx {
namespace {

inline int64_t popcount64(uint64_t x) {
#if defined(__POPCNT__) || defined(__aarch64__) || defined(__ARM_NEON)
  return __builtin_popcountll(x);
#else
  x = x - ((x >> 1) & 0x5555555555555555ull);
  x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
  return static_cast<int64_t>((x * 0x0101010101010101ull) >> 56);
#endif
}

}  // namespace
}  // namespace bmx

#endif  // BMXNET_KERNELS_BGEMM_POPCOUNT_PORTABLE_H_

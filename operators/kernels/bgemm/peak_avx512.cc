// AVX-512 VPOPCNTDQ peak loop for bench.h (an ISA file: intrinsics only, see dispatch.h).
// The shape of the 4x40 kernel's inner loop without its loads: 20 independent accumulators,
// each += popcount(x_i XOR w) with 512-bit vectors.
#include <immintrin.h>

#include <cstdint>

#include "bench.h"

namespace bmx {
namespace {

uint64_t run(int64_t iters, uint64_t* sink) {
  __m512i x[20], acc[20];
#pragma GCC unroll 20
  for (int i = 0; i < 20; ++i) {
    x[i] = _mm512_set1_epi64(0x9E3779B97F4A7C15ull * static_cast<uint64_t>(i + 1));
    acc[i] = _mm512_setzero_si512();
  }
  __m512i w = _mm512_set1_epi64(0x0123456789ABCDEFll);
  for (int64_t it = 0; it < iters; ++it) {
    asm volatile("" : "+v"(w));  // w is opaque: the xor must be redone every iteration
#pragma GCC unroll 20  // fully unrolled, so x[] and acc[] live in zmm registers
    for (int i = 0; i < 20; ++i) {
      acc[i] = _mm512_add_epi64(acc[i], _mm512_popcnt_epi64(_mm512_xor_si512(x[i], w)));
    }
  }
  __m512i total = acc[0];
#pragma GCC unroll 20
  for (int i = 1; i < 20; ++i) total = _mm512_add_epi64(total, acc[i]);
  *sink = static_cast<uint64_t>(_mm512_reduce_add_epi64(total));
  return static_cast<uint64_t>(iters) * 20u * 512u;
}

}  // namespace

const PeakLoopFn kPeakLoopAvx512 = run;

}  // namespace bmx

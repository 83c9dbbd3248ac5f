// AVX2 peak loop for bench.h (an ISA file: intrinsics only, see dispatch.h).
// The shape of the 4x8 kernel's inner loop without its loads: independent byte accumulators,
// each += popcount(x_i XOR w) with the nibble-table popcount of kernel_4x8_avx2.cc (Muła, Kurz,
// Lemire, https://arxiv.org/abs/1611.07612), and the same vpsadbw fold into 64-bit sums every 31
// iterations (a byte count is at most 8, so 31 * 8 = 248 fits a byte). Two accumulators: the
// popcount is 8 vector operations, so two chains already keep the vector ports busy, and on the
// AMD EPYC (Zen 4) this was measured on, 2 gave the highest rate (about 1.5-2.5x that of 4, 6
// or 8 accumulators, which only lengthen the loop), above the 4x8 kernel's own rate. Without this loop the
// benchmark measured the portable 64-bit popcount on AVX2 machines and reported GEMM "peak
// fractions" far above 1.
#include <immintrin.h>

#include <cstdint>

#include "bench.h"

namespace bmx {
namespace {

constexpr int kAcc = 2;
constexpr int64_t kByteBlock = 31;

uint64_t run(int64_t iters, uint64_t* sink) {
  const __m256i table = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1,
                                         2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  __m256i x[kAcc], sum[kAcc];
#pragma GCC unroll 2
  for (int i = 0; i < kAcc; ++i) {
    x[i] = _mm256_set1_epi64x(static_cast<long long>(0x9E3779B97F4A7C15ull * (i + 1u)));
    sum[i] = _mm256_setzero_si256();
  }
  __m256i w = _mm256_set1_epi64x(0x0123456789ABCDEFll);
  const int64_t blocks = iters / kByteBlock;
  for (int64_t blk = 0; blk < blocks; ++blk) {
    __m256i acc[kAcc];
#pragma GCC unroll 2
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm256_setzero_si256();
    for (int64_t it = 0; it < kByteBlock; ++it) {
      asm volatile("" : "+x"(w));  // w is opaque: the xor must be redone every iteration
#pragma GCC unroll 2  // fully unrolled, so x[] and acc[] live in ymm registers
      for (int i = 0; i < kAcc; ++i) {
        const __m256i v = _mm256_xor_si256(x[i], w);
        const __m256i lo = _mm256_and_si256(v, low4);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
        acc[i] = _mm256_add_epi8(
            acc[i], _mm256_add_epi8(_mm256_shuffle_epi8(table, lo), _mm256_shuffle_epi8(table, hi)));
      }
    }
#pragma GCC unroll 2
    for (int i = 0; i < kAcc; ++i)
      sum[i] = _mm256_add_epi64(sum[i], _mm256_sad_epu8(acc[i], _mm256_setzero_si256()));
  }
  __m256i total = sum[0];
#pragma GCC unroll 2
  for (int i = 1; i < kAcc; ++i) total = _mm256_add_epi64(total, sum[i]);
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), total);
  *sink = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  return static_cast<uint64_t>(blocks * kByteBlock) * kAcc * 256u;
}

}  // namespace

const PeakLoopFn kPeakLoopAvx2 = run;

}  // namespace bmx

// AVX2 sign packing. Compiled with -mavx2 -mfma (see CMakeLists.txt); only reached through
// kBitpackAvx2 (see dispatch.h for the rules of ISA files).
//
// Channel-minor packing handles 8 pixels at a time: one 8-float compare per channel plane gives
// all-ones/all-zero 32-bit lanes, which are sign-extended to two vectors of four 64-bit lanes,
// ANDed with the channel's bit and ORed into the pixels' words.
#include <immintrin.h>

#include "bitpack/bitpack.h"
#include "bitpack/rows_mean_abs_x86.h"

namespace bmx {
namespace {

void pack_channels_avx2(const float* x, int64_t channels, int64_t plane_stride, int64_t pixels,
                        word_t* out, int64_t out_stride) {
  const int64_t words = (channels + kWordBits - 1) / kWordBits;
  const __m256 zero = _mm256_setzero_ps();
  alignas(32) word_t tmp[8];
  int64_t p0 = 0;
  for (; p0 + 8 <= pixels; p0 += 8) {
    for (int64_t w = 0; w < words; ++w) {
      const int64_t c0 = w * kWordBits;
      const int nc = static_cast<int>(channels - c0 < kWordBits ? channels - c0 : kWordBits);
      __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
      __m256i bit = _mm256_set1_epi64x(1);
      const float* src = x + c0 * plane_stride + p0;
      for (int c = 0; c < nc; ++c, src += plane_stride) {
        const __m256i ge =
            _mm256_castps_si256(_mm256_cmp_ps(_mm256_loadu_ps(src), zero, _CMP_GE_OQ));
        const __m256i lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(ge));
        const __m256i hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(ge, 1));
        acc0 = _mm256_or_si256(acc0, _mm256_and_si256(lo, bit));
        acc1 = _mm256_or_si256(acc1, _mm256_and_si256(hi, bit));
        bit = _mm256_slli_epi64(bit, 1);
      }
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), acc0);
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp + 4), acc1);
      for (int i = 0; i < 8; ++i) out[(p0 + i) * out_stride + w] = tmp[i];
    }
  }
  // Fewer than 8 pixels left: scalar.
  for (; p0 < pixels; ++p0) {
    for (int64_t w = 0; w < words; ++w) {
      const int64_t c0 = w * kWordBits;
      const int nc = static_cast<int>(channels - c0 < kWordBits ? channels - c0 : kWordBits);
      word_t acc = 0;
      for (int c = 0; c < nc; ++c) acc |= word_t(x[(c0 + c) * plane_stride + p0] >= 0.0f) << c;
      out[p0 * out_stride + w] = acc;
    }
  }
}

// 64 consecutive floats -> one word: eight 8-lane compares and movemasks.
void pack_row_avx2(const float* x, int64_t n, word_t* out) {
  const __m256 zero = _mm256_setzero_ps();
  int64_t w = 0;
  for (; (w + 1) * kWordBits <= n; ++w) {
    const float* s = x + w * kWordBits;
    uint64_t acc = 0;
    for (int q = 0; q < 8; ++q) {
      const uint64_t m = static_cast<uint32_t>(
          _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(s + 8 * q), zero, _CMP_GE_OQ)));
      acc |= m << (8 * q);
    }
    out[w] = acc;
  }
  const int64_t rest = n - w * kWordBits;
  if (rest > 0) {
    uint64_t acc = 0;
    for (int64_t j = 0; j < rest; ++j) acc |= uint64_t(x[w * kWordBits + j] >= 0.0f) << j;
    out[w] = acc;
  }
}

}  // namespace

const BitpackKernels kBitpackAvx2 = {"avx2", pack_channels_avx2, pack_row_avx2,
                                     rows_mean_abs_x86};

}  // namespace bmx

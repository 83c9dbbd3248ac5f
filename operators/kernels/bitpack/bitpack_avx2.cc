// AVX2 sign packing. Compiled with -mavx2 -mfma (see CMakeLists.txt); only reached through
// kBitpackAvx2 (see dispatch.h for the rules of ISA files).
//
// Channel-minor packing handles 8 pixels at a time: one 8-float compare and movemask per channel
// plane gives a byte of the 8 pixels' bits; the 64 bytes of a word's channels are then transposed
// into the 8 pixels' words with byte additions and movemask_epi8 (8 x 2 per word). The last
// pixels of a row use masked loads the same way.
#include <immintrin.h>

#include "bitpack/bitpack.h"
#include "bitpack/rows_mean_abs_x86.h"

namespace bmx {
namespace {

void pack_channels_avx2(const float* x, int64_t channels, int64_t plane_stride, int64_t pixels,
                        word_t* out, int64_t out_stride) {
  const int64_t words = (channels + kWordBits - 1) / kWordBits;
  const __m256 zero = _mm256_setzero_ps();
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  alignas(32) uint8_t bytes[kWordBits];  // bytes[c]: bit i = channel c of pixel p0 + i
  for (int64_t p0 = 0; p0 < pixels; p0 += 8) {
    const int n = static_cast<int>(pixels - p0 < 8 ? pixels - p0 : 8);
    // The last pixels (n < 8): masked loads, which read nothing past the plane.
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane);
    for (int64_t w = 0; w < words; ++w) {
      const int64_t c0 = w * kWordBits;
      const int nc = static_cast<int>(channels - c0 < kWordBits ? channels - c0 : kWordBits);
      const float* src = x + c0 * plane_stride + p0;
      int c = 0;
      if (n == 8) {
        for (; c < nc; ++c, src += plane_stride)
          bytes[c] = static_cast<uint8_t>(
              _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(src), zero, _CMP_GE_OQ)));
      } else {
        for (; c < nc; ++c, src += plane_stride)
          bytes[c] = static_cast<uint8_t>(_mm256_movemask_ps(
              _mm256_cmp_ps(_mm256_maskload_ps(src, mask), zero, _CMP_GE_OQ)));
      }
      for (; c < kWordBits; ++c) bytes[c] = 0;
      // Transpose: after adding a byte vector to itself 7 - i times, the top bit of byte c is
      // bit i of bytes[c], and movemask_epi8 gathers those top bits into channel order.
      __m256i lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(bytes));
      __m256i hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(bytes + 32));
      for (int i = 7; i >= 0; --i) {
        if (i < n)
          out[(p0 + i) * out_stride + w] =
              static_cast<word_t>(static_cast<uint32_t>(_mm256_movemask_epi8(lo))) |
              static_cast<word_t>(static_cast<uint32_t>(_mm256_movemask_epi8(hi))) << 32;
        lo = _mm256_add_epi8(lo, lo);
        hi = _mm256_add_epi8(hi, hi);
      }
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
                                     rows_mean_abs_x86, rows_mean_abs_signs_x86};

}  // namespace bmx

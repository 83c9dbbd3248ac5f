// rows_mean_abs for x86 with AVX2 (internal header, included by the AVX2 and AVX-512 files, so
// each gets its own copy compiled with its own flags: hence the unnamed namespace).
//
// A row's mean |x| must equal channel_mean_abs (quantize.h) bit for bit: the row is summed in
// order, in double. That sum is one chain of dependent additions (3-4 cycles each), so speed
// comes from summing 16 rows at once, one row per double lane: 8 floats are loaded from each of 8
// rows, the 8x8 block is transposed, and column j (element i + j of the 8 rows) is added to the
// two accumulators (rows 0-3, rows 4-7); a second block of 8 rows keeps two more chains going.
// Every lane sees exactly the additions of the plain loop, in the same order; the last
// per_row % 8 elements and the last rows % 8 rows take the plain loop. When each row is a whole
// number of bytes of signs, the same loads also give pack_row's signs (rows_mean_abs_signs_x86).
#ifndef BMXNET_KERNELS_BITPACK_ROWS_MEAN_ABS_X86_H_
#define BMXNET_KERNELS_BITPACK_ROWS_MEAN_ABS_X86_H_

#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "bitpack/bitpack.h"

namespace bmx {
namespace {

inline void transpose_8x8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// Sums |x| of 8 * kBlocks rows (row k at base + k * per_row) over their first `full` elements
// (a multiple of 8) into s[0 .. 8 * kBlocks), each row in order. Blocks of 8 rows are independent
// chains of additions, so two blocks keep twice as many additions in flight. kSigns (per_row a
// multiple of 8): also writes the sign bits of every 8 elements as one byte, signs[e / 8] for
// the element e = k * per_row + i of base, in the bit convention (little-endian words).
template <int kBlocks, bool kSigns>
void sum_abs_rows(const float* base, int64_t per_row, int64_t full, double* s, uint8_t* signs) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 zero = _mm256_setzero_ps();
  __m256d lo[kBlocks], hi[kBlocks];  // rows 8b..8b+3, 8b+4..8b+7
  for (int b = 0; b < kBlocks; ++b) lo[b] = hi[b] = _mm256_setzero_pd();
  for (int64_t i = 0; i < full; i += 8) {
    for (int b = 0; b < kBlocks; ++b) {
      __m256 v[8];
      for (int k = 0; k < 8; ++k) {
        const int64_t e = (8 * b + k) * per_row + i;
        const __m256 raw = _mm256_loadu_ps(base + e);
        if (kSigns)
          signs[e / 8] =
              static_cast<uint8_t>(_mm256_movemask_ps(_mm256_cmp_ps(raw, zero, _CMP_GE_OQ)));
        v[k] = _mm256_and_ps(raw, abs_mask);
      }
      transpose_8x8(v);  // v[j] = |x[8b + k][i + j]| for k = 0..7
      for (int j = 0; j < 8; ++j) {
        lo[b] = _mm256_add_pd(lo[b], _mm256_cvtps_pd(_mm256_castps256_ps128(v[j])));
        hi[b] = _mm256_add_pd(hi[b], _mm256_cvtps_pd(_mm256_extractf128_ps(v[j], 1)));
      }
    }
  }
  for (int b = 0; b < kBlocks; ++b) {
    _mm256_storeu_pd(s + 8 * b, lo[b]);
    _mm256_storeu_pd(s + 8 * b + 4, hi[b]);
  }
}

// The rows in blocks of 16 and 8; returns the first row left (rows % 8 of them) for the caller.
template <bool kSigns>
int64_t mean_abs_row_blocks(const float* x, int64_t rows, int64_t per_row, float* scale,
                            uint8_t* signs) {
  const int64_t full = per_row / 8 * 8;
  int64_t r = 0;
  while (r + 8 <= rows) {
    const float* base = x + r * per_row;
    uint8_t* block_signs = kSigns ? signs + r * per_row / 8 : nullptr;
    const int n = r + 16 <= rows ? 16 : 8;
    double s[16];
    if (n == 16)
      sum_abs_rows<2, kSigns>(base, per_row, full, s, block_signs);
    else
      sum_abs_rows<1, kSigns>(base, per_row, full, s, block_signs);
    for (int k = 0; k < n; ++k) {
      const float* row = base + k * per_row;
      for (int64_t i = full; i < per_row; ++i) s[k] += std::fabs(static_cast<double>(row[i]));
      scale[r + k] = static_cast<float>(s[k] / static_cast<double>(per_row));
    }
    r += n;
  }
  return r;
}

void rows_mean_abs_x86(const float* x, int64_t rows, int64_t per_row, float* scale) {
  const int64_t r = mean_abs_row_blocks<false>(x, rows, per_row, scale, nullptr);
  if (r < rows) rows_mean_abs_reference(x + r * per_row, rows - r, per_row, scale + r);
}

// rows_mean_abs and pack_row of the whole tensor in one pass over it (per_row % 8 == 0): the
// signs are taken from the loads the sums make.
void rows_mean_abs_signs_x86(const float* x, int64_t rows, int64_t per_row, float* scale,
                             word_t* packed) {
  const int64_t n = rows * per_row;
  if (n == 0) return;
  packed[words_for(n) - 1] = 0;  // the bytes past the last element stay 0
  uint8_t* signs = reinterpret_cast<uint8_t*>(packed);
  const int64_t r = mean_abs_row_blocks<true>(x, rows, per_row, scale, signs);
  if (r == rows) return;
  rows_mean_abs_reference(x + r * per_row, rows - r, per_row, scale + r);
  for (int64_t e = r * per_row; e < n; e += 8) {
    unsigned byte = 0;
    for (int q = 0; q < 8; ++q) byte |= unsigned(x[e + q] >= 0.0f) << q;
    signs[e / 8] = static_cast<uint8_t>(byte);
  }
}

}  // namespace
}  // namespace bmx

#endif  // BMXNET_KERNELS_BITPACK_ROWS_MEAN_ABS_X86_H_

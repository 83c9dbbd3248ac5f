// NEON (aarch64) binary GEMM kernels: a 4x8 register tile for panels, and a 4-row GEMV.
// Only reached through kBGemm4x8Neon / kBGemv4x1Neon (see dispatch.h for the rules of ISA files).
//
// NEON's popcount is per byte (vcnt). The byte counts of xor(a, b) are pairwise-added into
// 16-bit accumulators with vpadal (one instruction does the add and the accumulate), so a K-word
// costs eor + cnt + padal per 128 bits. A 16-bit lane receives at most 2 * 8 = 16 per K-word,
// so it is flushed into 64-bit sums (vpaddl u16 -> u32, vpadal u32 -> u64) every 4095 K-words.
// After the flush the two 64-bit lanes of a q register are the counts of its two columns.
//
// 4x8 tile: the panel holds the same K-word of 8 columns as 4 q registers of 2 words; per
// K-word each of the 4 rows broadcasts its word (ld1r). 16 accumulators + 4 column vectors +
// 4 broadcasts + temporaries fit the 32 vector registers.
#include <arm_neon.h>

#include "bgemm/bgemm.h"

namespace bmx {
namespace {

constexpr int kNr = 8;
constexpr int64_t kU16Block = 4095;  // K-words a 16-bit accumulator can take (4095 * 16 < 2^16)

inline uint16x8_t accumulate(uint16x8_t acc, uint64x2_t a, uint64x2_t b) {
  return vpadalq_u8(acc, vcntq_u8(vreinterpretq_u8_u64(veorq_u64(a, b))));
}

inline uint64x2_t flush(uint64x2_t sum, uint16x8_t acc) {
  return vpadalq_u32(sum, vpaddlq_u16(acc));
}

template <int R, int NV>
void tile_4x8(int64_t K, const word_t* A, int64_t lda, const word_t* panel, int n,
              int32_t* counts, int64_t ldc) {
  uint64x2_t sum[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) sum[r][v] = vdupq_n_u64(0);
  for (int64_t k0 = 0; k0 < K; k0 += kU16Block) {
    const int64_t k1 = K - k0 < kU16Block ? K : k0 + kU16Block;
    uint16x8_t acc[R][NV];
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < NV; ++v) acc[r][v] = vdupq_n_u16(0);
    for (int64_t k = k0; k < k1; ++k) {
      uint64x2_t b[NV];
      for (int v = 0; v < NV; ++v) b[v] = vld1q_u64(panel + k * kNr + 2 * v);
      for (int r = 0; r < R; ++r) {
        const uint64x2_t w = vld1q_dup_u64(A + r * lda + k);
        for (int v = 0; v < NV; ++v) acc[r][v] = accumulate(acc[r][v], w, b[v]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < NV; ++v) sum[r][v] = flush(sum[r][v], acc[r][v]);
  }
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < NV; ++v) {
      const int j = 2 * v;
      if (j < n) counts[r * ldc + j] = static_cast<int32_t>(vgetq_lane_u64(sum[r][v], 0));
      if (j + 1 < n) counts[r * ldc + j + 1] = static_cast<int32_t>(vgetq_lane_u64(sum[r][v], 1));
    }
  }
}

using TileFn = void (*)(int64_t, const word_t*, int64_t, const word_t*, int, int32_t*, int64_t);

template <int R>
TileFn tile_for_columns(int n) {
  switch ((n + 1) / 2) {
    case 1: return tile_4x8<R, 1>;
    case 2: return tile_4x8<R, 2>;
    case 3: return tile_4x8<R, 3>;
    default: return tile_4x8<R, 4>;
  }
}

void run_4x8(int64_t M, int64_t K, const word_t* A, int64_t lda, const word_t* panel, int n,
             int32_t* counts, int64_t ldc) {
  const TileFn full = tile_for_columns<4>(n);
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) full(K, A + m * lda, lda, panel, n, counts + m * ldc, ldc);
  switch (M - m) {
    case 3: tile_for_columns<3>(n)(K, A + m * lda, lda, panel, n, counts + m * ldc, ldc); break;
    case 2: tile_for_columns<2>(n)(K, A + m * lda, lda, panel, n, counts + m * ldc, ldc); break;
    case 1: tile_for_columns<1>(n)(K, A + m * lda, lda, panel, n, counts + m * ldc, ldc); break;
    default: break;
  }
}

template <int R>
void gemv_rows(int64_t K, const word_t* A, int64_t lda, const word_t* b, int32_t* counts,
               int64_t ldc) {
  uint64x2_t sum[R];
  for (int r = 0; r < R; ++r) sum[r] = vdupq_n_u64(0);
  const int64_t kfull = K / 2 * 2;
  for (int64_t k0 = 0; k0 < kfull; k0 += 2 * kU16Block) {
    const int64_t k1 = kfull - k0 < 2 * kU16Block ? kfull : k0 + 2 * kU16Block;
    uint16x8_t acc[R];
    for (int r = 0; r < R; ++r) acc[r] = vdupq_n_u16(0);
    for (int64_t k = k0; k < k1; k += 2) {
      const uint64x2_t vb = vld1q_u64(b + k);
      for (int r = 0; r < R; ++r) acc[r] = accumulate(acc[r], vld1q_u64(A + r * lda + k), vb);
    }
    for (int r = 0; r < R; ++r) sum[r] = flush(sum[r], acc[r]);
  }
  for (int r = 0; r < R; ++r) {
    uint64_t total = vaddvq_u64(sum[r]);
    if (kfull < K) {  // one word left
      const uint8x8_t c = vcnt_u8(vcreate_u8(A[r * lda + kfull] ^ b[kfull]));
      total += vaddv_u8(c);
    }
    counts[r * ldc] = static_cast<int32_t>(total);
  }
}

void run_gemv(int64_t M, int64_t K, const word_t* A, int64_t lda, const word_t* panel, int n,
              int32_t* counts, int64_t ldc) {
  (void)n;  // nr == 1: always one column
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) gemv_rows<4>(K, A + m * lda, lda, panel, counts + m * ldc, ldc);
  for (; m < M; ++m) gemv_rows<1>(K, A + m * lda, lda, panel, counts + m * ldc, ldc);
}

}  // namespace

const BGemmKernel kBGemm4x8Neon = {"4x8_neon", kNr, run_4x8};
const BGemmKernel kBGemv4x1Neon = {"gemv4x1_neon", 1, run_gemv};

}  // namespace bmx
